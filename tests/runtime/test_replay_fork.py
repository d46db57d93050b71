"""Replay (the determinism check) and fork (time travel) on real SQLite stores: deterministic
workflows replay, a non-deterministic one fails naming its step, nothing is written by a
replay, and a fork reuses the journal before its step while the original stays untouched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium import (
    NO_RETRY,
    Decision,
    Grant,
    HumanApproval,
    LLMAgent,
    NonDeterminismError,
    Parallel,
    Policy,
    RunContext,
    RunStatus,
    Runtime,
    ScriptedModel,
    Sequential,
    StepStatus,
    ToolContext,
    UsageError,
    agent,
    tool,
    tool_call,
)
from podium.cli.app import app
from podium.patterns.router import Router
from podium.runtime.audit import verify_store

CALLS: list[str] = []
OUTSIDE = {"weather": "sunny"}  # what a non-deterministic orchestrator reads


@agent
def plan(x: str) -> str:
    CALLS.append("plan")
    return f"plan({x})"


@agent
def write(x: str) -> str:
    CALLS.append("write")
    return f"write({x})"


@agent
def check(x: str) -> str:
    CALLS.append("check")
    return f"check({x})"


@agent
def picnic(x: str) -> str:
    return f"picnic({x})"


@agent
def museum(x: str) -> str:
    return f"museum({x})"


@agent
async def moody(x: str, ctx: RunContext) -> str:
    """Branches on the outside world, not on a step's result: not deterministic."""
    first = await ctx.call(plan, x)
    target = picnic if OUTSIDE["weather"] == "sunny" else museum
    return str(await ctx.call(target, first))


@agent
async def skipper(x: str, ctx: RunContext) -> str:
    """Calls `check` only while the outside world says so."""
    out = str(await ctx.call(plan, x))
    if OUTSIDE["weather"] == "sunny":
        out = str(await ctx.call(check, out))
    return out


@tool
def lookup(order: str) -> str:
    """Find an order."""
    return f"order {order}"


@tool
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


PIPELINE = Sequential("pipeline", [plan, write, check])
FANOUT = Sequential("fanout", [plan, Parallel("both", [write, check])])


def echo(name: str) -> Any:
    def fn(x: str) -> str:
        return f"{name}:{x}"

    return agent(name=name, description=f"handles {name} questions")(fn)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    OUTSIDE["weather"] = "sunny"


@pytest.fixture
def url(persistent_url: str) -> str:
    """Every test here on SQLite and on Postgres."""
    return persistent_url


async def snapshot(rt: Runtime, run_id: str) -> tuple[Any, ...]:
    store = await rt.open()
    await store.flush()
    steps = [(s.key, s.status, s.output, s.attempt) for s in await rt.steps(run_id)]
    events = [(e.seq, e.kind, e.key) for e in await rt.events(run_id)]
    audit = [(a.seq, a.hash) for a in await store.load_audit(run_id)]
    record = await rt.get_run(run_id)
    return steps, events, audit, record.status, record.output, record.updated_at


@pytest.mark.parametrize("flow", [PIPELINE, FANOUT], ids=["sequential", "parallel"])
async def test_deterministic_workflows_replay_and_nothing_runs_or_is_written(
    url: str, flow: Any
) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        result = await rt.run(flow, "x")
        assert result.ok, result.error
        before = await snapshot(rt, result.run_id)
        CALLS.clear()
        report = await rt.replay(result.run_id, flow)
        assert report.ok, report.problem
        assert report.raise_for_status() is report
        assert CALLS == []  # leaf agents are answered from the journal, never run
        assert report.checked == len(before[0])
        assert f"/{flow.name}" in report.rerun
        assert await snapshot(rt, result.run_id) == before
        assert (await verify_store(await rt.open(), result.run_id)).ok


async def test_a_router_with_a_scripted_model_replays(url: str) -> None:
    model = ScriptedModel([{"route": "tech", "confidence": 0.9, "reason": "an error"}])
    router = Router.llm("support", [echo("billing"), echo("tech")], model=model)
    async with Runtime(url, retry=NO_RETRY) as rt:
        result = await rt.run(router, "it crashes")
        assert result.output == "tech:it crashes"
        report = await rt.replay(result.run_id, router)
    assert report.ok, report.problem
    model.assert_consumed()  # the model was asked once, by the run; the replay read it back
    assert len(model.calls) == 1


