"""`python -m examples.support_handoff [MESSAGE]`: one customer message through the desk."""

from examples.support_handoff.desk import main

raise SystemExit(main())
