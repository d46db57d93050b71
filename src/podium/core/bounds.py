"""The allowed values of a numeric option, declared once.

    POSITIVE.check("Loop 'l'", "max_turns", 0)   # UsageError: ... must be a positive integer
    max_turns: int = POSITIVE.field(10)          # the same rule in a YAML spec model

A constructor checks an option with `check`; the YAML spec model of the same option declares
it with `field` (or `Annotated[float, SECONDS]` inside a container), so the JSON Schema's
`minimum` and `exclusiveMinimum` are the very numbers the constructor enforces. Writing a
bound in one place only is what made the schema and the patterns disagree (`gt=0` against
`> 0.5`).
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
    "COUNT",
    "FRACTION",
    "MAJORITY",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_NUMBER",
    "SECONDS",
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
            raise UsageError(f"{owner}: {name} must be {self.words}, got {value!r}")
        return value

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


POSITIVE = Bound("a positive integer", integer=True, ge=1)
"""Turns, stalls, rounds, attempts, a quorum."""
COUNT = Bound("an integer >= 0", integer=True, ge=0)
"""Re-asks, re-plans: how many more times, so 0 is allowed."""
SECONDS = Bound("a positive number of seconds", gt=0)
# A lease or a polling interval must end: `inf` would be a lease no other worker could take
# over. Not for a spec field (JSON Schema has no infinity), only for constructors.
FINITE_SECONDS = Bound("a positive, finite number of seconds", gt=0, lt=math.inf)
FINITE_WAIT = Bound("a finite number of seconds >= 0", ge=0, lt=math.inf)
"""Timeouts and deadlines."""
POSITIVE_NUMBER = Bound("a positive number", gt=0)
NON_NEGATIVE = Bound("a number >= 0", ge=0)
"""Weights, priors, delays."""
FRACTION = Bound("in [0, 1]", ge=0, le=1)
"""Confidences and a router's threshold."""
MAJORITY = Bound("in (0.5, 1]", gt=0.5, le=1)
"""The share of votes that makes a consensus: more than half."""
