"""The MCP client against real MCP servers in subprocesses: the demo server next to this file
(the official SDK's `MCPServer`, over stdio and over streamable HTTP on a loopback port) and
`mcp-server-time` from the ecosystem. Crashes are real SIGKILLs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from pydantic import ValidationError

from podium import (
    NO_RETRY,
    Grant,
    LLMAgent,
    MCPConnectionError,
    MCPServer,
    MCPServerError,
    Policy,
    Retry,
    RunContext,
    RunStatus,
    Runtime,
    StepTimeoutError,
    TransientError,
    agent,
    planned,
)
from podium.models.scripted import ScriptedModel, tool_call
from podium.tools import Tool, tool
from podium.tools.mcp import MCPTool

HERE = Path(__file__).resolve().parent
DEMO = HERE / "mcp_demo_server.py"
FAST = Retry(attempts=3, initial_delay=0.0)


def demo(**kw: Any) -> MCPServer:
    return MCPServer([sys.executable, str(DEMO), "stdio"], **kw)


def time_server(**kw: Any) -> MCPServer:
    return MCPServer([sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"], **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the MCP server exited before it listened"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listened on port {port} after {timeout}s")


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The demo server over streamable HTTP, under a supervisor that starts it again when it
    dies (so a test can kill it and see the client reconnect to the new one)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "supervise", str(port)], start_new_session=True
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and its server: a group of two
        proc.wait()


# One event loop for the module, so that one runtime (and the one demo server it starts) can
# serve the tests that need no runtime of their own.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rt() -> Any:
    async with Runtime("memory://", retry=FAST) as runtime:
        yield runtime


async def tools_of(server: MCPServer, runtime: Runtime) -> dict[str, Tool]:
    return {t.name: t for t in await server.tools(runtime)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


# listing ------------------------------------------------------------------------------------
async def test_tools_come_with_the_servers_schemas_and_hints(rt: Runtime) -> None:
    tools = await tools_of(demo(), rt)
    assert {"add", "echo", "fail", "sleep", "pid", "count", "die_once"} <= set(tools)
    add = tools["add"]
    assert isinstance(add, MCPTool) and isinstance(add, Tool)
    assert add.description == "Add two whole numbers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert add.spec.parameters == add.parameters
    # read-only hint: no side effect; none: a side effect; idempotent hint kept
    assert (add.effect, add.idempotent) == (False, True)
    assert (tools["fail"].effect, tools["fail"].idempotent) == (True, False)
    assert (tools["count"].effect, tools["count"].idempotent) == (True, True)
    assert not add.trusted


async def test_an_mcp_tool_has_every_attribute_a_tool_has() -> None:
    """The door and the layers read a tool's attributes; an MCP tool must have them all."""

    @tool
    def plain(x: int) -> int:
        return x

    class Listed:
        name, title, description = "x", None, "d"
        input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
        annotations = None

    mcp_tool = MCPTool(demo(), Listed())
    # a function's own: its pydantic arguments model and the function it wraps (an MCP
    # tool checks against the server's JSON Schema and wraps no function)
    own = {"args_model", "__wrapped__"}
    missing = [a for a in vars(plain) if not hasattr(mcp_tool, a) and a not in own]
    assert not missing, missing