async def test_a_workflow_branching_on_the_outside_world_fails_naming_the_step(
    url: str,
) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        result = await rt.run(moody, "sat")
        assert result.output == "picnic(plan(sat))"
        assert (await rt.replay(result.run_id, moody)).ok  # same world, same path
        OUTSIDE["weather"] = "rain"
        before = await snapshot(rt, result.run_id)
        report = await rt.replay(result.run_id, moody)
        assert await snapshot(rt, result.run_id) == before
    assert not report.ok and report.step == "/moody/museum#0"
    assert "museum" in (report.problem or "") and "picnic#0" in (report.problem or "")
    with pytest.raises(NonDeterminismError, match="/moody/museum#0") as info:
        report.raise_for_status()
    assert info.value.step == "/moody/museum#0"


async def test_a_step_the_code_no_longer_reaches_is_named(url: str) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        result = await rt.run(skipper, "x")
        OUTSIDE["weather"] = "rain"
        report = await rt.replay(result.run_id, skipper)
    assert not report.ok and report.step == "/skipper/check#0"
    assert "no longer calls" in (report.problem or "")


async def test_denials_approvals_and_failures_replay(url: str) -> None:
    model = ScriptedModel([tool_call("lookup", order="7"), tool_call("refund", order="7"), "done"])
    clerk = LLMAgent("clerk", model=model, instructions="help", tools=[lookup, refund])
    policy = Policy(grants=[Grant(agent="clerk", tools=["lookup"])])
    gated = Sequential("gated", [plan, HumanApproval("approve", prompt="go?"), write])

    @agent
    def broken(x: str) -> str:
        raise ValueError("no such order")

    doomed = Sequential("doomed", [plan, broken])
    async with Runtime(url, retry=NO_RETRY, policy=policy) as rt:
        denied = await rt.run(clerk, "refund 7")
        assert denied.ok and (await rt.replay(denied.run_id, clerk)).ok
        waiting = await rt.run(gated, "x")
        with pytest.raises(UsageError, match="only a finished run"):
            await rt.replay(waiting.run_id, gated)
        done = await rt.resume(waiting.run_id, gated, decision=Decision.approve())
        assert done.ok
        assert (await rt.replay(waiting.run_id, gated)).ok
        failed = await rt.run(doomed, "x")
        assert failed.status == RunStatus.FAILED
        report = await rt.replay(failed.run_id, doomed)
    assert report.ok, report.problem


async def test_another_kind_at_a_journaled_key_is_named(url: str) -> None:
    @agent
    def fetch(x: str) -> str:
        return f"agent({x})"

    @tool(name="fetch")
    def fetch_tool(x: str) -> str:
        """The same name, a tool now."""
        return f"tool({x})"

    use_tool = {"on": False}

    @agent
    async def caller(x: str, ctx: RunContext) -> str:
        if use_tool["on"]:
            return str(await ctx.use(fetch_tool, {"x": x}))
        return str(await ctx.call(fetch, x))

    async with Runtime(url, retry=NO_RETRY) as rt:
        result = await rt.run(caller, "x")
        use_tool["on"] = True
        report = await rt.replay(result.run_id, caller)
    assert not report.ok and report.step == "/caller/fetch#0"
    assert "tool 'fetch'" in (report.problem or "") and "agent 'fetch'" in (report.problem or "")


