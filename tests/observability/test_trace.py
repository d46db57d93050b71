"""The trace tree: built from journal rows and events, tokens rolled up, retries and pattern
decisions attached, and drawn with rich."""

from __future__ import annotations

from io import StringIO
from typing import Any

from rich.console import Console

from podium import Parallel, Retry, Runtime, Sequential, TransientError, Usage, agent
from podium.core.records import Event, StepRecord, StepStatus
from podium.observability.trace import build_trace, render_trace


def step(key: str, status: StepStatus = StepStatus.COMPLETED, **kw: Any) -> StepRecord:
    return StepRecord("r1", key, key.rsplit("/", 1)[-1].split("#")[0], "agent", status, **kw)


def test_tree_shape_and_token_roll_up() -> None:
    steps = [
        step("/flow", started_at=0.0, ended_at=2.0),
        step("/flow/a#0"),
        step("/flow/a#0/model#0", usage=Usage(10, 5, 1)),
        step("/flow/b#0", StepStatus.FAILED, attempt=3, error="boom"),
        step("/flow/b#0/model#0", usage=Usage(1, 1, 1)),
        step("/flow/b#0/model#1", usage=Usage(2, 2, 1)),
    ]
    events = [
        Event("r1", 1, 0.0, "step.retried", "/flow/b#0", "b", 1, data={"error": "E: one"}),
        Event("r1", 2, 0.0, "step.retried", "/flow/b#0", "b", 2, data={"error": "E: two"}),
        Event("r1", 3, 0.0, "route.decision", "/flow", "flow", data={"route": "a"}),
        Event("r1", 4, 0.0, "step.completed", "/flow/a#0", "a", 1),
    ]
    (root,) = build_trace(steps, events)
    assert root.agent == "flow" and root.duration == 2.0
    assert [c.key for c in root.children] == ["/flow/a#0", "/flow/b#0"]
    a, b = root.children
    assert a.total_usage == Usage(10, 5, 1) and a.usage == Usage()
    assert b.total_usage == Usage(3, 3, 2)
    assert root.total_usage.total_tokens == 21
    assert b.attempts == 3 and b.retries == ["E: one", "E: two"] and b.error == "boom"
    assert root.notes == [{"kind": "route.decision", "route": "a"}]
    assert [n.key for n in root.walk()][-1] == "/flow/b#0/model#1"


def test_orphans_hang_under_the_nearest_ancestor() -> None:
    roots = build_trace([step("/flow"), step("/flow/x#0/y#0")])
    assert len(roots) == 1 and roots[0].children[0].key == "/flow/x#0/y#0"
    assert build_trace([]) == []


def test_deep_chain_does_not_recurse() -> None:
    keys = ["/a"]
    for i in range(3000):
        keys.append(f"{keys[-1]}/s#{i}")
    steps = [step(k, usage=Usage(1, 0, 0)) for k in keys]
    (root,) = build_trace(steps)
    assert root.total_usage.input_tokens == 3001
    out = StringIO()
    Console(file=out, width=200).print(render_trace(build_trace(steps[:5])))
    assert out.getvalue().count("completed") == 5


async def test_trace_of_a_real_run_with_retries() -> None:
    calls = {"n": 0}

    @agent(retry=Retry(attempts=3, initial_delay=0, jitter=False))
    async def flaky(x: int) -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TransientError(f"try {calls['n']}")
        return x + 1

    @agent
    async def double(x: int) -> int:
        return x * 2

    flow = Sequential("flow", [flaky, Parallel("fan", [double, double])])
    rt = Runtime("memory://")
    result = await rt.run(flow, 1)
    assert result.ok
    (root,) = build_trace(await rt.steps(result.run_id), await rt.events(result.run_id))
    fl, fan = root.children
    assert fl.attempts == 3 and len(fl.retries) == 2 and "try 1" in fl.retries[0]
    assert [c.agent for c in fan.children] == ["double", "double"]
    out = StringIO()
    run = await rt.get_run(result.run_id)
    Console(file=out, width=200).print(render_trace([root], run))
    text = out.getvalue()
    assert f"run {result.run_id}" in text
    assert "flaky completed" in text and "3 attempts" in text and "retry 2" in text
    assert text.index("flaky") < text.index("fan") < text.index("double")


async def test_a_refused_tool_call_shows_under_the_agent_that_asked() -> None:
    """A call the policy refused writes no step row: its `policy.denied` event is shown
    under the nearest step that has one, naming the call."""
    from podium import Grant, Policy, PolicyDeniedError, tool

    @tool(effect=True)
    def wire(to: str) -> str:
        return f"wired {to}"

    @agent
    async def clerk(x: str, ctx: Any) -> str:
        try:
            return str(await ctx.use(wire, {"to": "mallory"}))
        except PolicyDeniedError as e:
            return f"refused: {e.reason}"

    policy = Policy(grants=[Grant(agent="clerk", tools=["wire"], when={"to": {"in": ["bob"]}})])
    async with Runtime("memory://", policy=policy) as rt:
        result = await rt.run(clerk, "go")
        assert result.ok and str(result.output).startswith("refused")
        roots = build_trace(await rt.steps(result.run_id), await rt.events(result.run_id))
    (root,) = roots
    (note,) = [n for n in root.notes if n["kind"] == "policy.denied"]
    assert note["call"] == "wire#0" and note["tool"] == "wire"
    out = StringIO()
    Console(file=out, width=200).print(render_trace(roots))
    assert "policy.denied: call=wire#0" in out.getvalue()
