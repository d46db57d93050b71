"""A runtime's shared connections: one per key, opened once, reopened after it broke, closed
with the runtime; a call on a connection that dies is told so instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from podium import RunContext, Runtime, agent
from podium.runtime.connections import ConnectionLost, Connections


class Fake:
    """Counts how often a connection was opened and closed; `breaks` ends one from inside,
    as a transport's task group does when its server dies."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.breaks = asyncio.Event()
        self.fail: Exception | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[str]:
        await asyncio.sleep(0.01)  # opening takes a while: concurrent callers must wait
        if self.fail is not None:
            raise self.fail
        self.opened += 1
        host = asyncio.current_task()
        assert host is not None
        breaks = self.breaks = asyncio.Event()

        async def transport() -> None:  # like an SDK task group: cancels its host on failure
            await breaks.wait()
            host.cancel()

        watcher = asyncio.ensure_future(transport())
        try:
            yield f"conn{self.opened}"
        except asyncio.CancelledError:
            if not breaks.is_set():
                raise
            host.uncancel()
            raise ConnectionResetError("the server went away") from None
        finally:
            watcher.cancel()
            self.closed += 1


async def test_one_connection_per_key_opened_once() -> None:
    fake, pool = Fake(), Connections()
    held = await asyncio.gather(*(pool.get("k", fake.open) for _ in range(5)))
    assert {h.value for h in held} == {"conn1"} and fake.opened == 1
    other = await pool.get("other", fake.open)
    assert other.value == "conn2" and len(pool) == 2 and pool.keys() == ["k", "other"]
    await pool.close()
    assert fake.closed == 2 and len(pool) == 0


async def test_a_broken_connection_fails_its_calls_and_is_reopened() -> None:
    fake, pool = Fake(), Connections()
    held = await pool.get("k", fake.open)
    never = asyncio.Event()
    waiting = asyncio.ensure_future(held.watch(never.wait()))
    await asyncio.sleep(0.01)
    fake.breaks.set()
    with pytest.raises(ConnectionLost, match="ConnectionResetError: the server went away"):
        await waiting
    assert not held.alive
    with pytest.raises(ConnectionLost):
        await held.watch(asyncio.sleep(0))
    again = await pool.get("k", fake.open)
    assert again.value == "conn2" and again.alive
    assert await again.watch(asyncio.sleep(0, "answer")) == "answer"
    await pool.close()


async def test_drop_forgets_and_closes_a_connection() -> None:
    fake, pool = Fake(), Connections()
    held = await pool.get("k", fake.open)
    pool.drop(held)
    await held.closed.wait()
    assert fake.closed == 1 and len(pool) == 0
    assert (await pool.get("k", fake.open)).value == "conn2"
    await pool.close()


async def test_a_connection_that_cannot_open_raises_and_leaves_nothing() -> None:
    fake, pool = Fake(), Connections()
    fake.fail = OSError("no such program")
    results = await asyncio.gather(
        *(pool.get("k", fake.open) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    assert len(pool) == 0
    fake.fail = None
    assert (await pool.get("k", fake.open)).value == "conn1"
    await pool.close()


async def test_a_runtime_closes_its_connections_and_runs_reach_them() -> None:
    fake = Fake()
    seen: list[Any] = []

    @agent
    async def user(_: Any, ctx: RunContext) -> str:
        assert ctx.connections is not None
        held = await ctx.connections.get("k", fake.open)
        seen.append(held.value)
        return str(held.value)

    runtime = Runtime("memory://")
    await runtime.run(user, None)
    await runtime.run(user, None)
    assert seen == ["conn1", "conn1"]  # shared by the runtime's runs
    await runtime.close()
    assert fake.closed == 1
    assert (await runtime.run(user, None)).output == "conn2"  # open again after close
    await runtime.close()
    assert fake.closed == 2


async def test_a_caller_that_gives_up_while_opening_leaves_the_connection_to_the_next() -> None:
    fake, pool = Fake(), Connections()
    first = asyncio.ensure_future(pool.get("k", fake.open))
    await asyncio.sleep(0)
    first.cancel()  # a timeout, say: the opening goes on
    with pytest.raises(asyncio.CancelledError):
        await first
    held = await pool.get("k", fake.open)
    assert held.value == "conn1" and fake.opened == 1
    await pool.close()
    assert fake.closed == 1  # nothing left open behind the pool's back
