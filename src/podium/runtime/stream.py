"""`RunStream`: a run's events as they happen, for one reader.

    async with rt.stream(agent, input) as stream:
        async for event in stream:
            if event.kind == "model.delta":
                print(event.data["text"], end="")
    result = await stream.result()

The run is its own task; the stream starts it on first use and is fed from the run's emit
(a plain call, on the same loop). Events are the run's journaled events, in order, plus
`model.delta` events: a model step's text as it is written, which go to this reader only and
never to the store (the step's journaled answer holds the whole text). A delta carries the
step's key, name and attempt; the `seq` of the journaled event before it.

The run never waits for the reader. Events wait in a queue; once `BUFFER` of them wait
unread, a new delta is added to the last unread delta of its step instead of queued, so a
reader that falls behind, or stops reading, gets the same text in fewer, bigger pieces: the
queue holds at most `BUFFER` events plus the run's step events, whatever the token count.
(Folding keeps the order of a step's text; it may bring a step's text forward past events
of other steps that came in between.)

Leaving the stream early (`aclose()`, or the end of `async with`) interrupts the run as if
its process had stopped: it stays `running`, its completed steps journaled, and `resume`
continues it. A reader that only stops iterating, without closing, leaves the run going.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from podium.errors import RunError

if TYPE_CHECKING:
    from podium.core.records import Event
    from podium.runtime.runtime import RunResult

DELTA = "model.delta"

Start = Callable[[Callable[["Event"], None]], Coroutine[Any, Any, "RunResult"]]


class RunStream:
    """The events of one run, as it runs (see the module docstring). Iterate it once."""

    BUFFER: ClassVar[int] = 256

    __slots__ = ("_closed", "_pending", "_queue", "_ready", "_start", "_task", "run_id")

    def __init__(self, run_id: str, start: Start) -> None:
        self.run_id = run_id
        self._start: Start | None = start
        self._task: asyncio.Task[RunResult] | None = None
        self._queue: deque[Event] = deque()
        self._pending: dict[str, Event] = {}  # per step key: its last unread delta
        self._ready = asyncio.Event()
        self._closed = False

    def _put(self, event: Event) -> None:
        """Take one event from the run (never blocks, never drops text)."""
        if self._closed:
            return
        if event.kind == DELTA:
            last = self._pending.get(event.key)
            if (
                last is not None
                and last.attempt == event.attempt
                and len(self._queue) >= self.BUFFER
                and last.data is not None
                and event.data is not None
            ):
                last.data["text"] += event.data["text"]
                return
            self._pending[event.key] = event
        elif self._pending:
            self._pending.pop(event.key, None)  # the step moved on: later text is new text
        self._queue.append(event)
        self._ready.set()

    def _started(self) -> asyncio.Task[RunResult]:
        if self._task is None:
            start, self._start = self._start, None
            assert start is not None
            self._task = asyncio.create_task(start(self._put), name=f"podium run {self.run_id}")
            self._task.add_done_callback(lambda _: self._ready.set())
        return self._task

    def __aiter__(self) -> RunStream:
        return self

    async def __anext__(self) -> Event:
        task = self._started()
        while True:
            if self._queue:
                event = self._queue.popleft()
                if event.kind == DELTA and self._pending.get(event.key) is event:
                    del self._pending[event.key]
                return event
            if task.done():
                if not task.cancelled():
                    task.result()  # the run's misuse (an unknown run, say) surfaces here
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def result(self) -> RunResult:
        """What the run came to, once it ends (waits for it; unread events stay readable).
        Raises what `run`/`resume` would for misuse, and `RunError` if the stream was
        closed before the run ended."""
        task = self._started()
        await asyncio.wait({task})  # not `await task`: the run's own errors are not ours
        if task.cancelled():
            raise RunError(
                f"run {self.run_id} was interrupted (its stream was closed before it ended); "
                "resume it to continue"
            )
        return task.result()

    async def aclose(self) -> None:
        """Stop reading. A run still going is interrupted, resumable (see the module)."""
        self._closed = True
        self._queue.clear()
        self._pending.clear()
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait({task})

    async def __aenter__(self) -> RunStream:
        self._started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "new" if self._task is None else "done" if self._task.done() else "running"
        return f"RunStream({self.run_id!r}, {state}, {len(self._queue)} unread)"
