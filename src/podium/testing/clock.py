"""`FakeClock`: time that moves only when a test moves it.

    clock = FakeClock()
    rt = Runtime("memory://", clock=clock)
    ...
    await clock.advance(3600)      # an hour passes at once: sleepers due by then wake up

Hand it to a `Runtime` (and through it to its store, breakers, workers and budgets), or to a
store or board of your own. Nothing that waits on it sleeps for real: `sleep` returns when a
test advances the clock past its wake-up time, so a test of a one-hour deadline takes
milliseconds and cannot be flaky about machine speed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from podium.errors import UsageError

DEFAULT_START = 1_800_000_000.0
"""Wall time a `FakeClock` starts at unless told (an arbitrary instant in 2027)."""


class FakeClock:
    """A clock for tests: `now()` starts at `start` (epoch seconds), `monotonic()` at 0, and
    both move together, only by `advance`/`set`. `sleep(s)` waits until the clock has moved
    `s` seconds; sleepers wake in order of their wake-up time (ties: in the order they went to
    sleep), deterministically."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._offset = 0.0
        self._start = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now()!r}, sleepers={self.sleepers})"

    # the Clock protocol ---------------------------------------------------------------------
    def now(self) -> float:
        return self._start + self._offset

    def monotonic(self) -> float:
        return self._offset

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved `seconds` from now; at once (one turn of the loop)
        when `seconds` is not positive."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._offset + seconds, next(self._order), future))
        self._notify()
        try:
            await future
        finally:
            if not future.done():  # cancelled while asleep: forget it
                future.cancel()
            self._sleepers = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(self._sleepers)

    # moving time ----------------------------------------------------------------------------
    @property
    def sleepers(self) -> int:
        """How many tasks sleep on this clock now."""
        return sum(1 for *_, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> int:
        """Move the clock `seconds` forward, waking each sleeper whose time has come, in order,
        and giving each woken task the loop to run until it sleeps again or finishes (so a
        task that sleeps in a loop runs once per interval passed). Returns how many wakings."""
        if seconds < 0:
            raise UsageError(f"FakeClock.advance: seconds must not be negative, got {seconds}")
        target = self._offset + seconds
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._offset = max(self._offset, wake)
            future.set_result(None)
            woken += 1
            await _settle()
        self._offset = target
        await _settle()
        return woken

    async def set(self, now: float) -> int:
        """Move wall time to `now` (not backwards), waking sleepers as `advance` does."""
        return await self.advance(max(0.0, now - self.now()))

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Wait (without sleeping for real) until at least `count` tasks sleep on this clock:
        so a test advances only once what it tests is waiting."""
        while self.sleepers < count:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
            self._changed = None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()


async def _settle(turns: int = 20) -> None:
    """Give the loop's ready tasks turns to run (a woken sleeper and what it awaits next)."""
    for _ in range(turns):
        await asyncio.sleep(0)
