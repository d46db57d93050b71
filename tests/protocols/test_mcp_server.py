"""`podium mcp serve`, spoken to by the official MCP SDK's client: over stdio (the client
starts `python -m podium mcp serve ...`) and over streamable HTTP (one real server process
for the module, on a free loopback port). The flows are in mcp_flows.py; a waiting run is
approved with `podium approve` in another process, on the same store."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from forked import run_module
from podium import FunctionAgent, Runtime
from podium.protocols.mcp_server import STATUS_TOOL, served_tool

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests/protocols/mcp_flows.py"
TARGETS = [f"{FLOWS}:{name}" for name in ("review", "shout", "claim", "broken", "slow")]
YAML = "tests/protocols/mcp_tidy.yaml"
pytestmark = pytest.mark.xdist_group("mcp_server")


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
        "PYTHONPATH": path,
    }


def text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@dataclass
class Http:
    url: str
    store: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    """One `podium mcp serve --transport http` for the module, on a SQLite file, on the port
    the system picks (`--port 0`: the server says which on stderr)."""
    tmp = tmp_path_factory.mktemp("mcp")
    store = f"sqlite:///{tmp / 'mcp.db'}"
    log = tmp / "serve.log"
    args = ["--transport", "http", "--port", "0", "--store", store, "--name", "flows"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "podium", "mcp", "serve", *TARGETS, YAML, *args],
            cwd=ROOT,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    url = None
    while url is None or not accepts(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"podium mcp serve did not start: {log.read_text()}")
        found = re.search(r"at (http://\S+/mcp) ", log.read_text())
        url = found.group(1) if found else None
        time.sleep(0.05)
    yield Http(url, store, proc, log)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def accepts(url: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0]))) == 0


@asynccontextmanager
async def connect(http: Http) -> AsyncIterator[Client]:
    async with Client(http.url) as client:
        yield client


def podium(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return run_module("podium", *args, "--store", store, cwd=ROOT, env=env())


async def runs_in(store: str) -> int:
    async with Runtime(store) as rt:
        return len(await rt.list_runs(limit=1000))


# over stdio ----------------------------------------------------------------------------------
async def test_stdio_lists_the_tools_runs_one_and_reports_progress(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "podium", "mcp", "serve", *TARGETS, "--store", f"sqlite:///{tmp_path}/s.db"],
        env=env(),
        cwd=str(ROOT),
    )
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with Client(params) as client:
        assert client.server_info is not None and client.server_info.name == "podium"
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"review", "shout", "claim", "broken", "slow", STATUS_TOOL}
        assert tools["review"].description.startswith("Reviews a draft")
        assert tools["review"].input_schema["required"] == ["title", "words"]
        result = await client.call_tool(
            "review", {"title": "mcp", "words": 5}, progress_callback=on_progress
        )
        assert not result.is_error, text(result)
        assert result.structured_content == {"title": "mcp", "words": 5, "verdict": "short"}
        assert json.loads(text(result)) == result.structured_content
        shouted = await client.call_tool("shout", {"input": "hi"})
    assert text(shouted) == "HI!" and shouted.structured_content is None
    steps = [m for _, m in progress]
    assert steps == [
        "/review/outline#0 completed",
        "/review/write#0 completed",
        "/review/judge#0 completed",
        "/review completed",
    ]
    assert [done for done, _ in progress] == [1, 2, 3, 4]


# over streamable HTTP --------------------------------------------------------------------------
async def test_tools_are_listed_with_their_schemas(http: Http) -> None:
    async with connect(http) as client:
        assert client.server_info is not None and client.server_info.name == "flows"
        tools = {t.name: t for t in (await client.list_tools()).tools}
    review = tools["review"]
    assert review.input_schema["properties"]["words"]["minimum"] == 1
    assert review.input_schema["properties"]["title"]["description"] == "What the text is about."
    assert review.output_schema is not None
    output, waiting = review.output_schema["anyOf"]
    assert output["required"] == ["title", "words", "verdict"]
    assert waiting == {"$ref": "#/$defs/PodiumWaiting"}
    shout = tools["shout"]
    assert shout.description is not None and shout.description.startswith("Shouts the text")
    assert shout.input_schema == {
        "type": "object",
        "properties": {"input": {"type": "string"}},
        "required": ["input"],
    }
    assert shout.output_schema is None  # text
    assert tools[STATUS_TOOL].input_schema["required"] == ["run_id"]
    assert tools["tidy"].description is not None
    assert tools["tidy"].description.startswith("Tidies and shouts")
    assert tools["tidy"].input_schema["required"] == ["input"]  # the YAML's first step's str


async def test_a_yaml_workflow_is_a_tool_too(http: Http) -> None:
    async with connect(http) as client:
        result = await client.call_tool("tidy", {"input": "  so   much  space "})
    assert not result.is_error, text(result)
    assert text(result) == "SO MUCH SPACE!"


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28, and the handshake era
async def test_a_call_returns_the_output_and_progress_per_step(http: Http, mode: str) -> None:
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with Client(http.url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        result = await client.call_tool(
            "review", {"title": "http", "words": 500}, progress_callback=on_progress
        )
        assert not result.is_error, text(result)
        assert result.structured_content == {"title": "http", "words": 500, "verdict": "long"}
        run_id = result.meta["podium/run_id"] if result.meta else None
        status = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
        quiet = await client.call_tool("shout", {"input": "no token"})
    assert progress == [1, 2, 3, 4]
    assert status.structured_content is not None
    assert status.structured_content["status"] == "completed"
    assert status.structured_content["output"] == result.structured_content
    assert text(quiet) == "NO TOKEN!"


async def test_a_waiting_run_returns_its_id_and_the_inbox_decides_it(http: Http) -> None:
    async with connect(http) as client:
        waiting = await client.call_tool("claim", {"claim_id": "c-7", "amount": 120})
        assert not waiting.is_error, text(waiting)
        ticket = waiting.structured_content
        assert ticket is not None and ticket["status"] == "waiting"
        run_id = ticket["run_id"]
        assert ticket["waiting_for"][0]["kind"] == "approval"
        assert f"podium approve {run_id} --store {http.store}" in ticket["decide"]
        before = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
        assert before.structured_content is not None
        assert before.structured_content["status"] == "waiting"

        inbox = podium("inbox", "--json", store=http.store)
        assert run_id in [item["run_id"] for item in json.loads(inbox.stdout)], inbox.stderr
        approved = podium("approve", run_id, "--by", "alice", "--json", store=http.store)
        assert approved.returncode == 0, approved.stderr
        assert json.loads(approved.stdout)["status"] == "completed"

        after = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
    assert not after.is_error
    assert after.structured_content is not None
    assert after.structured_content["status"] == "completed"
    assert after.structured_content["output"] == "paid 120 on c-7"
    assert text(after) == "paid 120 on c-7"


async def test_the_inbox_of_podium_serve_can_decide_it_too(http: Http, tmp_path: Path) -> None:
    """`podium serve` on the same store: an approver's POST resumes the run there."""
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}"
    keys = {**env(), "PODIUM_API_KEYS": "approver-key-0123456789:approver:ann"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "podium", "serve", "--port", str(port), "--store", http.store],
            cwd=ROOT,
            env=keys,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with connect(http) as client, httpx.AsyncClient(base_url=api) as web:
            waiting = await client.call_tool("claim", {"claim_id": "c-8", "amount": 9})
            assert waiting.structured_content is not None, text(waiting)
            run_id = waiting.structured_content["run_id"]
            await until(lambda: ready(web), log)
            approved = await web.post(
                f"/api/runs/{run_id}/approve",
                json={"comment": "fine"},
                headers={"Authorization": "Bearer approver-key-0123456789"},
            )
            assert approved.status_code == 202, approved.text

            async def completed() -> bool:
                status = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
                return (status.structured_content or {}).get("status") == "completed"

            await until(completed, log)
            done = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
        assert text(done) == "paid 9 on c-8"
    finally:
        serve.terminate()
        serve.wait(10)


