"""Workers: processes that take submitted runs from the store and drive them to the end.

    run_id = await rt.submit(flow, {"order": 7})     # anywhere: queued in the store
    await rt.work(concurrency=8)                     # in one or more worker processes

A submitted run is in the store's `queue` namespace until it ends. A worker takes one by
claiming its lease (atomic in every store) and renews the lease while the run is in its
hands, so two workers never drive the same run, and a run whose worker died (SIGKILL, a lost
machine) is taken over by another once the lease runs out (at once if the dead worker was a
process of this machine and pid namespace: `podium.runtime.leases`): it resumes from its
journal, completed steps replayed, unfinished effects settled. A worker that stalled past its
lease and lost the run to another is fenced: the store refuses its next write of that run,
and it stops driving it.

Runs started with `rt.run` belong to the process that started them and are never taken by a
worker; `podium resume RUN` continues them.

A worker also applies people's deadlines: every `sweep_every` seconds it resumes waiting runs
whose request is overdue, so the waiting step rejects, approves or escalates on its own.

Graceful shutdown: on SIGTERM (or `Worker.stop()`) the worker takes no new runs, lets the
steps already running finish, starts no new step (the run is parked: still `running`, lease
released, ready for any worker), and after `grace` seconds cancels what is left.

Polls and sweeps run on the runtime's clock (`Runtime(clock=...)`), so a test can advance a
`podium.testing.FakeClock` past `poll` or `sweep_every` instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podium.core.bounds import CONCURRENCY, FINITE_SECONDS, FINITE_WAIT
from podium.core.records import TERMINAL_STATUSES, Lease

if TYPE_CHECKING:
    from podium.runtime.runtime import RunResult, Runtime

QUEUE = "queue"


@dataclass(slots=True)
class WorkStats:
    """What one `work()` call did."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    waiting: int = 0
    parked: int = 0
    errors: int = 0


class Worker:
    def __init__(
        self,
        rt: Runtime,
        *,
        concurrency: int = 8,
        lease: float = 30.0,
        poll: float = 0.5,
        grace: float = 30.0,
        agents: dict[str, Any] | None = None,
        sweep_every: float | None = 30.0,
        signals: bool = True,
    ) -> None:
        self.rt = rt
        # False where the process already handles SIGTERM itself (the HTTP server's uvicorn):
        # it stops the worker when it shuts down
        self.signals = signals
        self.clock = rt.clock
        self.sweep_every = FINITE_WAIT.check_optional("Worker", "sweep_every", sweep_every)
        self.concurrency = CONCURRENCY.check("Worker", "concurrency", concurrency)
        self.lease = FINITE_SECONDS.check("Worker", "lease", lease)
        self.poll = FINITE_SECONDS.check("Worker", "poll", poll)
        self.grace = FINITE_WAIT.check("Worker", "grace", grace)
        self.agents = agents or {}
        self.owner = rt.owner  # the runtime renews the leases of the runs it drives
        self.stats = WorkStats()
        self._stopping = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._broken: set[str] = set()  # queued runs this worker failed to load: skipped
        self._held_elsewhere = 0  # queued runs another worker holds (or a dead one held)

    def stop(self) -> None:
        """Take no new runs; park running ones at their next step."""
        self._stopping.set()
        self.rt.draining = True

    async def run(self, *, until_idle: bool = False) -> WorkStats:
        loop = asyncio.get_running_loop()
        if self.signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGTERM, self.stop)
        last_sweep: float | None = None
        try:
            while not self._stopping.is_set():
                now = self.clock.monotonic()
                if self.sweep_every is not None and (
                    last_sweep is None or now - last_sweep >= self.sweep_every
                ):
                    last_sweep = now
                    await self._sweep()
                took = await self._take()
                # idle means nothing left to take: runs a dead worker still holds are not
                # idle work, they come free when its lease runs out
                if until_idle and not took and not self._tasks and not self._held_elsewhere:
                    break
                await self._wait_a_little()
        finally:
            await self._drain()
            if self.signals:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGTERM)
        return self.stats

    async def _take(self) -> bool:
        """Claim queued runs while there is room; True if any was taken."""
        store = await self.rt.open()
        room = self.concurrency - len(self._tasks)
        if room <= 0:
            return False  # `_held_elsewhere` keeps its last value
        took = False
        held = 0
        queued = await store.kv_list(QUEUE)
        for run_id in sorted(queued, key=lambda r: queued[r].get("at", 0)):
            if room <= 0 or self._stopping.is_set():
                break
            if run_id in self._tasks or run_id in self._broken:
                continue
            lease = await self.rt.claim(store, run_id)
            if lease is None:
                held += 1  # another live worker holds it
                continue
            self._tasks[run_id] = asyncio.create_task(self._drive(lease))
            room -= 1
            took = True
        self._held_elsewhere = held
        return took

    async def _sweep(self) -> None:
        """Resume waiting runs whose request is past its deadline, so its timeout rule
        (reject, approve, escalate) applies without anyone running `podium sweep`."""
        store = await self.rt.open()
        for request in await self.rt.inbox():
            run_id = request.run_id
            if not request.overdue or run_id in self._tasks or run_id in self._broken:
                continue
            if len(self._tasks) >= self.concurrency or self._stopping.is_set():
                return
            lease = await self.rt.claim(store, run_id)
            if lease is not None:
                self._tasks[run_id] = asyncio.create_task(self._drive(lease))

    async def _wait_a_little(self) -> None:
        """Until `poll` seconds pass on the clock, a run ends, or `stop()`."""
        stop = asyncio.ensure_future(self._stopping.wait())
        tick = asyncio.ensure_future(self.clock.sleep(self.poll))
        try:
            await asyncio.wait(
                [stop, tick, *self._tasks.values()], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            tick.cancel()

    async def _drive(self, lease: Lease) -> None:
        run_id = lease.run_id
        store = await self.rt.open()
        self.stats.started += 1
        try:
            record = await store.get_run(run_id)
            if record is None or record.status in TERMINAL_STATUSES:
                await store.kv_delete(QUEUE, run_id)
                return
            result = await self.rt.resume(run_id, self.agents.get(record.agent))
            self._count(result)
            if result.status in TERMINAL_STATUSES or result.status == "waiting":
                await store.kv_delete(QUEUE, run_id)
        except asyncio.CancelledError:
            self.stats.parked += 1
            raise
        except Exception:
            self.stats.errors += 1  # misuse (a target that no longer loads): leave it queued
            self._broken.add(run_id)
        finally:
            with contextlib.suppress(Exception):
                await store.release_lease(lease)  # a no-op once `resume` claimed it anew
            self._tasks.pop(run_id, None)

    def _count(self, result: RunResult) -> None:
        status = str(result.status)
        if status == "completed":
            self.stats.completed += 1
        elif status == "failed":
            self.stats.failed += 1
        elif status == "waiting":
            self.stats.waiting += 1
        else:
            self.stats.parked += 1

    async def _drain(self) -> None:
        """Let running steps finish (runs park at their next step), then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks.values()), timeout=self.grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
