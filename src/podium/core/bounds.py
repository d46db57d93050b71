"""The allowed values of a numeric option, declared once.

    POSITIVE.check("Loop 'l'", "max_turns", 0)   # UsageError: ... must be a positive integer
    max_turns: int = POSITIVE.field(10)          # the same rule in a YAML spec model

A constructor checks an option with `check`; the YAML spec model of the same option declares
it with `field` (or `Annotated[float, SECONDS]` inside a container), so the JSON Schema's
`minimum` and `exclusiveMinimum` are the very numbers the constructor enforces. Writing a
bound in one place only is what made the schema and the patterns disagree (`gt=0` against
`> 0.5`).

Every option that lets a run consume more (turns, re-asks, retry attempts, durations,
concurrency, batch sizes) also has a ceiling, from one table (`CEILINGS`): a limit of
`max_turns: 1000000000` is no limit at all, and an orchestrator that accepts it lets one
workflow file, or one model that writes its own settings, spend without end (OWASP LLM10,
unbounded consumption). The ceilings are generous for real work and the error that refuses a
value names the field, the value and the ceiling; the JSON Schema carries them as `maximum`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import annotated_types
from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field

from podium.errors import UsageError

__all__ = [
    "ATTEMPTS",
    "BATCH",
    "CEILINGS",
    "CONCURRENCY",
    "COUNT",
    "DELAY",
    "FRACTION",
    "MAJORITY",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_NUMBER",
    "REASKS",
    "SECONDS",
    "TURNS",
    "Bound",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bound:
    """A number that must be an `int` (with `integer`) and lie within the bounds given;
    `words` say so in an error message ("a positive integer")."""

    words: str
    integer: bool = False
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    cap: bool = False  # `le` is a ceiling (`CEILINGS`), with an error of its own

    def ok(self, value: Any) -> bool:
        """Whether `value` is allowed (a bool is not a number here)."""
        kinds = int if self.integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        return (
            (self.gt is None or value > self.gt)
            and (self.ge is None or value >= self.ge)
            and (self.lt is None or value < self.lt)
            and (self.le is None or value <= self.le)
        )

    def check(self, owner: str, name: str, value: T) -> T:
        """`value`, or a `UsageError` naming `owner` and the option: the constructor's side."""
        if not self.ok(value):
            if self.above_ceiling(value):
                raise UsageError(
                    f"{owner}: {name} is {value!r}, above its ceiling of {_number(self.le)} "
                    f"({self.words}); podium refuses limits that do not limit: ask for at "
                    "most the ceiling (see podium.core.bounds.CEILINGS)"
                )
            raise UsageError(f"{owner}: {name} must be {self.words}, got {value!r}")
        return value

    def above_ceiling(self, value: Any) -> bool:
        """Whether `value` is a finite number of the right kind refused only for being over
        the upper bound `le` (the ceiling): such a value gets an error of its own."""
        kinds = int if self.integer else int | float
        if (
            not self.cap
            or self.le is None
            or isinstance(value, bool)
            or not isinstance(value, kinds)
        ):
            return False
        return math.isfinite(value) and value > self.le

    def check_optional(self, owner: str, name: str, value: T | None) -> T | None:
        """`check`, with None meaning "not given"."""
        return None if value is None else self.check(owner, name, value)

    def field(self, default: Any = ..., *, description: str | None = None) -> Any:
        """A pydantic `Field` with these bounds: the spec's side."""
        return Field(
            default, gt=self.gt, ge=self.ge, lt=self.lt, le=self.le, description=description
        )

    # As metadata, the bounds apply to a container's items too: `dict[str, Annotated[float,
    # SECONDS]]` (annotated-types' grouped metadata, which pydantic unpacks).
    @property
    def __is_annotated_types_grouped_metadata__(self) -> Literal[True]:
        return True

    def __iter__(self) -> Iterator[annotated_types.BaseMetadata]:
        given = {"gt": Gt, "ge": Ge, "lt": Lt, "le": Le}
        for name, cls in given.items():
            value = getattr(self, name)
            if value is not None:
                yield cls(value)


