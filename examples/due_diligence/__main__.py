"""`python -m examples.due_diligence [--fail AREA | --hang AREA]`: write one memo."""

from examples.due_diligence.flow import main

raise SystemExit(main())
