"""`python -m examples.write_critique_revise`: write one short piece and print it."""

from examples import run_example

raise SystemExit(run_example("examples.write_critique_revise.flow"))
