"""`python -m examples.returns_exchange`: run the workflow once and print its output."""

from examples import run_example

raise SystemExit(run_example("examples.returns_exchange.flow"))
