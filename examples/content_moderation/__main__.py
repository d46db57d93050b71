"""`python -m examples.content_moderation [TEXT] [--hang POLICY]`: moderate one post."""

from examples.content_moderation.flow import main

raise SystemExit(main())
