"""A worker process for tests/test_budget_crash.py: a runaway agent under a $0.055 budget.

    python -m budget_worker run STORE_URL RUN_ID      # hangs in its third tool call
    python -m budget_worker resume STORE_URL RUN_ID   # prints the result as JSON

Every model call costs $0.01 (100 input tokens of the model "loop", priced at $100 per
million) and appends a line to the file PODIUM_BUDGET_CALLS, so the test counts the calls
both processes really made. With PODIUM_BUDGET_HANG_AT set, that tool call (1-based, in this
process) writes PODIUM_BUDGET_READY and sleeps until the test kills the process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import (
    NO_RETRY,
    Budget,
    LLMAgent,
    Message,
    Runtime,
    ScriptedModel,
    ToolSpec,
    Usage,
    tool,
    tool_call,
)

PRICES = {"loop": {"input": 100.0, "output": 0.0}}
BUDGET = Budget(usd=0.055)
_tool_runs = 0


@tool
async def work(step: int) -> str:
    """Do one more piece of work."""
    global _tool_runs
    _tool_runs += 1
    if os.environ.get("PODIUM_BUDGET_HANG_AT") == str(_tool_runs):
        Path(os.environ["PODIUM_BUDGET_READY"]).write_text("hanging")
        await asyncio.sleep(3600)  # the test kills us here
    return "more to do"


def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> Any:
    with open(os.environ["PODIUM_BUDGET_CALLS"], "a", encoding="utf-8") as calls:
        calls.write(f"{os.getpid()}\n")
    return tool_call("work", step=len(messages))


looper = LLMAgent(
    "looper",
    model=ScriptedModel(answer, name="loop", usage=Usage(100, 0, 1)),
    instructions="Work.",
    tools=[work],
    max_turns=1000,
)


def main(argv: list[str]) -> int:
    mode, url, run_id = argv
    alerts: list[str] = []
    rt = Runtime(
        url, retry=NO_RETRY, prices=PRICES, on_budget_alert=lambda a: alerts.append(a.limit)
    )
    if mode == "run":
        result = rt.run_sync(
            looper, "go", run_id=run_id, target="budget_worker:looper", budget=BUDGET
        )
    elif mode == "resume":
        result = rt.resume_sync(run_id)
    else:
        raise SystemExit(f"unknown mode {mode!r}: use run or resume")
    error = result.exception
    print(
        json.dumps(
            {
                **result.to_dict(),
                "error_type": type(error).__name__,
                "spent": getattr(error, "spent", None),
                "limit": getattr(error, "limit", None),
                "alerts": alerts,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
