"""The crash proof of issue 4: many runs of a six-step workflow of non-idempotent side effects,
driven by real `podium worker` processes that are SIGKILLed at random moments and restarted.

Used by tests/test_crash_many.py and bench/reliability.py. A worker loads the flow from the
target `chaos_worker:flow` stored with each run (this directory on PYTHONPATH).

Each step uses a tool declared `effect=True, idempotent=False` that inserts one row, keyed by
its idempotency key, into a side-effect table in a SQLite file of its own (not the store), then
waits a few ms as if the answer travelled back: a kill in that window leaves an effect that
happened but was never journaled, which `reconcile` (a look-up of the key) must catch. Orders
whose number is BAD_REMAINDER modulo BAD_EVERY fail for good at step FAIL_AT (5% of runs),
for the dead-letter path. Set by the environment: PODIUM_CHAOS_SIDE_DB.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forked import spawn_module
from podium import FunctionAgent, RunContext, Runtime, Sequential, ToolContext, tool
from podium.stores import open_store

STEPS = 6
FAIL_AT = 3  # the bad orders fail here: steps 0-2 happened, 3-5 never do
BAD_EVERY = 20
BAD_REMAINDER = 13
STEP_DELAY = 0.003
TARGET = "chaos_worker:flow"
TESTS = Path(__file__).resolve().parent

_conn: sqlite3.Connection | None = None


def side_db() -> sqlite3.Connection:
    """One connection per process to the side-effect database (autocommit, WAL)."""
    global _conn
    if _conn is None:
        _conn = sqlite3.connect(
            os.environ["PODIUM_CHAOS_SIDE_DB"], timeout=30, isolation_level=None
        )
        _conn.execute("PRAGMA journal_mode=WAL")
        _conn.execute(
            "CREATE TABLE IF NOT EXISTS effects ("
            " idem_key TEXT, run_id TEXT, step INTEGER, result TEXT, at REAL)"
        )
    return _conn


def already_done(ctx: ToolContext) -> str | None:
    """`reconcile`: did this effect happen? Its result if so."""
    row = (
        side_db()
        .execute("SELECT result FROM effects WHERE idem_key = ?", (ctx.idempotency_key,))
        .fetchone()
    )
    return None if row is None else str(row[0])


def make_step(n: int) -> FunctionAgent:
    @tool(name=f"effect{n}", effect=True, idempotent=False, reconcile=already_done)
    async def effect(order: int, ctx: ToolContext) -> str:
        if n == FAIL_AT and order % BAD_EVERY == BAD_REMAINDER:
            raise ValueError(f"order {order}: rejected by step {n} (bad input, fails for good)")
        result = f"step {n} done for order {order}"
        side_db().execute(
            "INSERT INTO effects VALUES (?, ?, ?, ?, ?)",
            (ctx.idempotency_key, ctx.run_id, n, result, time.time()),
        )
        await asyncio.sleep(STEP_DELAY)  # the answer is on its way back
        return result

    async def step(order: int, ctx: RunContext) -> int:
        await ctx.use(effect, {"order": order})
        return order

    return FunctionAgent(step, name=f"step{n}")


flow = Sequential("orders", [make_step(n) for n in range(STEPS)])


# -- the harness -----------------------------------------------------------------------------
@dataclass
class CrashReport:
    store: str
    runs: int = 0
    kills: int = 0
    kills_mid_work: int = 0
    completed: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated_keys: int = 0
    effects: int = 0
    completed_effect_steps: int = 0
    unjournaled_effects: int = 0
    reconciled_happened: int = 0
    reconciled_not_happened: int = 0
    workers_started: int = 0
    seconds_submit: float = 0.0
    seconds_chaos: float = 0.0
    seconds_finish: float = 0.0
    seconds_total: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def effect_count(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM effects").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0
    finally:
        conn.close()


def start_worker(url: str, env: dict[str, str], concurrency: int, lease: float, *extra: str) -> Any:
    """A `podium worker` process (forked from a helper that imported podium already: see
    tests/forked.py), to be SIGKILLed."""
    args = ["worker", "--store", url, "--concurrency", str(concurrency), "--lease", str(lease)]
    return spawn_module("podium", *args, "--grace", "1", *extra, cwd=TESTS, env=env)


async def submit_all(url: str, runs: int) -> list[str]:
    rt = Runtime(url)
    try:
        return [
            await rt.submit(flow, order, run_id=f"order-{order:04d}", target=TARGET)
            for order in range(runs)
        ]
    finally:
        await rt.close()


def crash_many(
    url: str,
    side: Path,
    *,
    runs: int = 200,
    kills: int = 20,
    seed: int = 4,
    concurrency: int = 8,
    lease: float = 1.0,
    label: str = "",
) -> CrashReport:
    """Submit `runs`, SIGKILL `kills` workers at seeded random points of progress, restart each
    time, let a last worker finish (`--until-idle`), then account for every run and effect."""
    report = CrashReport(label or url.split(":", 1)[0], runs=runs)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_CHAOS_SIDE_DB": str(side),
    }
    os.environ["PODIUM_CHAOS_SIDE_DB"] = str(side)
    t0 = time.perf_counter()
    ids = asyncio.run(submit_all(url, runs))
    report.seconds_submit = time.perf_counter() - t0
    rng = random.Random(seed)
    bad = sum(1 for order in range(runs) if order % BAD_EVERY == BAD_REMAINDER)
    expected = runs * STEPS - bad * (STEPS - FAIL_AT)  # every effect that should happen once
    points = sorted(rng.sample(range(expected // 20, expected * 9 // 10), kills))
    t1 = time.perf_counter()
    for point in points:
        target = min(max(point, effect_count(side) + 3), expected - 10)
        proc = start_worker(url, env, concurrency, lease)
        report.workers_started += 1
        _wait_progress(side, proc, target)
        time.sleep(rng.uniform(0.0, 0.02))  # land anywhere in a step, not only after a write
        mid_work = proc.poll() is None
        proc.kill()  # SIGKILL: no cleanup, no flush, no finally
        proc.communicate()
        report.kills += 1
        report.kills_mid_work += int(mid_work and effect_count(side) < expected)
    report.seconds_chaos = time.perf_counter() - t1
    t2 = time.perf_counter()
    _finish(url, env, concurrency, lease, report)
    report.seconds_finish = time.perf_counter() - t2
    report.seconds_total = time.perf_counter() - t0
    asyncio.run(_account(url, side, ids, report))
    return report


def _wait_progress(side: Path, proc: Any, target: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while effect_count(side) < target:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise RuntimeError(f"worker exited with {proc.returncode} mid-chaos:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            raise RuntimeError(f"no progress to {target} effects in {timeout}s:\n{err[-3000:]}")
        time.sleep(0.005)


def _finish(url: str, env: dict[str, str], concurrency: int, lease: float, rep: Any) -> None:
    """A last worker with `--until-idle`: it waits out the leases the killed worker held, takes
    those runs, and exits when the queue is empty (checked, and retried a few times)."""
    for _ in range(5):
        proc = start_worker(url, env, concurrency, lease, "--until-idle")
        rep.workers_started += 1
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"final worker exited with {proc.returncode}:\n{err[-3000:]}")
        if not asyncio.run(_queued(url)):
            return
        time.sleep(lease)
    rep.problems.append("queue not empty after 5 final workers")


async def _queued(url: str) -> int:
    store = open_store(url)
    await store.open()
    try:
        return len(await store.kv_list("queue"))
    finally:
        await store.close()


async def _account(url: str, side: Path, ids: list[str], rep: CrashReport) -> None:
    store = open_store(url)
    await store.open()
    try:
        dlq = await store.kv_list("dlq")
        journaled: set[str] = set()
        for run_id in ids:
            record = await store.get_run(run_id)
            status = None if record is None else str(record.status)
            if status == "completed":
                rep.completed += 1
            elif status == "failed" and run_id in dlq and dlq[run_id].get("error"):
                rep.dead_lettered += 1
            else:
                rep.lost += 1
                rep.problems.append(f"{run_id}: {status}, in DLQ: {run_id in dlq}")
            for s in await store.load_steps(run_id):
                if s.kind == "tool" and str(s.status) == "completed":
                    journaled.add(f"{run_id}:{s.key}")
            for e in await store.list_events(run_id):
                if e.kind == "effect.reconciled" and e.data is not None:
                    if e.data.get("happened"):
                        rep.reconciled_happened += 1
                    else:
                        rep.reconciled_not_happened += 1
        if await store.kv_list("queue"):
            rep.problems.append("runs left in the queue")
    finally:
        await store.close()
    conn = sqlite3.connect(side)
    try:
        keys = [str(k) for (k,) in conn.execute("SELECT idem_key FROM effects")]
    finally:
        conn.close()
    rep.effects = len(keys)
    rep.duplicated_keys = len(keys) - len(set(keys))
    rep.completed_effect_steps = len(journaled)
    rep.unjournaled_effects = len(set(keys) - journaled)
    missing = journaled - set(keys)
    if missing:
        rep.problems.append(f"{len(missing)} journaled effects with no row, e.g. {min(missing)}")


def main(argv: list[str]) -> int:
    """python tests/chaos_worker.py STORE_URL SIDE_DB [RUNS KILLS]: one crash campaign."""
    import json

    url, side = argv[0], Path(argv[1])
    runs, kills = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (200, 20)
    print(json.dumps(crash_many(url, side, runs=runs, kills=kills).to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
