"""`python -m examples.procurement`: run one purchase request through the desk."""

from examples import run_example

raise SystemExit(run_example("examples.procurement.flow"))
