"""The limits every run has, whoever started it (OWASP LLM10, unbounded consumption).

    Runtime(max_steps=50_000, deadline=3600)      # every run of this runtime
    await rt.run(flow, x, max_steps=200)          # one run (kept with it: a resume keeps it)
    PODIUM_MAX_STEPS=200 podium run flow.yaml     # the environment, when code gives none

A run without a limit is a run a looping agent, a model that never says "done", or a hostile
input can keep going for ever. So every run has five, with defaults sized for real work:

- `max_steps` (10,000): steps a run may journal, counted from the journal, so a resume goes on
  counting where the run stopped (a step re-entered on resume is not counted twice);
- `deadline` (24 h): seconds of *running*, counted across resumes from the run's events. Time
  a run spends `waiting` for a person, or not driven at all (crashed, parked, queued), does not
  count: a person who takes a weekend to approve must not fail the run, and a deadline of
  wall-clock time would do exactly that;
- `max_input_bytes` (16 MiB): the run's input, as the store keeps it (JSON);
- `max_output_bytes` (16 MiB): each step's output, as the store keeps it, measured on the text
  the store writes anyway (never serialised twice);
- `max_journal_bytes` (1 GiB): the outputs of all of a run's steps together.

Passing one fails the run with `RunLimitExceededError` (the deadline with its subclass
`RunTimeoutError`), which is never retried. The limits may be raised up to the ceilings of
`podium.core.bounds` (`CEILINGS`), not switched off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from podium.core.bounds import MAX_BYTES, MAX_JOURNAL_BYTES, MAX_STEPS, SECONDS, Bound
from podium.core.records import Event
from podium.errors import UsageError

__all__ = [
    "DEFAULT_LIMITS",
    "ENV",
    "LIMITS_KV",
    "RunLimits",
    "active_seconds",
]

LIMITS_KV = "run_limits"
"""Where the limits given to one run (`rt.run(..., max_steps=...)`) are kept for its resumes."""

STEPS = Bound(f"a positive integer up to {MAX_STEPS:,}", integer=True, ge=1, le=MAX_STEPS, cap=True)
BYTES = Bound(f"a positive integer up to {MAX_BYTES:,}", integer=True, ge=1, le=MAX_BYTES, cap=True)
JOURNAL_BYTES = Bound(
    f"a positive integer up to {MAX_JOURNAL_BYTES:,}",
    integer=True,
    ge=1,
    le=MAX_JOURNAL_BYTES,
    cap=True,
)

ENV: dict[str, str] = {
    "deadline": "PODIUM_RUN_DEADLINE",
    "max_steps": "PODIUM_MAX_STEPS",
    "max_input_bytes": "PODIUM_MAX_INPUT_BYTES",
    "max_output_bytes": "PODIUM_MAX_OUTPUT_BYTES",
    "max_journal_bytes": "PODIUM_MAX_JOURNAL_BYTES",
}
"""The environment variable of each limit, read when code gives none."""

_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The five limits of a run (see the module's docstring for what each counts)."""

    deadline: float = 24 * 3600.0
    max_steps: int = 10_000
    max_input_bytes: int = 16 * _MIB
    max_output_bytes: int = 16 * _MIB
    max_journal_bytes: int = 1024 * _MIB

    def __post_init__(self) -> None:
        SECONDS.check("RunLimits", "deadline", self.deadline)
        STEPS.check("RunLimits", "max_steps", self.max_steps)
        BYTES.check("RunLimits", "max_input_bytes", self.max_input_bytes)
        BYTES.check("RunLimits", "max_output_bytes", self.max_output_bytes)
        JOURNAL_BYTES.check("RunLimits", "max_journal_bytes", self.max_journal_bytes)

    def over(self, given: Mapping[str, Any]) -> RunLimits:
        """These limits with the ones in `given` that are set (not None) in their place."""
        if not given:  # the common case, once per run: nothing to lay over
            return self
        changes = {k: v for k, v in given.items() if v is not None}
        unknown = set(changes) - set(ENV)
        if unknown:
            raise UsageError(f"unknown run limit(s) {sorted(unknown)}; limits are {list(ENV)}")
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunLimits:
        """The defaults, with each `PODIUM_...` variable that is set in its place."""
        environ = os.environ if environ is None else environ
        given: dict[str, Any] = {}
        for f in fields(cls):
            text = environ.get(ENV[f.name], "").strip()
            if text:
                value = _parse(ENV[f.name], text, f.name == "deadline")
                try:
                    cls().over({f.name: value})
                except UsageError as e:
                    raise UsageError(f"{ENV[f.name]}={text!r}: {e}") from None
                given[f.name] = value
        return cls().over(given)


def _parse(name: str, text: str, seconds: bool) -> float | int:
    """A limit from the environment: seconds may have a fraction, counts may not."""
    try:
        return float(text) if seconds else int(text.replace("_", ""))
    except ValueError:
        kind = "a number of seconds" if seconds else "a whole number"
        raise UsageError(f"{name}={text!r} must be {kind}") from None


DEFAULT_LIMITS = RunLimits()


def given_limits(
    workflow: Mapping[str, Any] | None = None,
    *,
    deadline: Any = None,
    max_steps: Any = None,
    max_journal_bytes: Any = None,
) -> dict[str, Any]:
    """The limits set for one run, checked now, before anything is written (a bad value is a
    `UsageError` naming it): those of its `workflow` file (`limits:`), and in their place
    those the caller set (None: not set)."""
    if workflow is not None and not isinstance(workflow, Mapping):
        raise UsageError(f"run_limits must be a mapping of limit to value, got {workflow!r}")
    chosen = dict(workflow) if workflow else {}
    if deadline is not None:
        chosen["deadline"] = deadline
    if max_steps is not None:
        chosen["max_steps"] = max_steps
    if max_journal_bytes is not None:
        chosen["max_journal_bytes"] = max_journal_bytes
    if chosen:
        DEFAULT_LIMITS.over(chosen)  # checks each value against its bound
    return chosen


def active_seconds(events: Iterable[Event]) -> float:
    """Seconds a run spent running, from its events: each drive (from `run.started` or
    `run.resumed` to the last event before the next) counts its span; the gaps between
    drives (waiting for a person, crashed, parked, queued) do not."""
    total = 0.0
    start: float | None = None
    last = 0.0
    for e in events:
        if e.kind in ("run.started", "run.resumed"):
            if start is not None:
                total += last - start
            start = last = e.ts
        elif start is not None:
            last = e.ts
            if e.kind in _DRIVE_ENDS:  # what comes after (a decision recorded) is not running
                total += last - start
                start = None
    if start is not None:
        total += last - start
    return max(total, 0.0)


# The events that end a drive of a run (`run.<status>` as `Runtime` concludes it).
_DRIVE_ENDS = frozenset(
    {"run.waiting", "run.completed", "run.failed", "run.parked", "run.cancelled"}
)
