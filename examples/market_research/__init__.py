"""Market research: a supervisor plans, analysts work in parallel, a reviewer checks."""
