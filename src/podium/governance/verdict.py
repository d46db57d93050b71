"""The outcome of a governance check on one call: the common currency of policy, taint and
guardrails, so that the door's policy slot can combine them without knowing who decided."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"  # refused: a PolicyDeniedError the model can act on, never retried
    APPROVE = "approve"  # allowed only once a person approves this exact call


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check decided about a call, and why (`rule` names the rule that decided)."""

    action: Action
    reason: str = ""
    rule: str = ""

    @property
    def allowed(self) -> bool:
        return self.action == Action.ALLOW


ALLOW = Verdict(Action.ALLOW)


def strictest(*verdicts: Verdict | None) -> Verdict:
    """Deny beats approve beats allow; the first verdict of the strictest kind wins."""
    order = {Action.ALLOW: 0, Action.APPROVE: 1, Action.DENY: 2}
    best = ALLOW
    for v in verdicts:
        if v is not None and order[v.action] > order[best.action]:
            best = v
    return best
