"""The clocks: the real one is the default everywhere; FakeClock moves only when advanced."""

from __future__ import annotations

import asyncio
import time

import pytest

from podium import Retry, Runtime, agent
from podium.core.clock import SYSTEM_CLOCK, Clock
from podium.errors import UsageError
from podium.stores import open_store
from podium.testing import FakeClock


def test_the_real_clock_is_the_default() -> None:
    rt = Runtime("memory://")
    assert rt.clock is SYSTEM_CLOCK
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(FakeClock(), Clock)
    assert abs(SYSTEM_CLOCK.now() - time.time()) < 5


def test_a_runtime_hands_its_clock_to_the_store_it_opens() -> None:
    clock = FakeClock()
    assert Runtime("memory://", clock=clock)._store_obj.clock is clock  # type: ignore[attr-defined]
    assert open_store("memory://", clock=clock).clock is clock  # type: ignore[attr-defined]


async def test_sleepers_wake_in_order_when_their_time_comes() -> None:
    clock = FakeClock(start=1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await clock.wait_for_sleepers(3)
    assert await clock.advance(0.5) == 0 and woke == []
    assert clock.now() == 1000.5 and clock.monotonic() == 0.5
    assert await clock.advance(2) == 2
    assert woke == [("a", 1001.0), ("b", 1002.0)]  # each sees the time it woke at
    assert clock.now() == 1002.5
    await clock.advance(10)
    assert woke[-1] == ("c", 1003.0) and clock.sleepers == 0
    await asyncio.gather(*tasks)


async def test_a_task_sleeping_in_a_loop_runs_once_per_interval() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def poll() -> None:
        while True:
            await clock.sleep(10)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(poll())
    await clock.wait_for_sleepers()
    await clock.advance(35)
    assert ticks == [10, 20, 30]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0  # a cancelled sleeper is forgotten


async def test_advance_refuses_to_go_back() -> None:
    clock = FakeClock()
    with pytest.raises(UsageError, match="negative"):
        await clock.advance(-1)
    await clock.set(clock.now() - 100)  # `set` never goes back either
    assert clock.monotonic() == 0


async def test_retry_backoff_sleeps_on_the_runtime_clock() -> None:
    clock = FakeClock()
    rt = Runtime("memory://", clock=clock)
    attempts: list[float] = []

    @agent(retry=Retry(attempts=3, initial_delay=60, max_delay=120, jitter=False, on=(ValueError,)))
    def shaky(x: int) -> int:
        attempts.append(clock.monotonic())
        if len(attempts) < 3:
            raise ValueError("not yet")
        return x

    run = asyncio.create_task(rt.run(shaky, 1))
    await clock.wait_for_sleepers()
    assert attempts == [0] and not run.done()  # a minute of backoff, and no real wait
    await clock.advance(60)
    await clock.wait_for_sleepers()
    assert attempts == [0, 60]
    await clock.advance(119)
    assert attempts == [0, 60] and not run.done()  # the second wait is twice as long
    await clock.advance(1)
    assert (await run).output == 1
    assert attempts == [0, 60, 180]
