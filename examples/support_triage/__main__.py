"""`python -m examples.support_triage [MESSAGE]`: triage one support message."""

from examples import run_example

raise SystemExit(run_example("examples.support_triage.flow"))
