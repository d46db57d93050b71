"""Support triage: a model classifies each message to the billing, technical or account desk;
when it is not sure, a person picks the desk. See README.md."""
