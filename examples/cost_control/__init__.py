"""A research desk on a budget: per-agent and per-run budgets, an alert, a runaway analyst
stopped and named as a gap, and what each agent cost."""
