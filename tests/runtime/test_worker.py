"""Workers: submitted runs, leases, takeover after a dead worker, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from podium import NO_RETRY, RunStatus, Runtime, Sequential, agent

SEEN: list[str] = []


@agent
async def step_one(x: int) -> int:
    SEEN.append(f"one:{x}")
    return x + 1


@agent
async def slow_two(x: int) -> int:
    SEEN.append(f"two:{x}")
    await asyncio.sleep(0.2)
    return x * 10


@agent
async def step_three(x: int) -> int:
    SEEN.append(f"three:{x}")
    return x + 3


FLOW = Sequential("chain", [step_one, slow_two, step_three])


async def test_submitted_runs_are_driven_to_the_end(tmp_path: Path) -> None:
    SEEN.clear()
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    ids = [await rt.submit(FLOW, i) for i in range(6)]
    stats = await rt.work(concurrency=3, poll=0.01, until_idle=True, agents=[FLOW])
    assert stats.completed == 6 and stats.failed == 0
    outputs = [(await rt.get_run(r)).output for r in ids]
    assert outputs == [(i + 1) * 10 + 3 for i in range(6)]
    assert sorted(SEEN).count("one:0") == 1  # each step ran once
    store = await rt.open()
    assert await store.kv_list("queue") == {}
    assert [await store.get_lease(r) for r in ids] == [None] * 6  # every lease let go
    await rt.close()


async def test_a_run_held_by_a_live_worker_is_not_taken(tmp_path: Path) -> None:
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    run_id = await rt.submit(FLOW, 1)
    store = await rt.open()
    assert await store.claim_lease(run_id, "someone-else", 60)
    worker = asyncio.create_task(rt.work(poll=0.01, until_idle=True, agents=[FLOW]))
    await asyncio.sleep(0.3)
    assert not worker.done()  # it waits for the run a live worker holds; it does not take it
    rt.stop()
    stats = await worker
    assert stats.started == 0
    assert (await rt.get_run(run_id)).status == RunStatus.RUNNING
    await rt.close()


async def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    run_id = await rt.submit(FLOW, 2)
    store = await rt.open()
    assert await store.claim_lease(run_id, "a-dead-worker", 0.05)
    await asyncio.sleep(0.06)
    stats = await rt.work(poll=0.01, until_idle=True, agents=[FLOW])
    assert stats.completed == 1
    assert (await rt.get_run(run_id)).output == 33
    await rt.close()


async def test_graceful_stop_parks_runs_at_a_step_boundary(tmp_path: Path) -> None:
    SEEN.clear()
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    ids = [await rt.submit(FLOW, i) for i in range(2)]
    worker = asyncio.create_task(rt.work(concurrency=2, poll=0.01, agents=[FLOW]))
    while sum(s.startswith("two:") for s in SEEN) < 2:
        await asyncio.sleep(0.01)
    rt.stop()  # as SIGTERM does
    stats = await worker
    assert stats.parked == 2
    for run_id in ids:
        record = await rt.get_run(run_id)
        assert record.status == RunStatus.RUNNING  # resumable
        steps = {s.key: s.status for s in await rt.steps(run_id)}
        assert steps["/chain/slow_two#0"] == "completed"  # the running step finished
        assert "/chain/step_three#0" not in steps  # no new step started
    assert not [s for s in SEEN if s.startswith("three:")]
    # another worker (here: a fresh runtime) finishes them from the journal
    rt2 = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    stats2 = await rt2.work(poll=0.01, until_idle=True, agents=[FLOW])
    assert stats2.completed == 2
    assert sum(s.startswith("two:") for s in SEEN) == 2  # slow_two was not run again
    await rt.close()
    await rt2.close()


async def test_until_idle_waits_for_runs_a_dead_worker_still_holds(tmp_path: Path) -> None:
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    run_id = await rt.submit(FLOW, 3)
    store = await rt.open()
    assert await store.claim_lease(run_id, "a-worker-that-died", 0.3)
    stats = await rt.work(poll=0.05, until_idle=True, agents=[FLOW])
    assert stats.completed == 1  # it waited for the lease to run out, then took the run
    assert (await rt.get_run(run_id)).output == 43
    await rt.close()


async def test_a_worker_applies_overdue_deadlines(tmp_path: Path) -> None:
    from podium import HumanApproval

    gate = Sequential("gate", [step_one, HumanApproval("ok", deadline=0.05, on_timeout="approve")])
    rt = Runtime(f"sqlite:///{tmp_path}/w.db", retry=NO_RETRY)
    waiting = await rt.run(gate, 1)
    assert waiting.status == RunStatus.WAITING
    await asyncio.sleep(0.06)
    stats = await rt.work(poll=0.01, sweep_every=0.0, until_idle=True, agents=[gate])
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
