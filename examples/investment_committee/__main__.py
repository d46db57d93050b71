"""`python -m examples.investment_committee [TICKER]`: one committee meeting, printed as JSON."""

from examples import run_example

raise SystemExit(run_example("examples.investment_committee.committee"))
