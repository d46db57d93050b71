"""Long-lived connections a runtime's steps share: one per key (an MCP server's command or
URL), opened on first use, reopened after it broke, closed by `Runtime.close`.

    held = await ctx.connections.get(key, lambda: open_session(...))
    result = await held.watch(held.value.call_tool(...))

A connection is an async context manager (the MCP SDK's clients are). Its SDK runs it in
task groups that must be entered and left in one task, and that cancel the task they run
in when the transport breaks; so each connection is held open by a task of its own, never by
a step's. A step that uses it from its own task `watch`es the call: when the connection
dies under it, the call is cancelled and `ConnectionLost` raised, instead of waiting on an
answer that cannot come. The runtime knows nothing of what is connected: the caller names
the key and says how to open it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Opener = Callable[[], AbstractAsyncContextManager[T]]


class ConnectionLost(Exception):
    """The connection a call was using closed or broke before the call finished; `cause` is
    what broke it, when known."""

    def __init__(self, cause: BaseException | None = None) -> None:
        why = "" if cause is None else f": {type(cause).__name__}: {cause}"
        super().__init__(f"the connection closed{why}")
        self.cause = cause


class Held(Generic[T]):
    """One open connection: `value` is what the context manager gave; `closed` is set once
    it is gone (closed on purpose, or broken: then `error` says why)."""

    __slots__ = ("_stop", "_task", "closed", "error", "key", "value")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.value: Any = None
        self.error: BaseException | None = None
        self.closed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    async def watch(self, work: Awaitable[R]) -> R:
        """`work`'s result, or `ConnectionLost` if the connection closes first (`work` is
        cancelled then)."""
        task = asyncio.ensure_future(work)
        if not self.alive:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise ConnectionLost(self.error)
        closing = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            closing.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise ConnectionLost(self.error)

    async def _hold(self, opener: Opener[T], ready: asyncio.Future[None]) -> None:
        try:
            async with opener() as value:
                self.value = value
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:  # broken (or failed to open): the next `get` reopens
            self.error = e
            if not ready.done():
                ready.set_exception(e)
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
        finally:
            self.closed.set()

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(BaseException):
                await task


class Connections:
    """The connections of one runtime, by key. `get` opens a key's connection once (callers
    that ask at the same time wait for the same one) and again after it closed; `close`
    closes them all. A runtime used from one event loop and then another (`run_sync`)
    closes them at the end of each; a connection found on another loop is opened anew."""

    def __init__(self) -> None:
        self._held: dict[Hashable, Held[Any]] = {}
        self._opening: dict[Hashable, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return sum(1 for h in self._held.values() if h.alive)

    def keys(self) -> list[Hashable]:
        """The keys of the connections open now."""
        return [k for k, h in self._held.items() if h.alive]

    async def get(self, key: Hashable, opener: Opener[T]) -> Held[T]:
        """The open connection for `key`, opening it with `opener()` when there is none (or
        it closed). Raises what opening raised."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: the old loop's tasks are gone
            self._held.clear()
            self._opening.clear()
            self._loop = loop
        while True:
            held = self._held.get(key)
            if held is not None and held.alive and held.value is not None:
                return held
            opening = self._opening.get(key)
            if opening is None:
                break
            await asyncio.shield(opening)  # someone else opens it: use theirs
        held = Held(key)
        ready: asyncio.Future[None] = loop.create_future()
        self._opening[key] = ready
        self._held[key] = held
        # Settled by the holder task, whether or not the caller still waits (a caller that
        # gives up does not stop the opening: the next caller gets the connection).
        ready.add_done_callback(lambda done: self._opened(key, held, done))
        held._task = loop.create_task(held._hold(opener, ready), name=f"connection {key!r}")
        await asyncio.shield(ready)
        return held

    def _opened(self, key: Hashable, held: Held[Any], ready: asyncio.Future[None]) -> None:
        if self._opening.get(key) is ready:
            del self._opening[key]
        failed = ready.cancelled() or ready.exception() is not None
        if failed and self._held.get(key) is held:
            del self._held[key]

    def drop(self, held: Held[Any]) -> None:
        """Forget a connection found broken: the next `get` of its key opens a new one (it
        closes in the background)."""
        if self._held.get(held.key) is held:
            del self._held[held.key]
        held._stop.set()

    async def close(self) -> None:
        """Close every connection (their subprocesses end, their sessions are released)."""
        held, self._held = list(self._held.values()), {}
        self._opening.clear()
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            return  # opened on a loop that is gone: its tasks went with it
        for h in held:
            h._stop.set()
        for h in held:
            await h.close()