async def test_what_the_door_decided_replays_as_it_was(url: str) -> None:
    """Budgets, fallbacks, run limits, a timed-out branch and a run deadline: decisions the
    door and the clock made, which a replay must take as the run took them."""
    from podium import Budget, Loop, ProviderError

    model = ScriptedModel([f"draft {i}" for i in range(5)])
    reviser = LLMAgent("reviser", model=model, instructions="Improve it.")
    polish = Loop("polish", reviser, budget=Budget(model_calls=2))  # stops on its budget

    @agent
    def backup(x: str) -> str:
        return f"backup({x})"

    down = {"on": True}

    @agent(fallbacks=[backup])
    def primary(x: str) -> str:
        if down["on"]:
            raise ProviderError("503 from upstream", status=503)
        return f"primary({x})"

    @agent
    async def slow(x: str) -> str:
        await asyncio.sleep(30)
        return x

    timed = Sequential("timed", [Parallel("fan", [plan, slow], min_success=1, branch_timeout=0.05)])
    fallback = Sequential("fb", [primary])
    late = Sequential("late", [plan, Parallel("both", [slow, slow])])
    async with Runtime(url, retry=NO_RETRY) as rt:
        runs = [
            (polish, await rt.run(polish, "draft")),
            (fallback, await rt.run(fallback, "x")),
            (PIPELINE, await rt.run(PIPELINE, "x", max_steps=2)),
            (timed, await rt.run(timed, "x")),
            (late, await rt.run(late, "x", deadline=0.1)),
        ]
        statuses = [str(r.status) for _, r in runs]
        assert statuses == ["completed", "completed", "failed", "completed", "failed"]
        down["on"] = False  # the primary would work now: the replay still takes the fallback
        for flow, result in runs:
            report = await rt.replay(result.run_id, flow)
            assert report.ok, (flow.name, report.step, report.problem)


# fork --------------------------------------------------------------------------------------


async def test_fork_reuses_the_journal_before_the_step_and_leaves_the_original(
    url: str,
) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(PIPELINE, "x")
        before = await snapshot(rt, first.run_id)
        CALLS.clear()
        fork = await rt.fork(first.run_id, at="/pipeline/write#0")
        assert fork.ok and fork.run_id != first.run_id
        assert fork.output == first.output == "check(write(plan(x)))"
        assert CALLS == ["write", "check"]  # plan came from the original's journal
        assert await snapshot(rt, first.run_id) == before
        store = await rt.open()
        assert (await verify_store(store, first.run_id)).ok
        assert (await verify_store(store, fork.run_id)).ok
        assert await store.kv_get("fork", fork.run_id) == {
            "from": first.run_id,
            "at": "/pipeline/write#0",
            "steps": 1,
            "input": False,
            "reused": [],
        }
        rows = {s.key: s for s in await rt.steps(fork.run_id)}
        assert rows["/pipeline/plan#0"].output == "plan(x)"
        assert all(s.status == StepStatus.COMPLETED for s in rows.values())
        assert (await rt.replay(fork.run_id, PIPELINE)).ok


async def test_a_submitted_fork_is_queued_and_driven_by_a_worker(url: str) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(PIPELINE, "x")
        before = await snapshot(rt, first.run_id)
        CALLS.clear()
        fork_id = await rt.submit_fork(first.run_id, at="/pipeline/write#0", input="y")
        assert CALLS == []  # queued, not run
        assert (await rt.get_run(fork_id)).status == "running"
        assert fork_id in await (await rt.open()).kv_list("queue")
        stats = await rt.work(until_idle=True, agents=[PIPELINE], poll=0.05, signals=False)
        assert stats.completed == 1 and CALLS == ["write", "check"]
        done = await rt.get_run(fork_id)
        assert done.status == "completed" and done.output == "check(write(plan(x)))"
        assert (await rt.get_run(fork_id)).input == "y"
        assert await snapshot(rt, first.run_id) == before
        with pytest.raises(UsageError, match="no step"):
            await rt.submit_fork(first.run_id, at="/pipeline/nowhere#0")


async def test_fork_with_a_new_input_keeps_the_rows_before_the_step(url: str) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(PIPELINE, "x")
        fork = await rt.fork(first.run_id, at="/pipeline/check#0", input="y")
        assert fork.output == "check(write(plan(x)))"  # plan and write kept as they were
        assert (await rt.get_run(fork.run_id)).input == "y"
        again = await rt.fork(first.run_id, at="/pipeline/plan#0", input="y")
        assert again.output == "check(write(plan(y)))"


