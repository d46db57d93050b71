"""`python -m examples.procurement`: run one purchase request through the desk."""

from examples.procurement.flow import main

raise SystemExit(main())