async def test_misuse_is_refused_when_the_server_is_made() -> None:
    from podium import UsageError

    cases = [
        ((), {}, "needs one of a command (stdio) or url= (streamable HTTP), got neither"),
        (("x",), {"url": "http://h/mcp"}, "got both"),
        (("x",), {"headers": {"a": "b"}}, "headers= go with url="),
        ((), {"url": "ftp://h"}, "url must be an http(s) URL"),
        ((), {"url": "http://h/mcp", "cwd": "/"}, "env= and cwd= go with a command"),
        (("x",), {"prefix": "a b"}, "prefix 'a b' may hold only"),
        (("x",), {"allow": "add"}, "allow is a list of tool names"),
        (("x",), {"timeout": 0}, "timeout must be"),
        (("",), {}, "names no program"),
    ]
    for args, kw, message in cases:
        with pytest.raises(UsageError, match=re.escape(message)):
            MCPServer(*args, **kw)
    secret = MCPServer(url="http://h/mcp", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(secret.key) and "s3cret" not in repr(secret)
    assert secret.name == "h"
    assert MCPServer("python -m mcp_server_time").name == "mcp_server_time"


async def test_allow_deny_and_prefix(rt: Runtime) -> None:
    assert set(await tools_of(demo(allow=["add", "echo"]), rt)) == {"add", "echo"}
    denied = await tools_of(demo(deny=["fail", "die_once"]), rt)
    assert "fail" not in denied and "die_once" not in denied and "add" in denied
    prefixed = await tools_of(demo(allow=["add"], prefix="calc_"), rt)
    assert set(prefixed) == {"calc_add"}
    assert await rt.run(_use(prefixed["calc_add"], {"a": 1, "b": 1}), None) is not None
    with pytest.raises(Exception, match=r"has no tool 'nope'.*its tools: add, count"):
        await demo(allow=["add", "nope"]).tools(rt)


def _use(t: Tool, args: dict[str, Any]) -> Any:
    @agent(name="user")
    async def use(_: Any, ctx: RunContext) -> Any:
        return await ctx.use(t, args)

    return use


# through the door ---------------------------------------------------------------------------
async def test_an_llm_agent_calls_an_mcp_tool_through_the_door(rt: Runtime) -> None:
    model = ScriptedModel([tool_call("add", a=2, b=3), "It is 5."])
    clerk = LLMAgent("clerk", model=model, instructions="Add.", tools=[demo(allow=["add"])])
    result = await rt.run(clerk, "2 + 3?")
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == "It is 5."
    assert [s.name for s in model.calls[0].tools] == ["add"]
    assert model.calls[0].tools[0].parameters["required"] == ["a", "b"]
    assert model.calls[1].messages[-1].content == "5"  # the SDK's {"result": 5}, unwrapped
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/clerk/add#0"].kind == "tool"
    assert steps["/clerk/add#0"].output == 5
    # `podium replay`: the orchestration replays against the journal, the tools listed anew
    again = LLMAgent("clerk", model=model, instructions="Add.", tools=[demo(allow=["add"])])
    report = await rt.replay(result.run_id, again)
    assert report.ok, report.problem


async def test_an_error_result_is_an_mcp_server_error_and_not_retried(rt: Runtime) -> None:
    tools = await tools_of(demo(), rt)
    result = await rt.run(_use(tools["fail"], {"reason": "no stock"}), None)
    assert result.status == RunStatus.FAILED
    events = await rt.events(result.run_id)
    assert not [e for e in events if e.kind == "step.retried"]
    assert "MCPServerError" in (result.error or "") and "refused: no stock" in (result.error or "")


async def test_arguments_are_checked_against_the_schema_before_the_call(
    rt: Runtime, tmp_path: Path
) -> None:
    tools = await tools_of(demo(), rt)
    log = tmp_path / "count.log"
    with pytest.raises(ValidationError, match="tool arguments are an object"):
        tools["count"].check_input(["log.txt"])
    with pytest.raises(ValidationError, match=r"log\n  Field required"):
        tools["count"].check_input({"note": "x"})
    missing = await rt.run(_use(tools["count"], {"note": "x"}), None)
    assert "HandoffTypeError" in (missing.error or "")
    assert "field 'log': Field required" in (missing.error or "")
    result = await rt.run(_use(tools["count"], {"log": 5}), None)
    assert result.status == RunStatus.FAILED
    assert "field 'log': 5 is not of type 'string'" in (result.error or "")
    assert not log.exists()  # the server was never called
    # a model that gets the arguments wrong hears which field, as for any tool
    model = ScriptedModel([tool_call("add", a="two", b=3), tool_call("add", a=2, b=3), "5"])
    clerk = LLMAgent("clerk", model=model, instructions=".", tools=[demo(allow=["add"])])
    done = await rt.run(clerk, "2 + 3?")
    assert done.status == RunStatus.COMPLETED, done.error
    retried = [e for e in await rt.events(done.run_id) if e.kind == "step.retried"]
    assert "arguments for tool 'add': field 'a': 'two' is not of type 'integer'" in str(
        retried[0].data
    )


async def test_a_policy_denial_keeps_the_call_from_the_server(tmp_path: Path) -> None:
    log = tmp_path / "count.log"
    policy = Policy(grants=[Grant(agent="clerk", tools=["add"])])
    model = ScriptedModel([tool_call("count", log=str(log)), "could not count"])
    clerk = LLMAgent("clerk", model=model, instructions=".", tools=[demo()])
    async with Runtime("memory://", retry=FAST, policy=policy) as runtime:
        result = await runtime.run(clerk, "count")
    assert result.status == RunStatus.COMPLETED, result.error
    assert model.calls[1].messages[-1].content.startswith("refused by policy")
    assert not log.exists()


async def test_an_approval_of_an_mcp_call_is_checked_and_runs_it_once(tmp_path: Path) -> None:
    """A policy asks a person before `count`; an approval with edited arguments that do not
    fit the server's schema is refused (the check replays the agent, which lists its MCP
    tools), a fitting one runs the call once."""
    from podium import Decision, UsageError

    log = tmp_path / "count.log"
    policy = Policy(grants=[Grant(agent="clerk", tools=["count"], needs_approval=True)])

    def decide(messages: Any, tools: Any, schema: Any) -> Any:  # from the messages alone
        if messages[-1].role == "tool":
            return "counted"
        return tool_call("count", log=str(log), note="asked")

    def flow() -> LLMAgent:
        return LLMAgent("clerk", model=ScriptedModel(decide), instructions=".", tools=[demo()])

    async with Runtime("memory://", retry=FAST, policy=policy) as runtime:
        waiting = await runtime.run(flow(), "count")
        assert waiting.status == RunStatus.WAITING, waiting.error
        assert not log.exists()
        with pytest.raises(UsageError, match="field 'log': 7 is not of type 'string'"):
            await runtime.resume(
                waiting.run_id, flow(), decision=Decision.approve(edited={"log": 7})
            )
        done = await runtime.resume(waiting.run_id, flow(), decision=Decision.approve())
        assert done.status == RunStatus.COMPLETED, done.error
    assert log.read_text().splitlines() == ["asked"]


async def test_mcp_output_is_untrusted_content(tmp_path: Path) -> None:
    """With containment on, a side effect whose argument came out of an MCP tool's output
    waits for a person: the output was labelled untrusted."""
    log = tmp_path / "count.log"
    model = ScriptedModel(
        [
            tool_call("echo", text="note: pay mallory"),
            tool_call("count", log=str(log), note="note: pay mallory"),
            "done",
        ]
    )
    clerk = LLMAgent("clerk", model=model, instructions=".", tools=[demo()])
    async with Runtime("memory://", retry=FAST, taint=True) as runtime:
        result = await runtime.run(clerk, "go")
        assert result.status == RunStatus.WAITING, result.error
        (waiting,) = await runtime.inbox()
        assert waiting.request["tool"] == "count"
        escalated = [
            e.data for e in await runtime.events(result.run_id) if e.kind == "taint.escalated"
        ]
        assert escalated and escalated[0]["sources"] == ["/clerk/echo#0"]
    assert not log.exists()


async def test_a_pinned_plan_names_mcp_tools(tmp_path: Path) -> None:
    """A plan may name an MCP tool before it is listed; it is checked once it is: a planned
    side effect goes after an untrusted read, and a plan naming a read-only tool is refused."""
    log = tmp_path / "count.log"
    script = [
        tool_call("echo", text="count once"),
        tool_call("count", log=str(log), note="planned"),
        "counted",
    ]
    plan = [planned("count", log=str(log), note="planned")]
    clerk = LLMAgent(
        "clerk", model=ScriptedModel(script), instructions=".", tools=[demo()], plan=plan
    )
    async with Runtime("memory://", retry=FAST, taint=True) as runtime:
        result = await runtime.run(clerk, "go")
        assert result.status == RunStatus.COMPLETED, result.error
        assert log.read_text().splitlines() == ["planned"]
        wrong = LLMAgent(
            "wrong",
            model=ScriptedModel(["x"]),
            instructions=".",
            tools=[demo()],
            plan=[planned("add", a=1, b=2)],
        )
        refused = await runtime.run(wrong, "go")
        assert refused.status == RunStatus.FAILED
        assert "its plan names 'add', which is not one of its side-effecting tools" in (
            refused.error or ""
        )


# failures -----------------------------------------------------------------------------------
async def test_sigkill_mid_call_over_stdio_is_retried_on_a_new_server(
    rt: Runtime, tmp_path: Path
) -> None:
    server = demo()
    tools = await tools_of(server, rt)
    before = await rt.run(_use(tools["pid"], {}), None)
    marker = tmp_path / "died"
    result = await rt.run(_use(tools["die_once"], {"marker": str(marker)}), None)
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == "survived"
    assert int(marker.read_text()) == before.output  # that server was killed
    assert not alive(before.output)
    retried = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert len(retried) == 1 and "MCPConnectionError" in retried[0].data["error"]
    after = await rt.run(_use(tools["pid"], {}), None)
    assert after.output != before.output  # a new server, reconnected


async def test_sigkill_mid_call_over_http_is_retried_after_the_restart(
    http_url: str, tmp_path: Path
) -> None:
    server = MCPServer(url=http_url, headers={"X-Podium-Test": "1"})
    async with Runtime("memory://", retry=Retry(attempts=10, initial_delay=0.3)) as runtime:
        tools = await tools_of(server, runtime)
        before = await runtime.run(_use(tools["pid"], {}), None)
        marker = tmp_path / "died"
        result = await runtime.run(_use(tools["die_once"], {"marker": str(marker)}), None)
        assert result.status == RunStatus.COMPLETED, result.error
        assert result.output == "survived"
        assert int(marker.read_text()) == before.output
        retried = [e for e in await runtime.events(result.run_id) if e.kind == "step.retried"]
        assert retried and all("MCPConnectionError" in e.data["error"] for e in retried)
        after = await runtime.run(_use(tools["pid"], {}), None)
        assert after.output != before.output
        sent = await runtime.run(_use(tools["header"], {"name": "x-podium-test"}), None)
        assert sent.output == "1"  # the headers go with every request


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_server_killed_between_calls_is_reconnected(
    transport: str, request: pytest.FixtureRequest
) -> None:
    """Killed while idle (and, over HTTP, started again by its supervisor): the next call
    goes to a new server."""
    http = transport == "http"
    server = MCPServer(url=request.getfixturevalue("http_url")) if http else demo()
    async with Runtime("memory://", retry=Retry(attempts=10, initial_delay=0.3)) as runtime:
        tools = await tools_of(server, runtime)
        first = await runtime.run(_use(tools["pid"], {}), None)
        os.kill(first.output, signal.SIGKILL)
        while alive(first.output):
            await asyncio.sleep(0.02)
        again = await runtime.run(_use(tools["pid"], {}), None)
        assert again.status == RunStatus.COMPLETED, again.error
        assert again.output != first.output
        assert len(runtime.connections) == 1


async def test_an_unreachable_server_is_a_transient_error() -> None:
    gone = MCPServer(url=f"http://127.0.0.1:{free_port()}/mcp")
    missing = MCPServer("/nonexistent/mcp-server --stdio")
    async with Runtime("memory://", retry=NO_RETRY) as runtime:
        for server in (gone, missing):
            with pytest.raises(MCPConnectionError, match="cannot connect") as e:
                await server.tools(runtime)
            assert isinstance(e.value, TransientError)
        assert len(runtime.connections) == 0


async def test_a_call_past_its_timeout_is_retried_and_the_session_survives(rt: Runtime) -> None:
    await demo().tools(rt)  # connected (without a timeout: starting a server takes a while)
    server = demo(timeout=1.0, retry=Retry(attempts=2, initial_delay=0.0))
    tools = await tools_of(server, rt)  # the same server, already connected
    first = await rt.run(_use(tools["pid"], {}), None)
    t0 = time.monotonic()
    result = await rt.run(_use(tools["sleep"], {"seconds": 30}), None)
    assert time.monotonic() - t0 < 5
    assert result.status == RunStatus.FAILED
    assert "StepTimeoutError" in (result.error or "")
    events = await rt.events(result.run_id)
    assert len([e for e in events if e.kind == "step.retried"]) == 1
    assert issubclass(StepTimeoutError, TransientError)
    again = await rt.run(_use(tools["pid"], {}), None)
    assert again.output == first.output  # the same session, the same server
    # outside the door (listing, resources, prompts) the server's timeout bounds a request
    with pytest.raises(MCPConnectionError, match=r"no answer to resources/read demo://slow"):
        await server.read_resource(rt, "demo://slow")


# sharing and closing ------------------------------------------------------------------------
async def test_one_session_per_runtime_closed_with_it() -> None:
    a, b = demo(allow=["pid"]), demo(allow=["pid", "add"], prefix="b_")
    first = LLMAgent(
        "first", model=ScriptedModel([tool_call("pid"), "ok"]), instructions=".", tools=[a]
    )
    second = LLMAgent(
        "second", model=ScriptedModel([tool_call("b_pid"), "ok"]), instructions=".", tools=[b]
    )
    runtime = Runtime("memory://", retry=FAST)
    r1 = await runtime.run(first, "x")
    r2 = await runtime.run(second, "x")
    pids = {s.output for r in (r1, r2) for s in await runtime.steps(r.run_id) if s.kind == "tool"}
    assert len(pids) == 1 and len(runtime.connections) == 1
    (pid,) = pids
    assert alive(pid)
    await runtime.close()
    assert len(runtime.connections) == 0
    assert not alive(pid)  # the server podium started ended with the runtime
    # a runtime used again after close connects again
    r3 = await runtime.run(_use((await tools_of(a, runtime))["pid"], {}), None)
    assert r3.output != pid
    await runtime.close()
    assert not alive(r3.output)


# resources and prompts ----------------------------------------------------------------------
async def test_resources_and_prompts(rt: Runtime) -> None:
    server = demo(allow=["add"], resource_tool=True)
    greeting, _slow = await server.list_resources(rt)
    assert greeting["uri"] == "demo://greeting" and greeting["mime_type"] == "text/plain"
    assert await server.read_resource(rt, "demo://greeting") == "hello from the demo server"
    (prompt,) = await server.list_prompts(rt)
    assert prompt["name"] == "review" and prompt["arguments"][0]["name"] == "code"
    messages = await server.get_prompt(rt, "review", {"code": "x = 1"})
    assert messages == [{"role": "user", "content": "Please review this code:\nx = 1"}]
    with pytest.raises(MCPServerError):
        await server.read_resource(rt, "demo://nothing")
    # the resource tool: a model reads a resource through the door
    model = ScriptedModel([tool_call("read_resource", uri="demo://greeting"), "read it"])
    reader = LLMAgent("reader", model=model, instructions=".", tools=[server])
    result = await rt.run(reader, "read")
    assert result.status == RunStatus.COMPLETED, result.error
    assert model.calls[1].messages[-1].content == "hello from the demo server"
    tools = await tools_of(server, rt)
    assert tools["read_resource"].effect is False


# the ecosystem's server ---------------------------------------------------------------------
async def test_mcp_server_time(rt: Runtime) -> None:
    server = time_server()
    tools = await tools_of(server, rt)
    assert {"get_current_time", "convert_time"} <= set(tools)
    assert "timezone" in tools["get_current_time"].parameters["required"]
    model = ScriptedModel([tool_call("get_current_time", timezone="Europe/Paris"), "noted"])
    clock = LLMAgent("clock", model=model, instructions=".", tools=[server])
    result = await rt.run(clock, "time in Paris?")
    assert result.status == RunStatus.COMPLETED, result.error
    (step,) = [s for s in await rt.steps(result.run_id) if s.kind == "tool"]
    assert step.output["timezone"] == "Europe/Paris"
    assert step.output["datetime"][:4].isdigit()
    bad = await rt.run(_use(tools["get_current_time"], {"timezone": "Mars/Olympus"}), None)
    assert bad.status == RunStatus.FAILED and "MCPServerError" in (bad.error or "")


async def test_concurrent_first_calls_share_one_connection() -> None:
    server = demo(allow=["pid"])
    async with Runtime("memory://", retry=FAST) as runtime:
        tools = await tools_of(server, runtime)
        await runtime.close()  # nothing open: the calls below race to open it
        calls = (runtime.run(_use(tools["pid"], {}), None) for _ in range(4))
        results = await asyncio.gather(*calls)
        assert len({r.output for r in results}) == 1 and len(runtime.connections) == 1


# durability ---------------------------------------------------------------------------------
async def test_resume_after_a_crash_does_not_call_a_journaled_mcp_tool_again(
    tmp_path: Path,
) -> None:
    """The worker process calls `count` (one line in the log), then hangs; a SIGKILL ends it
    and its server. The resumed run replays the journaled result: still one line."""
    sys.path.insert(0, str(HERE))
    try:
        from mcp_crash_worker import make_flow
    finally:
        sys.path.remove(str(HERE))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    log, ready = tmp_path / "count.log", tmp_path / "ready"
    env = {**os.environ, "PODIUM_MCP_HANG": "1"}
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "mcp_crash_worker.py"), url, "r1", str(log), str(ready)],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert worker.poll() is None, "the worker exited before it hung"
            assert time.monotonic() < deadline, "the worker never reached the hang"
            await asyncio.sleep(0.05)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and the MCP server it started
        worker.wait()
    assert log.read_text().splitlines() == ["once"]
    async with Runtime(url, retry=NO_RETRY) as runtime:
        result = await runtime.resume("r1", make_flow())
        assert result.status == RunStatus.COMPLETED, result.error
        assert result.output == "done"
        replayed = {e.key for e in await runtime.events("r1") if e.kind == "step.replayed"}
    assert "/clerk/count#0" in replayed
    assert log.read_text().splitlines() == ["once"]  # not called again


