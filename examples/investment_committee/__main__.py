"""`python -m examples.investment_committee [TICKER]`: one committee meeting, printed as JSON."""

from examples.investment_committee.committee import main

raise SystemExit(main())
