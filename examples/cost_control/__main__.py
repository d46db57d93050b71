"""`python -m examples.cost_control`: run the research desk under its budgets."""

from examples.cost_control.desk import main

raise SystemExit(main())
