"""`python -m examples.returns_exchange`: run the workflow once and print its output."""

from examples.returns_exchange.flow import main

raise SystemExit(main())
