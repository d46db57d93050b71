"""Runnable examples, one folder per scenario (`python -m examples.<name>`)."""