async def test_fork_at_an_approval_asks_the_person_again(url: str) -> None:
    gated = Sequential("gated", [plan, HumanApproval("approve", prompt="go?"), write])
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(gated, "x")
        step = "/gated/approve#0"
        done = await rt.resume(first.run_id, gated, decision=Decision.approve())
        assert done.ok
        CALLS.clear()
        fork = await rt.fork(first.run_id, at=step, agent=gated)
        assert fork.status == RunStatus.WAITING and CALLS == []
        rejected = await rt.resume(fork.run_id, gated, decision=Decision.reject("not today"))
        assert rejected.status == RunStatus.FAILED
        assert (await rt.get_run(first.run_id)).status == RunStatus.COMPLETED


async def test_a_failing_fork_never_compensates_the_effects_it_reused(url: str) -> None:
    undone: list[str] = []

    def undo(ctx: ToolContext, result: Any) -> None:
        undone.append(result)

    def booking(name: str) -> Any:
        @tool(name=name, effect=True, reconcile=lambda c: None, compensate=undo)
        def book(item: str) -> str:
            return f"{name}:{item}"

        return book

    flight, hotel, car = booking("flight"), booking("hotel"), booking("car")
    closed = {"desk": ""}

    @agent
    async def trip(city: str, ctx: RunContext) -> list[str]:
        done = []
        for t in (flight, hotel, car):
            if closed["desk"] == t.name:
                raise RuntimeError(f"{t.name} desk is closed")
            done.append(await ctx.use(t, {"item": city}))
        return done

    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(trip, "Oslo")
        assert first.ok
        closed["desk"] = "car"
        fork = await rt.fork(first.run_id, at="/trip/hotel#0", agent=trip)
        assert fork.status == RunStatus.FAILED
        origin = await (await rt.open()).kv_get("fork", fork.run_id)
        assert origin["reused"] == ["/trip/flight#0"]
    assert undone == ["hotel:Oslo"]  # the fork's own booking; the flight was the original's


async def test_a_step_not_in_the_journal_is_refused_naming_the_known_ones(url: str) -> None:
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(PIPELINE, "x")
        with pytest.raises(UsageError, match=r"no step '/pipeline/nope#0'.*/pipeline/plan#0"):
            await rt.fork(first.run_id, at="/pipeline/nope#0")
        assert len(await rt.list_runs()) == 1


# the CLI -----------------------------------------------------------------------------------


MOODY = """
import os
from podium import RunContext, agent

@agent
def plan(x: str) -> str:
    return f"plan({x})"

@agent
def picnic(x: str) -> str:
    return f"picnic({x})"

@agent
def museum(x: str) -> str:
    return f"museum({x})"

@agent
async def moody(x: str, ctx: RunContext) -> str:
    first = await ctx.call(plan, x)
    sunny = os.environ.get("WEATHER", "sunny") == "sunny"
    return str(await ctx.call(picnic if sunny else museum, first))
"""


def test_podium_replay_and_fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "moodyflow.py").write_text(MOODY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEATHER", "sunny")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    cli = CliRunner()
    first = cli.invoke(
        app, ["run", "moodyflow.py:moody", "--input", '"sat"', "--store", url, "--json"]
    )
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.stdout)["run_id"]
    ok = cli.invoke(app, ["replay", run_id, "--store", url])
    assert ok.exit_code == 0, ok.output
    assert "replays" in ok.output
    monkeypatch.setenv("WEATHER", "rain")
    bad = cli.invoke(app, ["replay", run_id, "--store", url])
    assert bad.exit_code == 1, bad.output
    assert "/moody/museum#0" in bad.output
    as_json = cli.invoke(app, ["replay", run_id, "--store", url, "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["step"] == "/moody/museum#0"
    nope = cli.invoke(app, ["fork", run_id, "--at", "/moody/nope#0", "--store", url])
    assert nope.exit_code == 2 and "/moody/plan#0" in nope.output
    forked = cli.invoke(app, ["fork", run_id, "--at", "/moody/picnic#0", "--store", url, "--json"])
    # the fork runs on as the code is now (rain: the museum), after the journaled plan
    assert forked.exit_code == 0, forked.output
    assert json.loads(forked.stdout)["output"] == "museum(plan(sat))"
    waiting = cli.invoke(app, ["replay", "0000000000000000", "--store", url])
    assert waiting.exit_code == 2 and "no run" in waiting.output
