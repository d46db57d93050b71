"""Budgets: how much a run, one agent, or a pattern and everything below it may spend.

    rt.run(flow, x, budget=Budget(usd=0.50))              # the whole run
    LLMAgent("writer", ..., budget=Budget(tokens=20_000))  # one agent's calls
    Supervisor("desk", ..., budget=Budget(model_calls=40)) # a pattern's whole subtree

A budget is a set of limits; any of them may be left out. The door's `budget` slot enforces
them: at `alert_at` of a limit (70% by default) it emits a `budget.alert` event once; at 100%
no new model or tool call starts and the call fails with `BudgetExceeded`, which is never
retried. Only what completed counts, so a runaway agent overshoots by at most the call that
was in flight when the limit was reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.errors import UsageError

LIMITS: tuple[str, ...] = ("tokens", "usd", "model_calls", "tool_calls", "seconds")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits on spend; `None` means no limit of that kind. `alert_at` is the fraction of
    any limit at which a soft alert is raised (once per limit)."""

    tokens: int | None = None
    usd: float | None = None
    model_calls: int | None = None
    tool_calls: int | None = None
    seconds: float | None = None
    alert_at: float = 0.7

    def __post_init__(self) -> None:
        for name in LIMITS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise UsageError(f"Budget({name}=...) must be a positive number, got {value!r}")
        if not 0 < self.alert_at <= 1:
            raise UsageError(f"Budget(alert_at=...) must be in (0, 1], got {self.alert_at!r}")
        if all(getattr(self, name) is None for name in LIMITS):
            raise UsageError(
                "a Budget needs at least one limit: tokens, usd, model_calls, tool_calls or seconds"
            )

    def limits(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return {n: float(v) for n in LIMITS if (v := getattr(self, n)) is not None}
