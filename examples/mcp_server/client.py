"""An MCP client (the official SDK) that starts `podium mcp serve` over stdio, lists its
tools and calls them: a quote that completes, with a progress notification per step, and a
refund that waits for a person.

    python -m examples.mcp_server.client [--store URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["examples.mcp_server.flow:quote", "examples.mcp_server.flow:refund"]


def server(store: str | None) -> StdioServerParameters:
    """`python -m podium mcp serve ...` as the client starts it: the same environment (the
    SDK passes only a few variables by default), in the repository, so the module loads."""
    args = ["-m", "podium", "mcp", "serve", *TARGETS]
    if store is not None:
        args += ["--store", store]
    return StdioServerParameters(
        command=sys.executable, args=args, env=dict(os.environ), cwd=str(ROOT)
    )


async def session(store: str | None) -> None:
    async with Client(server(store)) as client:
        print("tools:")
        for tool in (await client.list_tools()).tools:
            arguments = ", ".join(tool.input_schema.get("properties", {}))
            summary = (tool.description or "").split(". ")[0].splitlines()[0]
            print(f"  {tool.name}({arguments})  {summary}")

        async def progress(done: float, total: float | None, message: str | None) -> None:
            print(f"  progress {done:g}: {message}")

        print("call quote {order_id: A-1002, amount: 300}")
        quoted = await client.call_tool(
            "quote", {"order_id": "A-1002", "amount": 300}, progress_callback=progress
        )
        show(quoted.structured_content, quoted.is_error, quoted.content)

        print("call refund {order_id: A-1001, amount: 25}")
        waiting = await client.call_tool("refund", {"order_id": "A-1001", "amount": 25})
        show(waiting.structured_content, waiting.is_error, waiting.content)
        ticket = waiting.structured_content or {}
        if ticket.get("status") == "waiting":
            status = await client.call_tool("podium_run_status", {"run_id": ticket["run_id"]})
            print(f"podium_run_status: {(status.structured_content or {}).get('status')}")


def show(structured: Any, is_error: bool, content: Sequence[Any]) -> None:
    if is_error:
        print("  error: " + " ".join(getattr(c, "text", "") for c in content))
    else:
        print("  " + json.dumps(structured, indent=2).replace("\n", "\n  "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="the store URL the server journals in")
    args = parser.parse_args(argv)
    asyncio.run(session(args.store))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
