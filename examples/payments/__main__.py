"""`python -m examples.payments [--invoice N]`: one invoice through the payments clerk."""

from examples import run_example

raise SystemExit(run_example("examples.payments.desk"))
