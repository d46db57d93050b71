"""Leases on real stores and real processes: a holder that lost its lease stops (its writes
are fenced), a killed holder not yet reaped is taken over at once, and two workers that share
a host name but not a pid namespace never drive one run together."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from podium import NO_RETRY, LeaseLost, RunStatus, Runtime, Sequential, UsageError, agent
from podium.stores import open_store
from podium.testing import FakeClock

TESTS = Path(__file__).resolve().parents[1]


async def test_a_holder_whose_lease_ran_out_is_fenced_and_stops(persistent_url: str) -> None:
    """Process A stalls in a step (a sync agent blocks its event loop) past its lease; B
    takes the run over and finishes it. When A wakes, the store refuses its write: A stops
    driving the run, and no later step runs twice. It used to carry on: its renewal failed
    in silence and its writes went through, so both drove the run."""
    calls: Counter[str] = Counter()
    entered, taken = threading.Event(), threading.Event()

    @agent
    def one(x: int) -> int:
        calls["one"] += 1
        return x

    @agent
    def stall(x: int) -> int:
        calls["stall"] += 1
        if calls["stall"] == 1:  # A: blocks its loop until B holds the run and got here
            entered.set()
            assert taken.wait(20)
        else:  # B
            taken.set()
        return x + 1

    @agent
    async def two(x: int) -> int:
        calls["two"] += 1
        return x * 10

    flow = Sequential("job", [one, stall, two])
    url = persistent_url

    def take_over() -> None:
        async def go() -> None:
            assert await asyncio.to_thread(entered.wait, 20)
            rt_b = Runtime(url, retry=NO_RETRY)
            try:
                while True:  # refused while A's lease lasts (A cannot renew: it is blocked)
                    try:
                        outcome.append(await rt_b.resume("job-1", flow))
                        return
                    except UsageError as e:
                        assert "being driven by" in str(e)
                        await asyncio.sleep(0.02)
            finally:
                await rt_b.close()

        try:
            asyncio.run(go())
        except BaseException as e:  # shown by the assertion below
            outcome.append(e)

    outcome: list[object] = []
    rt_a = Runtime(url, retry=NO_RETRY, lease=0.3)
    try:
        other = threading.Thread(target=take_over)
        other.start()  # it waits for A to stall (A's loop, this one, is then blocked)
        a = await rt_a.run(flow, 1, run_id="job-1")
        await asyncio.to_thread(other.join, 30)
        [b] = outcome
        assert isinstance(a.exception, LeaseLost) and a.status == RunStatus.RUNNING
        assert "another process took over its lease" in (a.error or "")
        assert (b.status, b.output) == (RunStatus.COMPLETED, 20)  # type: ignore[attr-defined]
        assert calls == Counter(one=1, stall=2, two=1)  # A's stall was never journaled
        record = await rt_a.get_run("job-1")
        assert (record.status, record.output) == (RunStatus.COMPLETED, 20)
    finally:
        taken.set()
        await rt_a.close()


HOLD_LEASE = """
import asyncio, sys
from podium import Runtime

async def main():
    rt = Runtime(sys.argv[1])
    store = await rt.open()
    assert await rt.claim(store, sys.argv[2])
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rpartition(")")[2].split()[0]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
async def test_a_killed_holder_not_yet_reaped_is_taken_over_at_once(tmp_path: Path) -> None:
    """A holder killed with SIGKILL whose parent has not waited for it is a zombie: its pid
    still answers `kill(pid, 0)`, so it used to block the run for the whole 30 s lease."""
    url = f"sqlite:///{tmp_path / 'z.db'}"

    @agent
    async def double(x: int) -> int:
        return x * 2

    rt = Runtime(url)
    run_id = await rt.submit(double, 21, run_id="zombie-run")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LEASE, url, run_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)  # and no wait(): it stays a zombie
        while _state(holder.pid) != "Z":
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        result = await rt.resume(run_id, double)
        assert (result.status, result.output) == (RunStatus.COMPLETED, 42)
        assert time.monotonic() - t0 < 5  # at once, not after the 30 s lease
        assert _state(holder.pid) == "Z"  # it really was never reaped meanwhile
    finally:
        holder.kill()
        holder.communicate()
        await rt.close()


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


