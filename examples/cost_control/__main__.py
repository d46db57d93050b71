"""`python -m examples.cost_control`: run the research desk under its budgets."""

from examples import run_example

raise SystemExit(run_example("examples.cost_control.desk"))
