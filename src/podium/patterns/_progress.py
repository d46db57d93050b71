"""Shared no-progress and repetition detectors for patterns that loop (GroupChat, Handoff,
and any other pattern that wants them).

Coordination note for pattern authors: extend this module compatibly (add functions or
optional arguments; do not change what existing ones return). Everything here is pure and
deterministic, so a resumed run that replays the same step outputs reaches the same verdicts.

- `StallDetector(patience)`: feed it one fingerprint per turn (a message's normalised text,
  the votes as a sorted tuple, a plan's JSON); a turn makes progress when its fingerprint was
  never seen before. After `patience` turns in a row without progress, `stalled` is true.
  `mark(progress)` records a turn the pattern judged itself. The turn driver (`_turns.py`)
  gives every looping pattern one, sized by its `max_stalls`.
- `fingerprint(value)`: a stable text form of any JSON-like value, for the detector.
- `ping_pong(path, bounces)`: whether a path of names ends by alternating between two of them
  (`A, B, A, B` with `bounces=2`).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any

from podium.core.serde import dumps

_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case and whitespace do not make a message new."""
    return _SPACE.sub(" ", text).strip().lower()


def fingerprint(value: Any) -> str:
    """A stable text form of a value: normalised text for strings, sorted JSON otherwise."""
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, dict):
        value = dict(sorted(value.items(), key=lambda kv: str(kv[0])))
    return dumps(value)


class StallDetector:
    """Counts turns in a row that brought nothing new; `stalled` after `patience` of them."""

    __slots__ = ("_seen", "patience", "streak")

    def __init__(self, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.patience = patience
        self.streak = 0
        self._seen: set[Hashable] = set()

    def observe(self, state: Hashable) -> bool:
        """Record one turn's state; True when it is new (progress)."""
        if state in self._seen:
            self.streak += 1
            return False
        self._seen.add(state)
        self.streak = 0
        return True

    def mark(self, progress: bool) -> None:
        """Record one turn judged by the pattern itself (a manager saying no progress is
        being made): progress ends the streak, anything else extends it."""
        self.streak = 0 if progress else self.streak + 1

    @property
    def stalled(self) -> bool:
        return self.streak >= self.patience


def ping_pong(path: Sequence[str], bounces: int = 2) -> tuple[str, str] | None:
    """The two names a path ends by bouncing between (`A, B` repeated `bounces` times, so
    `A, B, A, B` for 2), or None."""
    size = 2 * bounces
    if bounces < 1 or len(path) < size:
        return None
    tail = path[-size:]
    a, b = tail[0], tail[1]
    if a == b:
        return None
    if all(name == (a if i % 2 == 0 else b) for i, name in enumerate(tail)):
        return a, b
    return None
