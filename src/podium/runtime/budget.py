"""Budgets: how much a run, one agent, or a pattern and everything below it may spend.

    rt.run(flow, x, budget=Budget(usd=0.50))              # the whole run
    LLMAgent("writer", ..., budget=Budget(tokens=20_000))  # one agent's calls
    Supervisor("desk", ..., budget=Budget(model_calls=40)) # a pattern's whole subtree

A budget is a set of limits; any of them may be left out. The door's `budget` slot enforces
them: at `alert_at` of a limit (70% by default) it emits a `budget.alert` event once and calls
the runtime's `on_budget_alert`; at 100% no new model or tool call starts and the call fails
with `BudgetExceededError`, which is never retried. Only what completed counts, so a runaway agent
overshoots by at most the call that was in flight when the limit was reached (one per
branch running at the same time).

A scope is a step key: the run's budget covers every call; an agent's covers every call below
its step (`/flow/writer#0/...`), so each invocation of the agent has a budget of its own.
What a scope spent is its model calls' usage (tokens, dollars), the model and tool calls made
(each attempt), and the wall time since it started. A resumed run counts on from its journal:
each scope starts from what the steps below it spent before, and from the time it ran in
earlier processes (the spans of its events between `run.started` / `run.resumed`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podium.core.bounds import POSITIVE_NUMBER, SECONDS, Bound
from podium.core.clock import Clock, clock_or_default
from podium.errors import BudgetExceededError, UsageError

if TYPE_CHECKING:
    from podium.core.records import Event, StepRecord, Usage
    from podium.runtime.door import Call, Handler, Middleware

LIMITS: tuple[str, ...] = ("tokens", "usd", "model_calls", "tool_calls", "seconds")
BUDGET_KV = "budget"  # the store's key-value namespace where a run's own budget is kept
_COUNTS = ("tokens", "model_calls", "tool_calls")
_METERED = ("model", "tool")  # the kinds of call a budget can stop
_NEARLY = 1 - 1e-9  # float sums of dollars land a hair under a limit they reach
_SPENT = frozenset({"completed", "failed", "suspended"})  # journal rows whose spend counts

logger = logging.getLogger("podium")
ALERT_AT = Bound("a number in (0, 1]", gt=0, le=1)


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
            if name == "seconds":
                SECONDS.check_optional("Budget", "seconds", value)
            elif value is not None and not POSITIVE_NUMBER.ok(value):
                raise UsageError(f"Budget({name}=...) must be a positive number, got {value!r}")
        if not ALERT_AT.ok(self.alert_at):
            raise UsageError(f"Budget(alert_at=...) must be in (0, 1], got {self.alert_at!r}")
        if all(getattr(self, name) is None for name in LIMITS):
            raise UsageError(
                "a Budget needs at least one limit: tokens, usd, model_calls, tool_calls or seconds"
            )

    def limits(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return {n: float(v) for n in LIMITS if (v := getattr(self, n)) is not None}

    def to_dict(self) -> dict[str, float]:
        """The limits that are set and `alert_at`: what is stored with a run."""
        return {**self.limits(), "alert_at": self.alert_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        """A budget from `to_dict` (or from `usd=0.5,tokens=1000`-style options, parsed)."""
        unknown = set(data) - {*LIMITS, "alert_at"}
        if unknown:
            raise UsageError(
                f"unknown budget limit(s) {sorted(unknown)}: use {', '.join(LIMITS)} or alert_at"
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            if isinstance(value, float) and value.is_integer() and name in _COUNTS:
                value = int(value)
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A scope's spend passed `alert_at` of one of its limits (what `on_budget_alert` gets)."""

    run_id: str
    scope: str  # "run", or "agent 'writer' at /flow/writer#0"
    key: str  # the scope's step key ("" for the run)
    limit: str  # tokens, usd, model_calls, tool_calls or seconds
    spent: float
    maximum: float
    step: str  # the call at which it was noticed

    @property
    def fraction(self) -> float:
        return self.spent / self.maximum


