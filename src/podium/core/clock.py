"""The clock podium reads: wall time, monotonic time, and sleeping.

Everything in podium that measures or waits on time (lease expiry and heartbeats, timestamps,
breaker cool-downs, retry backoff, deadlines for people, budgets' `seconds`, worker polls) asks
a `Clock` rather than the `time` module, so a test can hand in `podium.testing.FakeClock` and
move time forward instead of sleeping. `SYSTEM_CLOCK`, the real one, is the default everywhere.

Timeouts that asyncio enforces itself (a step's `timeout`, a run's `deadline`) run on the event
loop's clock and are not affected.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What podium needs of time. `now()` is wall time in seconds since the epoch (stored in
    records, compared across processes); `monotonic()` only measures intervals in this process;
    `sleep(seconds)` waits."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: `time.time`, `time.monotonic`, `asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
"""The default clock of every runtime, store, board and worker."""


def clock_or_default(clock: Clock | None) -> Clock:
    """`clock`, or the real one when None."""
    return SYSTEM_CLOCK if clock is None else clock
