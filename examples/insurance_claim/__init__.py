"""An insurance claim: intake, coverage, fraud score, payout, a person approves the payment,
pay, notify. The insurer's systems are a local SQLite file; see README.md."""
