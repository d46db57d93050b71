"""`podium mcp serve --transport http` with API keys (`--keys-file`, as for `podium serve`),
spoken to by the official MCP SDK's client with an `Authorization` header: no key is a 401,
a viewer lists the tools and reads a run's status but may not start one (403), an operator
calls a tool and is chained in the run's audit trail as who started it. One server process
for the module, on a free loopback port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytest.importorskip("mcp")

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from forked import run_module
from podium import Runtime
from podium.protocols.mcp_server import RUN_META, STATUS_TOOL

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests/protocols/mcp_flows.py"
KEYS = {"viewer": "viewer-key-0123456789abcdef", "operator": "operator-key-0123456789abcdef"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
pytestmark = pytest.mark.xdist_group("mcp_keys")


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
        "PYTHONPATH": path,
    }


@dataclass
class Served:
    url: str
    store: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One keyed `podium mcp serve --transport http --port 0` (the port read from stderr)."""
    tmp = tmp_path_factory.mktemp("mcpkeys")
    keys = tmp / "keys"
    keys.write_text(f"# who may use the MCP server\n{KEYS['viewer']}:viewer:viewer-1\n")
    operator = f"{KEYS['operator']}:operator:operator-1"  # $PODIUM_API_KEYS adds to the file
    store = f"sqlite:///{tmp / 'mcp.db'}"
    log = tmp / "serve.log"
    args = ["--transport", "http", "--port", "0", "--store", store, "--keys-file", str(keys)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "podium", "mcp", "serve", f"{FLOWS}:shout", *args],
            cwd=ROOT,
            env={**env(), "PODIUM_API_KEYS": operator},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Served(started(proc, log), store)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def started(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The server's URL once it accepts connections."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"podium mcp serve did not start: {log.read_text()}")
        found = re.search(r"at (http://\S+:(\d+)/mcp) ", log.read_text())
        if found:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(found.group(2)))) == 0:
                    return found.group(1)
        time.sleep(0.05)


@asynccontextmanager
async def connect(served: Served, role: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {KEYS[role]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(served.url, http_client=http)) as client,
    ):
        yield client


def text(result: object) -> str:
    return " ".join(getattr(c, "text", "") for c in getattr(result, "content", []))


async def test_no_key_or_an_unknown_one_is_a_401_asking_for_a_bearer_key(served: Served) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer not-a-key-of-this-server"}):
            refused = await http.post(served.url, json=INITIALIZE, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer KEY" in refused.json()["error"]["message"]
        keyed = {"Authorization": f"Bearer {KEYS['viewer']}", "Accept": "application/json"}
        keyed["Accept"] += ", text/event-stream"
        assert (await http.post(served.url, json=INITIALIZE, headers=keyed)).status_code == 200


async def test_a_viewer_lists_tools_and_reads_status_but_may_not_call_a_tool(
    served: Served,
) -> None:
    async with connect(served, "viewer") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"shout", STATUS_TOOL}
        with pytest.raises(MCPError, match="'viewer-1' is a viewer, which may not operate"):
            await client.call_tool("shout", {"input": "hi"})
        unknown = await client.call_tool(STATUS_TOOL, {"run_id": "no-such-run"})
        assert unknown.is_error and "no run 'no-such-run'" in text(unknown)
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "shout"}}
    headers = {"Authorization": f"Bearer {KEYS['viewer']}"}
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(served.url, json=call, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["id"] == 7
    assert "calling the tool 'shout' starts a run" in refused.json()["error"]["message"]


async def test_an_operator_calls_a_tool_and_the_audit_names_who(served: Served) -> None:
    async with connect(served, "operator") as client:
        result = await client.call_tool("shout", {"input": "hi"})
    assert not result.is_error, text(result)
    assert text(result) == "HI!"
    run_id = (result.meta or {})[RUN_META]
    async with connect(served, "viewer") as client:  # a viewer reads the outcome
        status = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
        assert status.structured_content is not None
        assert status.structured_content["status"] == "completed"
    async with Runtime(served.store) as rt:
        chain = await (await rt.open()).load_audit(run_id)
    (started,) = [r for r in chain if r.kind == "mcp.run.started"]
    assert started.actor == "operator-1"
    assert '"role":"operator"' in (started.payload or "")


def test_keys_are_checked_before_the_server_starts(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    bad = tmp_path / "keys"
    bad.write_text(f"{KEYS['viewer']}:viewer\n{KEYS['operator']}:boss\n")
    http = ["--transport", "http", "--port", "0", "--store", store]
    wrong = run_module(
        "podium", "mcp", "serve", f"{FLOWS}:shout", *http, "--keys-file", str(bad),
        cwd=ROOT, env=env(),
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        f"error: keys file {bad}: entry 2 has role 'boss'; write key:role[:name] with a role "
        "of viewer, operator, approver, admin"
    ]
    stdio = run_module(
        "podium", "mcp", "serve", f"{FLOWS}:shout", "--store", store, "--keys-file", str(bad),
        cwd=ROOT, env=env(),
    )  # fmt: skip
    assert stdio.returncode == 2
    (line,) = stdio.stderr.strip().splitlines()
    assert line.startswith("error: --keys-file is for --transport http"), line
    assert not (tmp_path / "s.db").exists()


def test_no_key_on_an_address_other_than_loopback_warns(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    args = ["--transport", "http", "--host", "0.0.0.0", "--port", "0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "podium", "mcp", "serve", f"{FLOWS}:shout", *args,
             "--store", f"sqlite:///{tmp_path}/s.db"],
            cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        started(proc, log)
    finally:
        proc.terminate()
        proc.wait(10)
    assert (
        "warning: podium mcp serve on 0.0.0.0 with no API key: anyone who reaches it may start "
        "runs (configure PODIUM_API_KEYS or --keys-file)"
    ) in log.read_text().splitlines()
