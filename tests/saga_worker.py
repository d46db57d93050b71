"""A six-step saga with real side effects, for tests/test_saga_crash.py and bench/reliability.py.

    python -m saga_worker run STORE_URL RUN_ID      # steps 1-4 book, step 5 fails for good
    python -m saga_worker resume STORE_URL RUN_ID   # prints the result as JSON

Steps 1-4 book something (an effect with `compensate`), step 5 fails for good, step 6 never
runs. The failure compensates 4, 3, 2, 1. Every effect and every compensation writes a row,
keyed by its idempotency key, into a side database of its own (a SQLite file, not the store),
so the test sees what really happened in the world, how often, and in which order.

Set by the environment: PODIUM_SAGA_SIDE_DB (the side database); PODIUM_SAGA_BLOCK_AT=N makes
the compensation of step N write PODIUM_SAGA_READY and then sleep until the process is
killed, before it undoes anything; PODIUM_SAGA_FLAKY_AT=N makes the first attempt of that
compensation fail with a transient error (the door retries it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from podium import (
    FunctionAgent,
    Retry,
    RunContext,
    Runtime,
    Sequential,
    ToolContext,
    TransientError,
    tool,
)

STEPS = 6
FAIL_AT = 5
TARGET = "saga_worker:flow"
RETRY = Retry(attempts=3, initial_delay=0.001, max_delay=0.01)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (idem_key TEXT, run_id TEXT, step INTEGER, result TEXT)",
    "CREATE TABLE IF NOT EXISTS compensations ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, idem_key TEXT, run_id TEXT, step INTEGER)",
    "CREATE TABLE IF NOT EXISTS attempts (idem_key TEXT, attempt INTEGER)",
)


def side_db() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["PODIUM_SAGA_SIDE_DB"], timeout=10, isolation_level=None)
    for sql in SCHEMA:
        conn.execute(sql)
    return conn


def _write(sql: str, *args: Any) -> None:
    conn = side_db()
    try:
        conn.execute(sql, args)
    finally:
        conn.close()


def _read(sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = side_db()
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def already_booked(ctx: ToolContext) -> str | None:
    rows = _read("SELECT result FROM effects WHERE idem_key = ?", ctx.idempotency_key)
    return str(rows[0][0]) if rows else None


def make_undo(n: int) -> Any:
    async def undo(ctx: ToolContext, result: Any) -> None:
        _write("INSERT INTO attempts VALUES (?, ?)", ctx.idempotency_key, ctx.attempt)
        if os.environ.get("PODIUM_SAGA_FLAKY_AT") == str(n) and ctx.attempt == 1:
            raise TransientError(f"refund desk for step {n} is busy (attempt 1)")
        if os.environ.get("PODIUM_SAGA_BLOCK_AT") == str(n):
            Path(os.environ["PODIUM_SAGA_READY"]).write_text(ctx.idempotency_key)
            await asyncio.sleep(3600)  # the test kills the process here
        _write(
            "INSERT INTO compensations (idem_key, run_id, step) VALUES (?, ?, ?)",
            ctx.idempotency_key,
            ctx.run_id,
            n,
        )

    return undo


def make_step(n: int) -> FunctionAgent:
    @tool(
        name=f"book{n}",
        effect=True,
        idempotent=False,
        reconcile=already_booked,
        compensate=make_undo(n),
    )
    async def book(order: int, ctx: ToolContext) -> str:
        result = f"booking {n} for order {order}"
        _write(
            "INSERT INTO effects VALUES (?, ?, ?, ?)", ctx.idempotency_key, ctx.run_id, n, result
        )
        return result

    async def step(order: int, ctx: RunContext) -> int:
        if n == FAIL_AT:
            raise ValueError(f"step {n}: order {order} cannot be shipped (fails for good)")
        if n < FAIL_AT:
            await ctx.use(book, {"order": order})
        return order

    return FunctionAgent(step, name=f"step{n}")


flow = Sequential("trip", [make_step(n) for n in range(1, STEPS + 1)])


def compensations(run_id: str) -> list[tuple[int, str]]:
    """(step, idempotency key) of every compensation that happened, in the order it did."""
    rows = _read("SELECT step, idem_key FROM compensations WHERE run_id = ? ORDER BY seq", run_id)
    return [(int(s), str(k)) for s, k in rows]


def effects(run_id: str) -> list[tuple[int, str]]:
    rows = _read("SELECT step, idem_key FROM effects WHERE run_id = ? ORDER BY rowid", run_id)
    return [(int(s), str(k)) for s, k in rows]


def attempts(run_id: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, attempt in _read(
        "SELECT idem_key, attempt FROM attempts WHERE idem_key LIKE ? ORDER BY rowid", f"{run_id}:%"
    ):
        out.setdefault(str(key), []).append(int(attempt))
    return out


def main(argv: list[str]) -> int:
    mode, url, run_id = argv
    rt = Runtime(url, retry=RETRY)
    t0 = time.perf_counter()
    if mode == "run":
        result = rt.run_sync(flow, 7, run_id=run_id, target=TARGET)
    elif mode == "resume":
        result = rt.resume_sync(run_id)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use run or resume")
    print(json.dumps({**result.to_dict(), "seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
