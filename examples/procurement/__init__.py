"""Procurement desk: a router, a supervisor, parallel groups; three levels deep."""