async def ready(web: httpx.AsyncClient) -> bool:
    try:
        return (await web.get("/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def until(check: Callable[[], Awaitable[bool]], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.05)


async def test_bad_arguments_are_a_tool_error_naming_the_field(http: Http) -> None:
    before = await runs_in(http.store)
    async with connect(http) as client:
        low = await client.call_tool("review", {"title": "x", "words": 0})
        missing = await client.call_tool("review", {"title": "x"})
        wrong = await client.call_tool("shout", {"input": 5})
        extra = await client.call_tool("shout", {"input": "a", "loud": True})
        no_id = await client.call_tool(STATUS_TOOL, {})
        unknown = await client.call_tool(STATUS_TOOL, {"run_id": "no-such-run"})
        no_tool = await client.call_tool("nope", {})
    assert low.is_error and "field 'words'" in text(low) and "greater than or equal" in text(low)
    assert missing.is_error and "field 'words': Field required" in text(missing)
    assert wrong.is_error and "field 'input'" in text(wrong)
    assert extra.is_error and "'loud'" in text(extra)
    assert no_id.is_error and "run_id" in text(no_id)
    assert unknown.is_error and "no run 'no-such-run'" in text(unknown)
    assert no_tool.is_error and "no tool named 'nope'" in text(no_tool)
    assert await runs_in(http.store) == before  # refused before anything was written


async def test_a_failing_run_is_a_tool_error_and_the_server_goes_on(http: Http) -> None:
    async with connect(http) as client:
        failed = await client.call_tool("broken", {"input": "this"})
        assert failed.is_error
        assert "ValueError: cannot handle 'this'" in text(failed)
        run_id = failed.meta["podium/run_id"] if failed.meta else None
        assert run_id and f"podium show {run_id}" in text(failed)
        status = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
        after = await client.call_tool("shout", {"input": "still here"})
    assert status.structured_content is not None
    assert status.structured_content["status"] == "failed"
    assert "cannot handle" in status.structured_content["error"]
    assert text(after) == "STILL HERE!"
    assert http.proc.poll() is None


async def test_concurrent_calls_each_get_their_own_output_and_progress(http: Http) -> None:
    progress: dict[str, list[float]] = {}

    async def call(client: Client, title: str) -> CallToolResult:
        seen = progress.setdefault(title, [])

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        return await client.call_tool(
            "review", {"title": title, "words": 7}, progress_callback=on_progress
        )

    async with connect(http) as one, connect(http) as two:
        results = await asyncio.gather(
            *(call(client, f"t{i}") for i, client in enumerate([one, two, one, two]))
        )
    assert [r.structured_content["title"] for r in results if r.structured_content] == [
        "t0",
        "t1",
        "t2",
        "t3",
    ]
    assert progress == {f"t{i}": [1, 2, 3, 4] for i in range(4)}


async def test_a_cancelled_call_leaves_a_run_that_resumes(http: Http) -> None:
    async with connect(http) as client:
        with anyio.move_on_after(0.4):
            await client.call_tool("slow", {"input": 1.0})
        after = await client.call_tool("shout", {"input": "on"})
    assert text(after) == "ON!"
    async with Runtime(http.store) as rt:
        (run,) = [r for r in await rt.list_runs(limit=1000) if r.agent == "slow"]
    assert run.status == "running"  # interrupted, as if its process had stopped
    resumed = podium("resume", run.run_id, "--json", store=http.store)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == "slept 1.0"


async def test_status_shows_only_the_runs_of_this_servers_tools(http: Http) -> None:
    other = podium("run", f"{FLOWS}:squash", "--input", '"a  b"', "--json", store=http.store)
    assert other.returncode == 0, other.stderr
    run_id = json.loads(other.stdout)["run_id"]
    async with connect(http) as client:
        status = await client.call_tool(STATUS_TOOL, {"run_id": run_id})
    assert status.is_error and f"no run {run_id!r} of this server's tools" in text(status)


# the command line --------------------------------------------------------------------------
def test_an_unknown_target_is_a_one_line_cli_error(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    missing = podium("mcp", "serve", f"{FLOWS}:nothing", store=store)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: target '{FLOWS}:nothing': '{FLOWS}' has no attribute 'nothing'"
    ]
    twice = podium("mcp", "serve", f"{FLOWS}:shout", f"{FLOWS}:shout", store=store)
    assert twice.returncode == 2 and "two tools would be named 'shout'" in twice.stderr
    assert not (tmp_path / "s.db").exists()


def test_a_port_in_use_is_a_one_line_cli_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = podium(
            "mcp",
            "serve",
            f"{FLOWS}:shout",
            "--transport",
            "http",
            "--port",
            str(port),
            store=f"sqlite:///{tmp_path}/s.db",
        )
    assert busy.returncode == 2
    (line,) = busy.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), line


# schemas, without a server ---------------------------------------------------------------------
def test_outputs_that_are_not_objects_are_wrapped_and_untyped_inputs_take_anything() -> None:
    def count(text: str) -> int:
        return len(text)

    def anything(value):  # type: ignore[no-untyped-def]
        return value

    counted = served_tool(FunctionAgent(count))
    assert counted.tool.output_schema is not None
    wrapped = counted.tool.output_schema["anyOf"][0]
    assert wrapped == {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    assert counted.content_of(3) == {"result": 3}
    loose = served_tool(FunctionAgent(anything))
    assert loose.tool.input_schema["type"] == "object"
    assert "required" not in loose.tool.input_schema
    assert loose.input_of({"input": [1, 2]}) == [1, 2]
    assert loose.input_of({}) is None
    assert loose.tool.output_schema is None
    assert loose.content_of({"a": 1}) == {"a": 1} and loose.content_of([1]) is None