# YAML ---------------------------------------------------------------------------------------
async def test_yaml_mcp_servers_on_an_llm_node(tmp_path: Path, rt: Runtime) -> None:
    from podium import SpecError
    from podium.spec.loader import load_yaml

    (tmp_path / "server.py").write_text(DEMO.read_text())
    (tmp_path / "models.py").write_text(
        "from podium.models.scripted import ScriptedModel, tool_call\n"
        "def clerk(messages, tools, schema):\n"
        "    if messages[-1].role == 'tool':\n"
        "        return 'sum: ' + messages[-1].content\n"
        "    return tool_call('calc_add', a=20, b=22)\n"
        "import sys\nfrom pathlib import Path\nfrom podium import MCPServer\n"
        "echoer = MCPServer([sys.executable, 'server.py', 'stdio'], allow=['echo'],\n"
        "                   prefix='e_', cwd=str(Path(__file__).parent))\n"
    )
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(
        f"name: clerk\nkind: llm\ninstructions: Add.\nmcp_servers:\n"
        f"  - command: {sys.executable} server.py stdio\n"
        "    allow: [add]\n    prefix: calc_\n    timeout: 20\n"
        "tools:\n  - python: models.py:echoer\n"
    )
    flow = load_yaml(flow_file)
    echoer, server = flow.mcp_servers  # a python ref to an MCPServer works in `tools` too
    assert echoer.key == server.key  # the same command in the same folder: one session
    assert server.cwd == str(tmp_path) and server.prefix == "calc_" and server.timeout == 20
    sys.path.insert(0, str(tmp_path))
    try:
        from models import clerk  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    flow._model_spec = ScriptedModel(clerk)  # the file runs offline on a scripted model
    result = await rt.run(flow, "20 + 22?")
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == "sum: 42"
    assert {s.name for s in flow.model.calls[0].tools} == {"e_echo", "calc_add"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: clerk\nkind: llm\nmcp_servers:\n  - {command: x, url: 'http://h/mcp'}\n")
    with pytest.raises(
        SpecError, match=r"mcp_servers\[0\] \(line 4\): an MCP server needs exactly"
    ):
        load_yaml(bad)
    bad.write_text("name: clerk\nkind: llm\nmcp_servers:\n  - {url: ftp://nowhere}\n")
    with pytest.raises(SpecError, match=r"mcp_servers\[0\] \(line 4\): .*http\(s\) URL"):
        load_yaml(bad)


# how the SDK's failures map to podium's errors ------------------------------------------------
class _Client:
    """Stands in for `mcp.Client`: its `call_tool` raises what a broken or odd server makes
    the SDK raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("raised", "error", "message"),
    [
        ("timeout", MCPConnectionError, "tool add timed out: waited too long"),
        ("closed", MCPConnectionError, "the connection broke during tool add: Connection closed"),
        ("refused", MCPServerError, "'tool add': Unknown tool: add"),
        ("schema", MCPServerError, "not valid MCP: RuntimeError: Invalid structured content"),
    ],
)
async def test_sdk_failures_become_podium_errors(
    raised: str, error: type[Exception], message: str
) -> None:
    import mcp_types
    from mcp import MCPError

    errors: dict[str, BaseException] = {
        "timeout": MCPError(mcp_types.REQUEST_TIMEOUT, "waited too long"),
        "closed": MCPError(mcp_types.CONNECTION_CLOSED, "Connection closed"),
        "refused": MCPError(mcp_types.INVALID_PARAMS, "Unknown tool: add"),
        "schema": RuntimeError("Invalid structured content returned by tool add"),
    }
    server = demo()
    server._open = lambda: _Client(errors[raised])  # type: ignore[method-assign]

    class Listed:
        name, title, description = "add", None, "Add."
        input_schema: ClassVar[dict[str, Any]] = {"type": "object"}
        annotations = None

    add = MCPTool(server, Listed())
    async with Runtime("memory://", retry=NO_RETRY) as runtime:
        result = await runtime.run(_use(add, {}), None)
    assert result.status == RunStatus.FAILED
    assert error.__name__ in (result.error or "") and message in (result.error or ""), result.error
    assert issubclass(error, TransientError) == (raised in ("timeout", "closed"))


async def test_the_errors_survive_pickling() -> None:
    """Errors cross process boundaries (workers, a DLQ entry): they keep what they name."""
    import pickle

    lost = pickle.loads(pickle.dumps(MCPConnectionError("files", "cannot connect: refused")))
    assert (lost.server, lost.problem) == ("files", "cannot connect: refused")
    assert str(lost) == "MCP server 'files': cannot connect: refused"
    refused = pickle.loads(pickle.dumps(MCPServerError("files", "read_file", "outside")))
    assert (refused.server, refused.tool, str(refused)) == (
        "files",
        "read_file",
        "MCP server 'files', 'read_file': outside",
    )
