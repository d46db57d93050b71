"""Content moderation: five policy checks at once, a coordinator decides allow, block or
escalate, and a person reviews what is escalated. See README.md."""
