"""`python -m examples.support_triage [MESSAGE]`: triage one support message."""

from examples.support_triage.flow import main

raise SystemExit(main())
