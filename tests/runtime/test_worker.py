"""Workers: submitted runs, leases, takeover after a dead worker, graceful shutdown.

Time is a `FakeClock`: polls, leases and deadlines pass when a test advances it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from podium import NO_RETRY, RunStatus, Runtime, Sequential, UsageError, agent
from podium.testing import FakeClock

SEEN: list[str] = []
# Set by a test that needs `slow_two` to be in the middle of its step: the step waits for it.
HOLD: asyncio.Event | None = None
TWO_STARTED: asyncio.Event | None = None


@agent
async def step_one(x: int) -> int:
    SEEN.append(f"one:{x}")
    return x + 1


@agent
async def slow_two(x: int) -> int:
    SEEN.append(f"two:{x}")
    if TWO_STARTED is not None and sum(s.startswith("two:") for s in SEEN) >= 2:
        TWO_STARTED.set()
    if HOLD is not None:
        await HOLD.wait()
    return x * 10


@agent
async def step_three(x: int) -> int:
    SEEN.append(f"three:{x}")
    return x + 3


FLOW = Sequential("chain", [step_one, slow_two, step_three])


def sqlite_rt(tmp_path: Path, clock: FakeClock) -> Runtime:
    return Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY, clock=clock)


async def advance_until(clock: FakeClock, work: Awaitable[Any], step: float, limit: int) -> Any:
    """Advance `clock` by `step` each time something sleeps on it, until `work` is done (at
    most `limit` steps); return its result."""
    task = asyncio.ensure_future(work)
    for _ in range(limit):
        sleeping = asyncio.ensure_future(clock.wait_for_sleepers())
        await asyncio.wait([task, sleeping], return_when=asyncio.FIRST_COMPLETED)
        sleeping.cancel()
        if task.done():
            return task.result()
        await clock.advance(step)
    task.cancel()
    raise AssertionError(f"not done after {limit} steps of {step}s")


async def test_submitted_runs_are_driven_to_the_end(tmp_path: Path) -> None:
    SEEN.clear()
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    ids = [await rt.submit(FLOW, i) for i in range(6)]
    work = rt.work(concurrency=3, poll=1, until_idle=True, agents=[FLOW])
    stats = await advance_until(clock, work, 1, 100)
    assert stats.completed == 6 and stats.failed == 0
    outputs = [(await rt.get_run(r)).output for r in ids]
    assert outputs == [(i + 1) * 10 + 3 for i in range(6)]
    assert sorted(SEEN).count("one:0") == 1  # each step ran once
    store = await rt.open()
    assert await store.kv_list("queue") == {}
    assert [await store.get_lease(r) for r in ids] == [None] * 6  # every lease let go
    await rt.close()


async def test_a_run_held_by_a_live_worker_is_not_taken(tmp_path: Path) -> None:
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    run_id = await rt.submit(FLOW, 1)
    store = await rt.open()
    assert await store.claim_lease(run_id, "someone-else", 60)
    worker = asyncio.create_task(rt.work(poll=1, until_idle=True, agents=[FLOW]))
    for _ in range(59):  # 59 polls: the lease is live all along
        await clock.wait_for_sleepers()
        await clock.advance(1)
    await clock.wait_for_sleepers()
    assert not worker.done()  # it waits for the run a live worker holds; it does not take it
    rt.stop()
    stats = await worker
    assert stats.started == 0
    assert (await rt.get_run(run_id)).status == RunStatus.RUNNING
    await rt.close()


async def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    run_id = await rt.submit(FLOW, 2)
    store = await rt.open()
    assert await store.claim_lease(run_id, "a-dead-worker", 30)
    assert await rt.claim(store, run_id) is None  # live until it runs out
    await clock.advance(30.01)
    stats = await rt.work(poll=1, until_idle=True, agents=[FLOW])
    assert stats.completed == 1
    assert (await rt.get_run(run_id)).output == 33
    await rt.close()


async def test_graceful_stop_parks_runs_at_a_step_boundary(tmp_path: Path) -> None:
    global HOLD, TWO_STARTED
    SEEN.clear()
    HOLD, TWO_STARTED = asyncio.Event(), asyncio.Event()
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    ids = [await rt.submit(FLOW, i) for i in range(2)]
    try:
        worker = asyncio.create_task(rt.work(concurrency=2, poll=1, agents=[FLOW]))
        async with asyncio.timeout(10):
            await TWO_STARTED.wait()  # both runs are inside slow_two
        rt.stop()  # as SIGTERM does
        HOLD.set()  # the running steps finish
        stats = await worker
    finally:
        HOLD = TWO_STARTED = None
    assert stats.parked == 2
    for run_id in ids:
        record = await rt.get_run(run_id)
        assert record.status == RunStatus.RUNNING  # resumable
        steps = {s.key: s.status for s in await rt.steps(run_id)}
        assert steps["/chain/slow_two#0"] == "completed"  # the running step finished
        assert "/chain/step_three#0" not in steps  # no new step started
    assert not [s for s in SEEN if s.startswith("three:")]
    # another worker (here: a fresh runtime) finishes them from the journal
    rt2 = sqlite_rt(tmp_path, clock)
    stats2 = await rt2.work(poll=1, until_idle=True, agents=[FLOW])
    assert stats2.completed == 2
    assert sum(s.startswith("two:") for s in SEEN) == 2  # slow_two was not run again
    await rt.close()
    await rt2.close()


async def test_until_idle_waits_for_runs_a_dead_worker_still_holds(tmp_path: Path) -> None:
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    run_id = await rt.submit(FLOW, 3)
    store = await rt.open()
    assert await store.claim_lease(run_id, "a-worker-that-died", 30)
    started = clock.now()
    stats = await advance_until(clock, rt.work(poll=1, until_idle=True, agents=[FLOW]), 1, 100)
    assert stats.completed == 1  # it waited for the lease to run out, then took the run
    assert clock.now() - started >= 30  # not before
    assert (await rt.get_run(run_id)).output == 43
    await rt.close()


async def test_a_worker_applies_overdue_deadlines(tmp_path: Path) -> None:
    from podium import HumanApproval

    gate = Sequential("gate", [step_one, HumanApproval("ok", deadline=3600, on_timeout="approve")])
    clock = FakeClock()
    rt = sqlite_rt(tmp_path, clock)
    waiting = await rt.run(gate, 1)
    assert waiting.status == RunStatus.WAITING
    await rt.work(poll=1, sweep_every=0.0, until_idle=True, agents=[gate])
    assert (await rt.get_run(waiting.run_id)).status == RunStatus.WAITING  # not due yet
    await clock.advance(3600)
    stats = await rt.work(poll=1, sweep_every=0.0, until_idle=True, agents=[gate])
    assert stats.completed == 1
    assert (await rt.get_run(waiting.run_id)).output == 2
    await rt.close()


async def test_a_run_driven_elsewhere_cannot_be_resumed_twice(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pytest

    from podium import UsageError

    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    run_id = await rt.submit(FLOW, 4)
    store = await rt.open()
    # a live process on another machine holds it: refused, nothing written
    elsewhere = {"host": "elsewhere", "pid": 4242}
    held = await store.claim_lease(run_id, "abc", 60, holder=elsewhere)
    assert held is not None
    with pytest.raises(UsageError, match=r"being driven by elsewhere pid 4242 \(holder abc\)"):
        await rt.resume(run_id, FLOW)
    assert await rt.steps(run_id) == []
    # a process of this machine (same boot, same pid namespace) that exited: taken at once
    gone = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, podium.runtime.leases as l; print(json.dumps(l.this_holder()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    await store.release_lease(held)
    assert await store.claim_lease(run_id, "dead", 60, holder=json.loads(gone))
    assert (await rt.resume(run_id, FLOW)).output == 53
    assert await store.get_lease(run_id) is None  # released at the end
    await rt.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lease", float("inf")),
        ("lease", 0),
        ("poll", float("nan")),
        ("poll", float("inf")),
        ("grace", -1),
        ("grace", float("inf")),
        ("concurrency", 0),
        ("sweep_every", float("inf")),
    ],
)
async def test_durations_that_never_end_are_refused_before_any_run_is_taken(
    tmp_path: Path, option: str, value: float
) -> None:
    """A lease of `inf` is one no other worker could ever take over: the Python API refuses
    it as the CLI does, naming the option, and no run is claimed."""
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        run_id = await rt.submit(_noop, 1)
        with pytest.raises(UsageError, match=rf"{option} must be"):
            await rt.work(until_idle=True, agents=[_noop], **{option: value})
        assert (await rt.get_run(run_id)).status == RunStatus.RUNNING
    with pytest.raises(
        UsageError, match="Runtime: lease must be a positive number of seconds up to"
    ):
        Runtime("memory://", lease=float("inf"))


@agent
async def _noop(x: int) -> int:
    return x
