"""Budgets in the door's budget slot: a soft alert at 70%, a hard stop at 100% for every kind
of limit, on the run, one agent or a subtree; at most one call of overshoot; never retried;
a resumed run counts on from its journal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from podium import (
    Budget,
    BudgetAlert,
    BudgetExceededError,
    LLMAgent,
    Message,
    Parallel,
    ParallelResult,
    Retry,
    RunContext,
    Runtime,
    ScriptedModel,
    Sequential,
    StepStatus,
    ToolSpec,
    Usage,
    agent,
    tool,
    tool_call,
)
from podium.runtime.budget import BUDGET_KV
from podium.testing import FakeClock

CALL = Usage(100, 10, 1)  # every model call of the loops below: 110 tokens
PRICES = {"loop": {"input": 100.0, "output": 0.0}}  # 100 input tokens at $100/M: $0.01 a call


class Loop:
    """An agent that never stops asking for its tool: what a budget is for."""

    def __init__(
        self,
        name: str = "looper",
        *,
        budget: Budget | None = None,
        takes: float = 0,
        clock: FakeClock | None = None,
    ):
        """`takes`: seconds each tool call lasts on `clock` (it moves the clock forward)."""
        self.tool_runs = 0

        @tool
        async def work(step: int) -> str:
            """Do one more piece of work."""
            self.tool_runs += 1
            if takes and clock is not None:
                await clock.advance(takes)
            return "more to do"

        def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> Any:
            return tool_call("work", step=len(messages))

        self.model = ScriptedModel(answer, name="loop", usage=CALL)
        self.agent = LLMAgent(
            name,
            model=self.model,
            instructions="Work.",
            tools=[work],
            max_turns=1000,
            budget=budget,
        )

    @property
    def model_calls(self) -> int:
        return len(self.model.calls)


def finite(name: str, calls: int, *, budget: Budget | None = None) -> LLMAgent:
    """An agent that makes `calls` model calls (tool calls between them), then answers; each
    invocation of it again."""

    @tool
    def work(step: int) -> str:
        """Do one piece of work."""
        return "ok"

    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> Any:
        done = sum(1 for m in messages if m.role == "tool")
        return "finished" if done >= calls - 1 else tool_call("work", step=done)

    model = ScriptedModel(answer, name="loop", usage=CALL)
    return LLMAgent(name, model=model, instructions="Work.", tools=[work], budget=budget)


def runtime(**kwargs: Any) -> Runtime:
    return Runtime("memory://", prices=PRICES, **kwargs)


def exceeded(result: Any) -> BudgetExceededError:
    assert result.status == "failed", result
    error = result.exception
    assert isinstance(error, BudgetExceededError), f"{type(error).__name__}: {error}"
    return error


# hard stop ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("budget", "limit", "model_calls", "tool_calls"),
    [
        # 5 x 110 = 550 tokens: the tool call the fifth answer asks for does not start
        (Budget(tokens=550), "tokens", 5, 4),
        (Budget(usd=0.045), "usd", 5, 4),  # $0.05 after five calls
        (Budget(model_calls=5), "model_calls", 5, 4),
        (Budget(tool_calls=3), "tool_calls", 3, 3),  # spent: not even a model call starts
    ],
)
async def test_the_hard_stop_of_each_limit(
    budget: Budget, limit: str, model_calls: int, tool_calls: int
) -> None:
    loop = Loop()
    rt = runtime()
    result = await rt.run(loop.agent, "go", budget=budget)
    error = exceeded(result)
    assert (error.scope, error.limit) == ("run", limit)
    assert error.spent >= error.maximum == budget.limits()[limit]
    assert (loop.model_calls, loop.tool_runs) == (model_calls, tool_calls)
    assert f"run budget exhausted: {limit}" in str(error) and error.step in str(error)
    # completed steps stay journaled; the refused one is failed and was never attempted
    steps = await rt.steps(result.run_id)
    refused = [s for s in steps if s.status == StepStatus.FAILED and s.kind in ("model", "tool")]
    assert [(s.key, s.attempt) for s in refused] == [(error.step, 0)]
    done = [s for s in steps if s.kind == "model" and s.status == StepStatus.COMPLETED]
    assert len(done) == model_calls
    assert result.usage == Usage(
        100 * model_calls, 10 * model_calls, model_calls, usd=pytest.approx(0.01 * model_calls)
    )


async def test_the_wall_time_limit_stops_new_calls() -> None:
    clock = FakeClock()
    loop = Loop(takes=50, clock=clock)  # each tool call takes 50 s
    result = await runtime(clock=clock).run(loop.agent, "go", budget=Budget(seconds=200))
    error = exceeded(result)
    assert error.limit == "seconds" and error.spent == 200
    assert loop.tool_runs == 4  # 4 tool calls fit in 200 s; then no new call starts


async def test_budget_exceeded_is_never_retried_nor_wrapped() -> None:
    loop = Loop()
    rt = runtime(retry=Retry(attempts=5, initial_delay=0))
    result = await rt.run(loop.agent, "go", budget=Budget(model_calls=2))
    exceeded(result)  # itself, not a StepError around it
    assert loop.model_calls == 2
    retried = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert retried == []


# overshoot ---------------------------------------------------------------------------------
async def test_a_runaway_agent_overshoots_by_at_most_the_call_in_flight() -> None:
    """The context grows with every turn, so every call costs more than the last; the run
    stops at the first call that starts with the budget spent."""

    @tool
    def search(query: str) -> str:
        """Search."""
        return "another lead " * 50

    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> Any:
        return tool_call("search", query=f"lead {len(messages)}")

    model = ScriptedModel(answer, name="gpt-4o")  # word counts as tokens, at gpt-4o's prices
    runaway = LLMAgent(
        "runaway", model=model, instructions="Find leads.", tools=[search], max_turns=1_000
    )
    rt = Runtime("memory://")
    result = await rt.run(runaway, "go", budget=Budget(usd=0.10))
    error = exceeded(result)
    steps = [s for s in await rt.steps(result.run_id) if s.kind == "model"]
    costs = [s.usage.usd for s in steps if s.status == StepStatus.COMPLETED and s.usage]
    assert len(costs) == len(model.calls) > 10
    assert sum(costs[:-1]) < 0.10 <= sum(costs)  # the last call started under the limit
    assert result.usage.usd == pytest.approx(sum(costs))
    assert result.usage.usd <= 0.10 + max(costs)
    assert error.spent == pytest.approx(result.usage.usd)


async def test_concurrent_branches_overshoot_by_at_most_one_call_each() -> None:
    loops = [Loop(f"l{i}") for i in range(3)]
    flow = Parallel("fan", [lp.agent for lp in loops])
    result = await runtime().run(flow, "go", budget=Budget(model_calls=7))
    exceeded(result)
    assert 7 <= sum(lp.model_calls for lp in loops) <= 7 + 2  # the others' calls in flight


# scopes ------------------------------------------------------------------------------------
async def test_an_agent_budget_covers_its_own_calls_only_and_parallel_names_the_gap() -> None:
    capped = Loop("capped", budget=Budget(model_calls=3))
    free = finite("free", 5)
    flow = Parallel("both", [capped.agent, free], min_success=1)
    rt = runtime()
    result = await rt.run(flow, "go")
    assert result.ok, result.error
    out = result.output
    assert isinstance(out, ParallelResult)
    assert out.results == {"free": "finished"}  # five calls: not limited by capped's budget
    assert capped.model_calls == 3
    assert out.gaps["capped"].startswith(
        "BudgetExceededError: agent 'capped' at /both/capped#0 budget exhausted: model_calls 3 of 3"
    )
    gaps = [e.data for e in await rt.events(result.run_id) if e.kind == "parallel.gap"]
    assert gaps == [{"branch": "capped", "reason": out.gaps["capped"]}]


async def test_an_agent_budget_is_per_invocation() -> None:
    twice = finite("twice", 2, budget=Budget(model_calls=2))
    result = await runtime().run(Sequential("flow", [twice, twice]), "go")
    assert result.ok, result.error  # each invocation made its two calls under its own budget
    assert isinstance(twice.model, ScriptedModel) and len(twice.model.calls) == 4


async def test_a_budget_covers_every_call_below_its_step() -> None:
    first, second = finite("first", 2), finite("second", 2)
    outside = finite("outside", 2)

    @agent(budget=Budget(model_calls=3))
    async def team(x: str, ctx: RunContext) -> str:
        await ctx.call(first, x)
        return str(await ctx.call(second, x))

    @agent
    async def flow(x: str, ctx: RunContext) -> str:
        await ctx.call(outside, x)  # not in team's subtree: does not count against it
        return str(await ctx.call(team, x))

    result = await runtime().run(flow, "go")
    error = exceeded(result)
    assert (error.scope, error.key) == ("agent 'team' at /flow/team#0", "/flow/team#0")
    # first's two model calls and second's first: second's tool call is refused
    assert error.step == "/flow/team#0/second#0/work#0"
    assert (error.spent, error.maximum) == (3, 3)


async def test_the_tightest_of_nested_budgets_stops_first() -> None:
    loop = Loop("looper", budget=Budget(model_calls=10))
    result = await runtime().run(loop.agent, "go", budget=Budget(model_calls=4))
    assert exceeded(result).scope == "run" and loop.model_calls == 4


# soft alert --------------------------------------------------------------------------------
async def test_the_alert_fires_once_per_limit_and_the_callback_runs() -> None:
    alerts: list[BudgetAlert] = []
    loop = Loop()
    rt = runtime(on_budget_alert=alerts.append)
    budget = Budget(tokens=1000, model_calls=12)
    result = await rt.run(loop.agent, "go", budget=budget)
    assert exceeded(result).limit == "tokens"  # 10 calls: 1,100 tokens
    events = [e for e in await rt.events(result.run_id) if e.kind == "budget.alert"]
    assert [(e.data or {})["limit"] for e in events] == ["tokens", "model_calls"]
    # tokens passed 70% (700) with the 7th call (770), model calls (8.4) with the 9th
    assert [(e.data or {})["step"] for e in events] == [
        "/looper/model#6",
        "/looper/model#8",
    ]
    assert [(a.limit, a.spent, a.maximum, a.scope) for a in alerts] == [
        ("tokens", 770, 1000, "run"),
        ("model_calls", 9, 12, "run"),
    ]
    assert alerts[0].fraction == pytest.approx(0.77) and alerts[0].run_id == result.run_id
    refused = [e for e in await rt.events(result.run_id) if e.kind == "budget.exceeded"]
    assert len(refused) == 1 and (refused[0].data or {})["limit"] == "tokens"


async def test_alert_at_is_configurable_and_a_failing_callback_does_not_fail_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[BudgetAlert] = []

    async def slow_pager(alert: BudgetAlert) -> None:
        await asyncio.sleep(0)
        seen.append(alert)

    def broken(alert: BudgetAlert) -> None:
        raise RuntimeError("pager down")

    result = await runtime(on_budget_alert=slow_pager).run(
        finite("w", 5), "go", budget=Budget(model_calls=10, alert_at=0.5)
    )
    assert result.ok
    for _ in range(100):  # the async handler runs as a task of its own
        if seen:
            break
        await asyncio.sleep(0)
    assert [(a.limit, a.spent) for a in seen] == [("model_calls", 5)]
    with caplog.at_level(logging.ERROR, logger="podium"):
        result = await runtime(on_budget_alert=broken).run(
            finite("w", 5), "go", budget=Budget(model_calls=10, alert_at=0.5)
        )
    assert result.ok
    assert "pager down" in caplog.text


# resume ------------------------------------------------------------------------------------
async def test_a_resumed_run_counts_on_from_its_journal(persistent_url: str) -> None:
    loop = Loop()
    async with Runtime(persistent_url, prices=PRICES) as rt:
        first = await rt.run(loop.agent, "go", budget=Budget(model_calls=4))
        assert exceeded(first).spent == 4 and loop.model_calls == 4 and loop.tool_runs == 3
        again = await rt.resume(first.run_id, loop.agent)  # the stored budget still holds
        assert exceeded(again).spent == 4 and loop.model_calls == 4  # nothing new started
        more = await rt.resume(first.run_id, loop.agent, budget=Budget(model_calls=6))
        error = exceeded(more)
        assert (error.spent, error.maximum) == (6, 6) and loop.model_calls == 6
        stored = await (await rt.open()).kv_get(BUDGET_KV, first.run_id)
        assert stored == {"model_calls": 6.0, "alert_at": 0.7}
        assert more.usage.requests == 6 and more.usage.usd == pytest.approx(0.06)
        alerts = [e for e in await rt.events(first.run_id) if e.kind == "budget.alert"]
        # 70% of 4 (after the 3rd call), then 70% of 6 once the budget was raised
        assert [(e.data or {})["max"] for e in alerts] == [4, 6]


async def test_a_submitted_run_keeps_its_budget_on_a_worker(tmp_path: Any) -> None:
    loop = Loop()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url, prices=PRICES) as rt:
        run_id = await rt.submit(loop.agent, "go", budget=Budget(model_calls=3))
        await rt.work(until_idle=True, agents=[loop.agent], poll=0.01, sweep_every=None)
        record = await rt.get_run(run_id)
    assert record.status == "failed" and "model_calls 3 of 3" in (record.error or "")
    assert loop.model_calls == 3


def test_run_sync_takes_a_budget() -> None:
    loop = Loop()
    result = runtime().run_sync(loop.agent, "go", budget=Budget(model_calls=2))
    assert exceeded(result).limit == "model_calls" and loop.model_calls == 2


async def test_a_budget_must_be_a_budget() -> None:
    from podium import UsageError

    with pytest.raises(UsageError, match=r"budget must be a podium\.Budget"):
        await runtime().run(finite("w", 1), "go", budget={"usd": 1})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"budget must be a podium\.Budget"):
        LLMAgent("w", model="scripted", instructions="x", budget=5)  # type: ignore[arg-type]


async def test_an_agent_budget_counts_on_after_resume(persistent_url: str) -> None:
    loop = Loop("capped", budget=Budget(model_calls=4))
    async with Runtime(persistent_url, prices=PRICES) as rt:
        first = await rt.run(loop.agent, "go")
        error = exceeded(first)
        assert error.scope == "agent 'capped' at /capped" and loop.model_calls == 4
        again = await rt.resume(first.run_id, loop.agent)
        assert exceeded(again).spent == 4 and loop.model_calls == 4  # its scope counted on


async def test_wall_time_counts_on_after_resume_but_not_the_time_between(tmp_path: Any) -> None:
    clock = FakeClock()
    loop = Loop(takes=100, clock=clock)
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", prices=PRICES, clock=clock) as rt:
        first = await rt.run(loop.agent, "go", budget=Budget(seconds=300))
        assert exceeded(first).limit == "seconds"
        before = loop.tool_runs
        await clock.advance(400)  # stopped: this wait is not the run's time
        again = await rt.resume(first.run_id, loop.agent, budget=Budget(seconds=600))
        error = exceeded(again)
    assert error.limit == "seconds" and error.spent >= 600
    # 300 s were left: 3 more tool calls, not the 6 a fresh 600 s would allow, and not
    # none, which the 400 s wait would have left had it counted
    assert loop.tool_runs - before == 3


async def test_a_streamed_run_has_its_budget_and_its_reader_sees_the_alert() -> None:
    loop = Loop()
    stream = runtime().stream(loop.agent, "go", budget=Budget(model_calls=3))
    kinds = [e.kind async for e in stream]
    result = await stream.result()
    assert exceeded(result).limit == "model_calls" and loop.model_calls == 3
    assert kinds.count("budget.alert") == 1 and kinds.count("budget.exceeded") == 1