RUNS = 20


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --pid` (root or user ns)")
def test_workers_sharing_a_host_name_but_not_a_pid_namespace_do_nothing_twice(
    tmp_path: Path,
) -> None:
    """One `podium worker` runs as usual, another in its own pid namespace (as in a container
    with host networking, or a cloned VM): same host name, pids that mean nothing to each
    other. The second used to see the first's pid missing, call it dead, and take its runs
    while it still drove them: 4 to 8 runs of 20 had effects twice, with no kill at all."""
    from lease_flow import STEPS, TARGET, flow  # type: ignore[import-not-found]

    url = f"sqlite:///{tmp_path / 'store.db'}"
    side = tmp_path / "side.db"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_LEASE_SIDE_DB": str(side),
    }

    async def submit() -> list[str]:
        rt = Runtime(url)
        try:
            return [
                await rt.submit(flow, n, run_id=f"order-{n:02d}", target=TARGET)
                for n in range(RUNS)
            ]
        finally:
            await rt.close()

    ids = asyncio.run(submit())
    worker = [sys.executable, "-m", "podium", "worker", "--store", url, "--until-idle"]
    worker += ["--concurrency", "10", "--lease", "5", "--grace", "1"]
    spawn = {"cwd": TESTS, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    first = subprocess.Popen(worker, text=True, **spawn)  # type: ignore[call-overload]
    second = None
    try:
        while _effects(side) == 0:  # the first worker holds runs and is in their middle
            assert first.poll() is None, first.communicate()
            time.sleep(0.01)
        namespaced = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *worker]
        second = subprocess.Popen(namespaced, text=True, **spawn)  # type: ignore[call-overload]
        for proc in (first, second):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    keys = _keys(side)
    assert len(keys) - len(set(keys)) == 0, Counter(k for k in keys if keys.count(k) > 1)
    assert len(set(keys)) == RUNS * STEPS
    statuses = asyncio.run(_statuses(url, ids))
    assert statuses == {"completed": RUNS}


def _effects(side: Path) -> int:
    return len(_keys(side))


def _keys(side: Path) -> list[str]:
    if not side.exists():
        return []
    conn = sqlite3.connect(side, timeout=30)
    try:
        return [str(k) for (k,) in conn.execute("SELECT idem_key FROM effects")]
    except sqlite3.OperationalError:  # the table is not there yet
        return []
    finally:
        conn.close()


async def _statuses(url: str, ids: list[str]) -> dict[str, int]:
    store = open_store(url)
    await store.open()
    try:
        runs = [await store.get_run(r) for r in ids]
    finally:
        await store.close()
    return dict(Counter(str(r.status) if r else "missing" for r in runs))


async def test_a_lease_taken_while_a_step_runs_starts_no_further_step(
    store_url: str, clock: FakeClock
) -> None:
    """The heartbeat on its own: while a step runs, another holder takes the run's lease;
    the next renewal fails, and the step after never starts, on every store (the memory
    store fences no writes, and a buffered SQLite write fails only after the next step has
    begun: the heartbeat is what stops it)."""
    entered, go_on = asyncio.Event(), asyncio.Event()
    calls: Counter[str] = Counter()

    @agent
    async def waits(x: int) -> int:
        calls["waits"] += 1
        entered.set()
        await go_on.wait()
        return x + 1

    @agent
    async def after(x: int) -> int:
        calls["after"] += 1
        return x * 10

    flow = Sequential("job", [waits, after])
    store = open_store(store_url, clock=clock)
    rt = Runtime(store, retry=NO_RETRY, lease=30, clock=clock)
    try:
        running = asyncio.create_task(rt.run(flow, 1, run_id="job-hb"))
        await asyncio.wait_for(entered.wait(), 10)
        held = await store.get_lease("job-hb")
        assert held is not None and held.owner == rt.owner
        assert await store.claim_lease("job-hb", "thief", 600, steal=held.epoch)
        await clock.wait_for_sleepers(1)  # the heartbeat sleeps a third of the lease
        await clock.advance(10)  # it wakes, and its renewal is refused
        go_on.set()
        result = await asyncio.wait_for(running, 10)
        assert isinstance(result.exception, LeaseLost), result.error
        assert calls == Counter(waits=1)  # `after` never started
    finally:
        go_on.set()
        await rt.close()
