"""A real MCP server for the MCP client's tests, made with the official SDK's `MCPServer`.

    python mcp_demo_server.py stdio             # over stdin/stdout
    python mcp_demo_server.py http PORT         # streamable HTTP on 127.0.0.1:PORT/mcp
    python mcp_demo_server.py supervise PORT    # `http PORT`, started again whenever it dies

Tools that count their calls append a line to a file the test names, so a test sees from
outside how often the server really ran them (across processes and restarts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
app = MCPServer("demo")


@app.tool(annotations=READ_ONLY)
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@app.tool(annotations=READ_ONLY)
def echo(text: str) -> str:
    """Say the text back."""
    return text


@app.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"refused: {reason}")


@app.tool(annotations=READ_ONLY)
async def sleep(seconds: float) -> str:
    """Wait, then say so."""
    await asyncio.sleep(seconds)
    return "slept"


@app.tool(annotations=READ_ONLY)
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@app.tool(annotations=ToolAnnotations(idempotent_hint=True))
def count(log: str, note: str = "") -> int:
    """Append a line to the log file; return how many lines it has."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{note}\n")
    return len(Path(log).read_text(encoding="utf-8").splitlines())


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def die_once(marker: str) -> str:
    """The first call (no marker file yet) kills this server mid-call with SIGKILL; the
    calls after it answer."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@app.tool(annotations=READ_ONLY)
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP header of this request ("" over stdio, or when absent)."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return "" if headers is None else str(headers.get(name, ""))


@app.resource("demo://greeting", mime_type="text/plain")
def greeting() -> str:
    """A greeting."""
    return "hello from the demo server"


@app.resource("demo://slow", mime_type="text/plain")
async def slow() -> str:
    """A resource that takes a minute."""
    await asyncio.sleep(60)
    return "late"


@app.prompt()
def review(code: str) -> str:
    """Ask for a code review."""
    return f"Please review this code:\n{code}"


def supervise(port: str) -> None:
    """Run the HTTP server, and run it again whenever it exits (a restart after a crash).
    The test ends both with one SIGKILL to their process group."""
    while True:
        child = subprocess.Popen([sys.executable, __file__, "http", port])
        child.wait()
        time.sleep(0.05)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "stdio":
        app.run()
    elif mode == "http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        supervise(sys.argv[2])
