"""`python -m examples.due_diligence [--fail AREA | --hang AREA]`: write one memo."""

from examples import run_example

raise SystemExit(run_example("examples.due_diligence.flow"))
