"""`python -m examples.insurance_claim`: file one claim and print where it stands."""

from examples import run_example

raise SystemExit(run_example("examples.insurance_claim.flow"))
