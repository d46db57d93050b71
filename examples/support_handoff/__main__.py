"""`python -m examples.support_handoff [MESSAGE]`: one customer message through the desk."""

from examples import run_example

raise SystemExit(run_example("examples.support_handoff.desk"))
