"""`python -m examples.market_research`: research one market and print the brief."""

from examples.market_research.flow import main

raise SystemExit(main())