class Meter:
    """What one budget's scope has spent: the whole run (key `""`) or one step and below."""

    __slots__ = (
        "alerted",
        "budget",
        "clock",
        "key",
        "label",
        "limits",
        "model_calls",
        "prefix",
        "refused",
        "seconds_before",
        "started",
        "tokens",
        "tool_calls",
        "usd",
    )

    def __init__(self, key: str, budget: Budget, label: str, clock: Clock | None = None) -> None:
        self.clock = clock_or_default(clock)  # `seconds` are this clock's
        self.key = key
        self.prefix = key + "/"
        self.budget = budget
        self.label = label
        self.limits = budget.limits()
        self.tokens = 0.0
        self.usd = 0.0
        self.model_calls = 0.0
        self.tool_calls = 0.0
        self.seconds_before = 0.0
        self.started = self.clock.monotonic()
        self.alerted: set[str] = set()
        self.refused: set[str] = set()

    def covers(self, key: str) -> bool:
        return key.startswith(self.prefix) or key == self.key

    def used(self, limit: str) -> float:
        if limit == "seconds":
            return self.seconds_before + self.clock.monotonic() - self.started
        value: float = getattr(self, limit)
        return value

    def charge(self, kind: str, usage: Usage | None, attempts: int) -> None:
        if usage is not None:
            self.tokens += usage.input_tokens + usage.output_tokens
            self.usd += usage.usd
        if kind == "model":
            self.model_calls += attempts
        elif kind == "tool":
            self.tool_calls += attempts

    def exhausted(self) -> tuple[str, float, float] | None:
        """The first limit that is used up: (limit, maximum, spent). Dollars add up in floats,
        so spending "all of" $0.012 in steps of $0.0015 counts even at $0.011999999."""
        for limit, maximum in self.limits.items():
            spent = self.used(limit)
            if spent >= maximum * _NEARLY:
                return limit, maximum, spent
        return None

    def crossed(self) -> list[tuple[str, float, float]]:
        """Limits past the alert mark that were not alerted yet (now they are)."""
        out = []
        mark = self.budget.alert_at
        for limit, maximum in self.limits.items():
            if limit not in self.alerted:
                spent = self.used(limit)
                if spent >= mark * maximum * _NEARLY:
                    self.alerted.add(limit)
                    out.append((limit, maximum, spent))
        return out

    def snapshot(self) -> dict[str, float]:
        """Spent so far, per limit that is set."""
        return {limit: self.used(limit) for limit in self.limits}


