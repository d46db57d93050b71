"""Each injected fault meets the door the way the real one would: transient errors and
malformed answers are retried, hangs are cut by a timeout and retried, a 401 is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    LLMAgent,
    Retry,
    RunContext,
    RunStatus,
    Runtime,
    ScriptedModel,
    StepTimeoutError,
    Tool,
    ToolContext,
    UsageError,
    agent,
    tool,
)
from podium.runtime.breaker import Breaker
from podium.testing import (
    Chaos,
    FaultyModel,
    auth_error,
    fail_first,
    flaky_agent,
    flaky_tool,
    rate_limited,
    server_error,
)

RETRY3 = Retry(attempts=3, initial_delay=0)


class Verdict(BaseModel):
    refund: bool


def runtime() -> Runtime:
    return Runtime("memory://", retry=RETRY3)


async def retried_errors(rt: Runtime, run_id: str) -> list[str]:
    return [
        str((e.data or {}).get("error", ""))
        for e in await rt.events(run_id)
        if e.kind == "step.retried"
    ]


def judge(model: Any, **kw: Any) -> LLMAgent:
    return LLMAgent("judge", model=model, instructions="Decide.", output_type=Verdict, **kw)


async def test_transient_model_errors_are_retried_and_the_run_completes() -> None:
    model = FaultyModel(ScriptedModel([{"refund": True}]), schedule=Chaos(["error", "error"]))
    rt = runtime()
    result = await rt.run(judge(model), "order 7")
    assert result.status == RunStatus.COMPLETED and result.output == Verdict(refund=True)
    assert model.stats.errors == 2 and model.stats.calls == 3
    errors = await retried_errors(rt, result.run_id)
    assert len(errors) == 2 and "429" in errors[0] and "503" in errors[1]
    model.assert_consumed()  # forwarded to the scripted model


async def test_thirty_percent_failures_under_a_seed_all_runs_complete() -> None:
    model = FaultyModel(ScriptedModel.echo(), fail_rate=0.3, seed=4)
    rt = Runtime("memory://", retry=Retry(attempts=5, initial_delay=0))
    talker = LLMAgent("talker", model=model, instructions="Echo.")
    results = [await rt.run(talker, f"hello {i}") for i in range(40)]
    assert [r.status for r in results] == [RunStatus.COMPLETED] * 40
    assert model.stats.calls == 40 + model.stats.errors
    assert model.stats.errors >= 8  # about 30% of the calls failed and were asked again


async def test_a_hanging_agent_is_cut_by_its_timeout_and_retried() -> None:
    @agent(timeout=0.05)
    async def lookup(order: int) -> str:
        return f"order {order}"

    slow = flaky_agent(lookup, schedule=Chaos(["hang"]))
    rt = runtime()
    result = await rt.run(slow, 7)
    assert result.output == "order 7"
    assert slow.stats.hangs == 1
    (error,) = await retried_errors(rt, result.run_id)
    assert error.startswith("StepTimeoutError") and "0.05s" in error


async def test_a_hanging_model_is_cut_by_the_llm_agents_timeout() -> None:
    model = FaultyModel(ScriptedModel([{"refund": False}]), schedule=Chaos(["hang"]))
    rt = runtime()
    result = await rt.run(judge(model, timeout=0.05), "order 8")
    assert result.output == Verdict(refund=False)
    assert model.stats.hangs == 1 and len(model.calls) == 1
    (error,) = await retried_errors(rt, result.run_id)
    assert "timed out after 0.05s" in error


async def test_a_hang_past_every_attempt_fails_the_run_as_a_timeout() -> None:
    model = FaultyModel(ScriptedModel.echo(), hang_rate=1.0)
    rt = Runtime("memory://", retry=RETRY3, timeout=0.02)  # the runtime's timeout, per call
    result = await rt.run(LLMAgent("talker", model=model, instructions="Echo."), "hi")
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, Exception) and "timed out after 0.02s" in str(
        result.exception
    )
    assert model.stats.hangs == 3  # three attempts of the model step, each cut


@pytest.mark.parametrize("mode", ["raise", "response"])
async def test_malformed_answers_are_retried(mode: str) -> None:
    model = FaultyModel(
        ScriptedModel([{"refund": True}]),
        schedule=Chaos(["malformed"]),
        malformed=mode,  # type: ignore[arg-type]
    )
    rt = runtime()
    result = await rt.run(judge(model), "order 9")
    assert result.output == Verdict(refund=True)
    if mode == "raise":  # as a provider adapter raises it: the door retries the step
        (error,) = await retried_errors(rt, result.run_id)
        assert error.startswith("ModelResponseError")
    else:  # a broken answer: LLMAgent sends it back with the problem, as a new step
        assert await retried_errors(rt, result.run_id) == []
        reasks = [e for e in await rt.events(result.run_id) if e.kind == "model.reask"]
        assert [e.data["step"] for e in reasks if e.data] == ["/judge/model#0"]


async def test_an_auth_error_is_not_retried_and_the_run_fails_once() -> None:
    model = FaultyModel(ScriptedModel.echo(), fail_rate=1.0, errors=[auth_error()])
    rt = runtime()
    result = await rt.run(LLMAgent("talker", model=model, instructions="Echo."), "hi")
    assert result.status == RunStatus.FAILED and "401" in (result.error or "")
    assert model.stats.calls == 1
    assert await retried_errors(rt, result.run_id) == []


async def test_planned_provider_errors_in_a_script_are_retried() -> None:
    model = ScriptedModel([rate_limited(), server_error(502), {"refund": True}])
    result = await runtime().run(judge(model), "order 10")
    assert result.output == Verdict(refund=True)
    model.assert_consumed()


async def test_a_wrapped_tool_keeps_its_schema_and_effect_flags() -> None:
    def did_it(ctx: ToolContext) -> None:
        return None

    def undo(ctx: ToolContext) -> None:
        return None

    @tool(effect=True, idempotent=False, reconcile=did_it, compensate=undo, timeout=2.0)
    def charge(order_id: int, amount: float) -> str:
        """Charge a card.

        Args:
            order_id: The order to charge.
        """
        return f"charged {order_id}"

    flaky = flaky_tool(charge, fail_rate=0.5, seed=1)
    assert isinstance(flaky, Tool) and flaky.name == "charge"
    assert flaky.spec == charge.spec and flaky.parameters == charge.parameters
    assert flaky.description == "Charge a card."
    assert (flaky.effect, flaky.idempotent) == (True, False)
    assert flaky.reconcile is did_it and flaky.compensate is undo
    assert flaky.timeout == 2.0 and flaky.retry is charge.retry
    assert flaky.check_input({"order_id": "3", "amount": 1}) == {"order_id": 3, "amount": 1.0}
    LLMAgent("clerk", model=ScriptedModel.echo(), instructions=".", tools=[flaky])  # accepted


async def test_a_failing_tool_is_retried_before_it_runs() -> None:
    calls: list[str] = []

    @tool(effect=True, idempotent=True)
    def ship(order_id: int, ctx: ToolContext) -> str:
        calls.append(ctx.idempotency_key)
        return f"shipped {order_id}"

    flaky = flaky_tool(ship, schedule=Chaos(["error", "error"]))

    @agent
    async def fulfil(order_id: int, ctx: RunContext) -> str:
        result: str = await ctx.use(flaky, {"order_id": order_id})
        return result

    result = await runtime().run(fulfil, 5)
    assert result.output == "shipped 5" and len(calls) == 1
    assert flaky.stats.errors == 2


async def test_a_fault_after_the_tool_ran_repeats_the_effect_with_the_same_key() -> None:
    keys: list[str] = []

    @tool(effect=True)
    def ship(order_id: int, ctx: ToolContext) -> str:
        keys.append(ctx.idempotency_key)
        return f"shipped {order_id}"

    lost = flaky_tool(ship, schedule=Chaos(["error"]), when="after")

    @agent
    async def fulfil(order_id: int, ctx: RunContext) -> str:
        result: str = await ctx.use(lost, {"order_id": order_id})
        return result

    result = await runtime().run(fulfil, 6)
    assert result.output == "shipped 6"
    assert len(keys) == 2 and keys[0] == keys[1]  # the world saw it twice, under one key


async def test_a_hanging_tool_is_cut_by_its_own_timeout() -> None:
    @tool(timeout=0.05)
    def quote(sku: str) -> float:
        return 9.5

    slow = flaky_tool(quote, schedule=Chaos(["hang"]))

    @agent
    async def price(sku: str, ctx: RunContext) -> float:
        value: float = await ctx.use(slow, {"sku": sku})
        return value

    rt = runtime()
    result = await rt.run(price, "SHOE-10")
    assert result.output == 9.5
    (error,) = await retried_errors(rt, result.run_id)
    assert error.startswith("StepTimeoutError")


async def test_a_flaky_agent_keeps_what_the_door_reads() -> None:
    backup = agent(name="backup")(lambda x: "backup")
    breaker = Breaker(failures=2)
    policy = Retry(attempts=5, initial_delay=0)

    @agent(retry=policy, timeout=1.5, fallbacks=[backup], breaker=breaker)
    def quote(x: int) -> str:
        """Quote a price."""
        return str(x)

    flaky = flaky_agent(quote, fail_rate=0.2, seed=3)
    assert flaky.name == "quote" and flaky.description == "Quote a price."
    assert (flaky.input_type, flaky.output_type) == (int, str)
    assert flaky.retry is policy and flaky.timeout == 1.5
    assert flaky.fallbacks == (backup,) and flaky.breaker is breaker
    assert flaky.check_input is quote.check_input and flaky.check_output is quote.check_output
    with pytest.raises(UsageError, match="input for agent 'quote'"):
        await runtime().run(flaky, "not a number")  # its input type is checked as before


async def test_a_flaky_agent_that_fails_for_good_hands_over_to_its_fallback() -> None:
    backup = agent(name="backup")(lambda x: f"backup {x}")

    @agent(fallbacks=[backup])
    def quote(x: int) -> str:
        return f"quote {x}"

    down = flaky_agent(quote, fail_rate=1.0)
    rt = runtime()
    result = await rt.run(down, 3)
    assert result.output == "backup 3" and down.stats.errors == 3
    assert "fallback.used" in [e.kind for e in await rt.events(result.run_id)]


async def test_same_seed_gives_the_same_trace() -> None:
    async def trace(seed: int) -> list[tuple[str, str]]:
        model = FaultyModel(ScriptedModel.echo(), fail_rate=0.3, malformed_rate=0.1, seed=seed)
        talker = LLMAgent("talker", model=model, instructions="Echo.")
        rt = runtime()
        out = []
        for i in range(10):
            r = await rt.run(talker, f"hi {i}")
            out += [(e.kind, e.key) for e in await rt.events(r.run_id)]
        return out

    first = await trace(21)
    assert first == await trace(21)
    assert first != await trace(22)


async def test_fail_first_then_resume_replays_the_completed_steps(tmp_path: Path) -> None:
    ran: list[str] = []

    @agent
    def fetch(x: int) -> int:
        ran.append("fetch")
        return x * 2

    @agent
    def store(x: int) -> int:
        ran.append("store")
        return x + 1

    flaky_store = fail_first(1, store, error=RuntimeError("disk full"))

    @agent
    async def pipeline(x: int, ctx: RunContext) -> int:
        doubled: int = await ctx.call(fetch, x)
        stored: int = await ctx.call(flaky_store, doubled)
        return stored

    rt = Runtime(f"sqlite:///{tmp_path / 'faults.db'}", retry=NO_RETRY)
    try:
        first = await rt.run(pipeline, 4)
        assert first.status == RunStatus.FAILED and "disk full" in (first.error or "")
        again = await rt.resume(first.run_id, pipeline)
        assert again.status == RunStatus.COMPLETED and again.output == 9
        assert ran == ["fetch", "store"]  # fetch replayed from the journal; store ran once
        assert flaky_store.faults == [(1, "error")]
    finally:
        await rt.close()


def test_step_timeout_is_what_a_cut_hang_raises() -> None:
    assert issubclass(StepTimeoutError, TimeoutError)
