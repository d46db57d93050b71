"""A worker process for tests/test_crash_resume.py: a six-step flow with real side effects.

    python -m crash_worker run STORE_URL RUN_ID      # hangs at a step, waiting to be killed
    python -m crash_worker resume STORE_URL RUN_ID   # prints the result as JSON

Each step inserts one row (run id, step number) into a side-effects table in its own SQLite
file, so the test can count how often each step really ran. Set by the environment:
PODIUM_CRASH_SIDE_DB (the side-effects file), PODIUM_CRASH_HANG_AT (the step that writes
PODIUM_CRASH_READY and then sleeps until the test kills the process; unset: no step hangs).
The resume loads `flow` again from the target `crash_worker:flow` stored with the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

from podium import NO_RETRY, FunctionAgent, RunContext, Runtime, Sequential

STEPS = 6


def side_effect(run_id: str, step: int) -> None:
    conn = sqlite3.connect(os.environ["PODIUM_CRASH_SIDE_DB"], timeout=10)
    try:
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS effects (run_id TEXT, step INTEGER)")
            conn.execute("INSERT INTO effects VALUES (?, ?)", (run_id, step))
    finally:
        conn.close()


def make_step(n: int) -> FunctionAgent:
    async def step(x: int, ctx: RunContext) -> int:
        if os.environ.get("PODIUM_CRASH_HANG_AT") == str(n):
            Path(os.environ["PODIUM_CRASH_READY"]).write_text(ctx.run_id)
            await asyncio.sleep(3600)  # the test kills us here
        side_effect(ctx.run_id, n)
        return x + 1

    return FunctionAgent(step, name=f"step{n}")


flow = Sequential("crashy", [make_step(n) for n in range(STEPS)])


def main(argv: list[str]) -> int:
    mode, url, run_id = argv
    rt = Runtime(url, retry=NO_RETRY)
    if mode == "run":
        result = rt.run_sync(flow, 0, run_id=run_id, target="crash_worker:flow")
    elif mode == "resume":
        result = rt.resume_sync(run_id)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use run or resume")
    print(json.dumps(result.to_dict()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
