"""A worker process for tests/governance/test_audit_crash.py: runs that write audit records
as fast as they can, until the test SIGKILLs the process in the middle of its writes.

    python -m audit_worker STORE_URL READY_FILE

Each run emits audited events (a denial, an approval, an effect's record) beside ordinary
steps, and a person's decision is simulated by another store instance appending to the same
runs' chains, so writes of two writers are in flight when the kill lands. READY_FILE is
written once some runs have completed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from podium import RunContext, Runtime, agent, tool
from podium.core.audit import draft
from podium.stores import open_store


@tool(effect=True, idempotent=True)
def pay(amount: int) -> str:
    return f"paid {amount}"


@agent
async def busy(n: int, ctx: RunContext) -> Any:
    for i in range(5):
        ctx.emit("policy.denied", tool="wire", i=i, reason="not granted " * 20)
        await ctx.use(pay, {"amount": n * 10 + i})
    return n


async def other_writer(url: str, stop: asyncio.Event) -> None:
    store = open_store(url)
    await store.open()
    n = 0
    while not stop.is_set():
        runs = await store.list_runs(limit=5)
        for run in runs:
            d = draft(run.run_id, "approval.granted", float(n), "ops", {"n": n})
            await store.append_audit([d])
            n += 1
        await asyncio.sleep(0)


async def main(url: str, ready: Path) -> None:
    rt = Runtime(url)
    stop = asyncio.Event()
    side = asyncio.create_task(other_writer(url, stop))
    done = 0
    while not side.done():  # until killed (or the other writer fails: then say why)
        await asyncio.gather(*(rt.run(busy, i) for i in range(8)))
        done += 8
        if done >= 16 and not ready.exists():
            ready.write_text(str(done))
    await side


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
