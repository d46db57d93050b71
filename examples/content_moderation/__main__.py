"""`python -m examples.content_moderation [TEXT] [--hang POLICY]`: moderate one post."""

from examples import run_example

raise SystemExit(run_example("examples.content_moderation.flow"))
