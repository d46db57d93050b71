"""`python -m examples.market_research`: research one market and print the brief."""

from examples import run_example

raise SystemExit(run_example("examples.market_research.flow"))
