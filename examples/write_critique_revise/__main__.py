"""`python -m examples.write_critique_revise`: write one short piece and print it."""

from examples.write_critique_revise.flow import main

raise SystemExit(main())
