"""Returns and exchanges for an online shop: podium's main example.

A `Router` sends each customer message to the returns pipeline (a model reads the request,
policy is checked, stock and price are checked in parallel, then payment, label, order,
notification and reason log are written in order) or to the billing and technical desks.
The business systems are a local SQLite file; see README.md.
"""
