"""A flow of four slow side effects, for the lease tests that run real `podium worker`
processes (tests/runtime/test_leases.py): each effect inserts a row keyed by its idempotency
key into a SQLite file of its own (PODIUM_LEASE_SIDE_DB), so a run driven twice at once shows
as a key written twice. `reconcile` looks the key up, as a careful tool would."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from podium import FunctionAgent, RunContext, Sequential, ToolContext, tool

STEPS = 4
STEP_SECONDS = 0.1
TARGET = "lease_flow:flow"


def side_db() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["PODIUM_LEASE_SIDE_DB"], timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS effects (idem_key TEXT, pid INTEGER)")
    return conn


def already_done(ctx: ToolContext) -> str | None:
    conn = side_db()
    try:
        sql = "SELECT 1 FROM effects WHERE idem_key = ?"
        row = conn.execute(sql, (ctx.idempotency_key,)).fetchone()
    finally:
        conn.close()
    return None if row is None else "done"


def make_step(n: int) -> FunctionAgent:
    @tool(name=f"effect{n}", effect=True, idempotent=False, reconcile=already_done)
    async def effect(order: int, ctx: ToolContext) -> str:
        conn = side_db()
        try:
            conn.execute("INSERT INTO effects VALUES (?, ?)", (ctx.idempotency_key, os.getpid()))
        finally:
            conn.close()
        await asyncio.sleep(STEP_SECONDS)
        return "done"

    async def step(order: int, ctx: RunContext) -> int:
        await ctx.use(effect, {"order": order})
        return order

    return FunctionAgent(step, name=f"step{n}")


flow = Sequential("slow_orders", [make_step(n) for n in range(STEPS)])