class Ledger:
    """A run's open budget scopes. Created only when a budget shows up, so a run without any
    pays one attribute test per call for all this."""

    __slots__ = ("clock", "history", "meters", "prior")

    def __init__(
        self,
        prior: dict[str, StepRecord] | None,
        history: Sequence[Event] | None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock_or_default(clock)
        self.prior = prior
        self.history = history
        self.meters: list[Meter] = []

    def open(self, key: str, budget: Budget, label: str) -> Meter:
        meter = Meter(key, budget, label, self.clock)
        if self.prior:
            _seed_spend(meter, self.prior.values())
        if self.history:
            _seed_history(meter, self.history)
        self.meters.append(meter)
        return meter

    def close(self, meter: Meter) -> None:
        self.meters.remove(meter)

    def covering(self, key: str) -> list[Meter]:
        return [m for m in self.meters if m.covers(key)]


def _seed_spend(meter: Meter, rows: Any) -> None:
    """What the steps below the scope spent before this process (a resumed run)."""
    for row in rows:
        if row.status in _SPENT and meter.covers(row.key):
            meter.charge(row.kind, row.usage, row.attempt)


def _seed_history(meter: Meter, events: Sequence[Event]) -> None:
    """Time the scope ran in earlier processes, and the alerts and refusals already made."""
    total = 0.0
    first = last = None
    for e in events:
        if e.kind in ("run.started", "run.resumed"):
            if first is not None and last is not None:
                total += last - first
            first = last = None
        if e.kind in ("budget.alert", "budget.exceeded") and e.key == meter.key and e.data:
            limit = e.data.get("limit")
            if limit in meter.limits and e.data.get("max") == meter.limits[limit]:
                (meter.alerted if e.kind == "budget.alert" else meter.refused).add(limit)
        if meter.covers(e.key):
            first = e.ts if first is None else first
            last = e.ts
    if first is not None and last is not None:
        total += last - first
    meter.seconds_before = total


AlertHandler = Callable[[BudgetAlert], Any]
_pending: set[asyncio.Future[Any]] = set()  # async alert handlers still running


def budget_middleware(on_alert: AlertHandler | None = None) -> Middleware:
    """The door's budget slot. `on_alert` is called with a `BudgetAlert` (a coroutine
    function's coroutine runs as a task); what it raises is logged, not raised."""

    async def budget(call: Call, nxt: Handler) -> Any:
        run = call.run
        ledger = run.ledger
        own = getattr(call.target, "budget", None) if call.kind == "agent" else None
        if own is None:
            if ledger is None or call.kind not in _METERED:
                return await nxt(call)
            return await _metered(call, nxt, ledger, on_alert)
        if ledger is None:
            ledger = run.ledger = Ledger(run.prior, run.history, run.clock)
        meter = ledger.open(call.key, own, f"agent {call.name!r} at {call.key}")
        try:
            return await nxt(call)
        finally:
            ledger.close(meter)

    return budget


async def _metered(call: Call, nxt: Handler, ledger: Ledger, on_alert: AlertHandler | None) -> Any:
    meters = ledger.covering(call.key)
    if not meters:
        return await nxt(call)
    for meter in meters:
        over = meter.exhausted()
        if over is not None:
            _refuse(call, meter, *over)
    _alert(call, meters, on_alert)  # time passes between calls: seconds may have crossed
    try:
        return await nxt(call)
    finally:
        usage, attempts = call.usage, call.attempt
        for meter in meters:
            meter.charge(call.kind, usage, attempts)
        _alert(call, meters, on_alert)


def _refuse(call: Call, meter: Meter, limit: str, maximum: float, spent: float) -> None:
    call.attempt = 0  # journaled as never attempted: a resume does not count it as a call
    if limit not in meter.refused:
        meter.refused.add(limit)
        call.run.emit(
            "budget.exceeded",
            meter.key,
            call.name,
            data=_data(meter, limit, maximum, spent, call.key),
        )
    raise BudgetExceededError(meter.label, limit, maximum, spent, call.key, call.kind, meter.key)


def _alert(call: Call, meters: list[Meter], on_alert: AlertHandler | None) -> None:
    for meter in meters:
        for limit, maximum, spent in meter.crossed():
            call.run.emit(
                "budget.alert",
                meter.key,
                call.name,
                data=_data(meter, limit, maximum, spent, call.key),
            )
            if on_alert is not None:
                alert = BudgetAlert(
                    call.run.run_id, meter.label, meter.key, limit, spent, maximum, call.key
                )
                _deliver(on_alert, alert)


def _data(meter: Meter, limit: str, maximum: float, spent: float, step: str) -> dict[str, Any]:
    return {
        "scope": meter.label,
        "limit": limit,
        "spent": round(spent, 10),
        "max": maximum,
        "fraction": round(spent / maximum, 4),
        "step": step,
    }


def _deliver(handler: AlertHandler, alert: BudgetAlert) -> None:
    """Call the alert handler; an error in it is logged: an alert must not fail the run."""
    try:
        result = handler(alert)
    except Exception:
        logger.exception("on_budget_alert raised for %s", alert)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _pending.add(task)
        task.add_done_callback(_finished)


def _finished(task: asyncio.Future[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("on_budget_alert failed", exc_info=task.exception())
