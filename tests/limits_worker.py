"""A worker process for tests/test_limits_crash.py: an agent that calls a tool per item,
with a limit of 12 steps per run.

    python -m limits_worker run STORE_URL RUN_ID      # hangs in its fourth tool call
    python -m limits_worker resume STORE_URL RUN_ID   # prints the result as JSON

Every tool call appends this process's pid to PODIUM_LIMITS_CALLS, so the test counts the
calls both processes really made; with PODIUM_LIMITS_HANG_AT set, that tool call (1-based, in
this process) writes PODIUM_LIMITS_READY and sleeps until the test kills the process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from podium import NO_RETRY, RunContext, Runtime, agent, tool

_runs = 0


@tool
async def step(i: int) -> int:
    """One piece of work."""
    global _runs
    _runs += 1
    with open(os.environ["PODIUM_LIMITS_CALLS"], "a", encoding="utf-8") as calls:
        calls.write(f"{os.getpid()}\n")
    if os.environ.get("PODIUM_LIMITS_HANG_AT") == str(_runs):
        Path(os.environ["PODIUM_LIMITS_READY"]).write_text("hanging")
        await asyncio.sleep(3600)  # the test kills us here
    return i


@agent
async def grinder(n: int, ctx: RunContext) -> int:
    return sum([await ctx.use(step, {"i": i}) for i in range(n)])


def main(argv: list[str]) -> int:
    mode, url, run_id = argv
    rt = Runtime(url, retry=NO_RETRY)
    if mode == "run":
        result = rt.run_sync(
            grinder, 100, run_id=run_id, target="limits_worker:grinder", max_steps=12
        )
    elif mode == "resume":
        result = rt.resume_sync(run_id)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use run or resume")
    error = result.exception
    out = {
        **result.to_dict(),
        "error_type": type(error).__name__,
        "limit": getattr(error, "limit", None),
        "used": getattr(error, "used", None),
        "step": getattr(error, "step", None),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