# The ceilings: the most any option may ask for, whoever sets it (a constructor, a workflow
# file, the CLI). One table, so the docs, the schema and the errors quote the same numbers.
MAX_TURNS = 1_000
"""Turns, iterations, rounds, stalls, ping-pongs, graph nodes visited: per pattern or agent."""
MAX_REASKS = 100
"""Retry attempts, re-asks of a malformed answer, re-plans."""
MAX_SECONDS = 30 * 86_400
"""Any duration: timeouts, deadlines, TTLs, leases, delays (30 days)."""
MAX_CONCURRENCY = 10_000
"""Runs or items at once (a worker's, `podium batch`'s)."""
MAX_BATCH = 1_000
"""Items answered by one batched model call."""
MAX_STEPS = 10_000_000
"""A run's step-count limit (`Runtime(max_steps=...)`) may be raised up to this."""
MAX_BYTES = 1 << 30
"""A run's input and each step's output size limits may be raised up to this (1 GiB)."""
MAX_JOURNAL_BYTES = 1 << 40
"""A run's total journal size limit may be raised up to this (1 TiB)."""

CEILINGS: dict[str, int] = {
    "turns": MAX_TURNS,
    "reasks": MAX_REASKS,
    "seconds": MAX_SECONDS,
    "concurrency": MAX_CONCURRENCY,
    "batch": MAX_BATCH,
    "steps": MAX_STEPS,
    "bytes": MAX_BYTES,
    "journal_bytes": MAX_JOURNAL_BYTES,
}
"""Every ceiling by name (the table docs/security.md shows)."""


def _number(value: float | None) -> str:
    """2592000.0 as `2,592,000`: a ceiling people read."""
    if value is not None and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,}"


POSITIVE = Bound("a positive integer", integer=True, ge=1)
"""A quorum, a budget's count: numbers bounded by something else."""
TURNS = Bound(f"a positive integer up to {MAX_TURNS:,}", integer=True, ge=1, le=MAX_TURNS, cap=True)
"""Turns, stalls, rounds, ping-pongs."""
ATTEMPTS = Bound(
    f"a positive integer up to {MAX_REASKS:,}", integer=True, ge=1, le=MAX_REASKS, cap=True
)
"""Retry attempts (the first one included)."""
COUNT = Bound("an integer >= 0", integer=True, ge=0)
"""How many more times, so 0 is allowed (bounded by the check of what it becomes)."""
REASKS = Bound(f"an integer from 0 to {MAX_REASKS:,}", integer=True, ge=0, le=MAX_REASKS, cap=True)
"""Re-asks, re-plans: how many more times, so 0 is allowed."""
CONCURRENCY = Bound(
    f"a positive integer up to {MAX_CONCURRENCY:,}",
    integer=True,
    ge=1,
    le=MAX_CONCURRENCY,
    cap=True,
)
_DAYS = f"{MAX_SECONDS // 86_400} days"
SECONDS = Bound(
    f"a positive number of seconds up to {MAX_SECONDS:,} ({_DAYS})", gt=0, le=MAX_SECONDS, cap=True
)
"""Timeouts, deadlines, TTLs: they must end, and within the ceiling."""
# A lease or a polling interval must end: `inf` would be a lease no other worker could take
# over (the ceiling refuses it as it refuses any duration over 30 days).
FINITE_SECONDS = Bound(
    f"a positive number of seconds up to {MAX_SECONDS:,} ({_DAYS})", gt=0, le=MAX_SECONDS, cap=True
)
FINITE_WAIT = Bound(
    f"a number of seconds from 0 to {MAX_SECONDS:,} ({_DAYS})", ge=0, le=MAX_SECONDS, cap=True
)
DELAY = FINITE_WAIT
"""Backoff delays: 0 is allowed, and they end."""
POSITIVE_NUMBER = Bound("a positive number", gt=0)
NON_NEGATIVE = Bound("a number >= 0", ge=0)
"""Weights, priors, delays."""
FRACTION = Bound("in [0, 1]", ge=0, le=1)
"""Confidences and a router's threshold."""
MAJORITY = Bound("in (0.5, 1]", gt=0.5, le=1)
"""The share of votes that makes a consensus: more than half."""
BATCH = Bound(f"an int from 2 to {MAX_BATCH:,}", integer=True, ge=2, le=MAX_BATCH, cap=True)
"""Items per batched model call: one item is no batch."""
