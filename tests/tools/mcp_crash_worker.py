"""A worker process for the MCP client's crash test: an agent calls the demo server's `count`
tool (a line in a log file per real call), then a tool that hangs until the test kills the
process group with SIGKILL.

    python mcp_crash_worker.py STORE_URL RUN_ID LOG READY

The test resumes the run in its own process with the same `flow`; the model decides from the
messages alone, so a replayed turn and a live one ask for the same thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import NO_RETRY, LLMAgent, MCPServer, Runtime
from podium.models.base import Message
from podium.models.scripted import ScriptedModel, tool_call
from podium.tools import tool

DEMO = Path(__file__).resolve().parent / "mcp_demo_server.py"


def decide(messages: Sequence[Message], tools: Any, schema: Any) -> Any:
    asked = json.loads(messages[1].content)
    done = sum(1 for m in messages if m.role == "tool")
    if done == 0:
        return tool_call("count", log=asked["log"], note="once")
    if done == 1:
        return tool_call("wait_here", ready=asked["ready"])
    return "done"


@tool
async def wait_here(ready: str) -> str:
    """Hang here (the test kills the process) while PODIUM_MCP_HANG is set."""
    if os.environ.get("PODIUM_MCP_HANG"):
        Path(ready).write_text("ready", encoding="utf-8")
        await asyncio.sleep(3600)
    return "went on"


def make_flow() -> LLMAgent:
    server = MCPServer([sys.executable, str(DEMO), "stdio"], allow=["count"])
    return LLMAgent(
        "clerk", model=ScriptedModel(decide), instructions=".", tools=[server, wait_here]
    )


def main(url: str, run_id: str, log: str, ready: str) -> None:
    rt = Runtime(url, retry=NO_RETRY)
    rt.run_sync(make_flow(), {"log": log, "ready": ready}, run_id=run_id)


if __name__ == "__main__":
    main(*sys.argv[1:])
