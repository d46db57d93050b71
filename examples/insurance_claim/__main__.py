"""`python -m examples.insurance_claim`: file one claim and print where it stands."""

from examples.insurance_claim.flow import main

raise SystemExit(main())
