"""Fault schedules and faulty wrappers on their own: rates, determinism, bookkeeping, errors."""

from __future__ import annotations

import random
from typing import Any

import pytest

from podium import (
    Message,
    ModelError,
    ModelResponseError,
    ProviderError,
    Retry,
    ScriptedModel,
    TransientError,
    UsageError,
    agent,
    tool,
)
from podium.testing import (
    Chaos,
    FailFirst,
    FailOnce,
    Fault,
    FaultStats,
    FaultyModel,
    Rates,
    auth_error,
    connection_reset,
    fail_first,
    flaky_agent,
    flaky_tool,
    malformed_output,
    rate_limited,
    server_error,
)

ASK = [Message.user("hi")]


@tool
def ping() -> str:
    return "pong"


async def ask(model: FaultyModel, times: int) -> list[str]:
    """Call the model `times` times; what each call came to, by exception class name."""
    outcomes = []
    for _ in range(times):
        try:
            await model.respond(ASK)
        except Exception as e:
            outcomes.append(type(e).__name__)
        else:
            outcomes.append("ok")
    return outcomes


def test_rates_are_honoured_over_10000_draws() -> None:
    rates = Rates(0.30, 0.05, 0.10, seed=11)
    draws = [rates.draw(n) for n in range(1, 10_001)]
    for kind, expected in (("error", 0.30), ("hang", 0.05), ("malformed", 0.10), (None, 0.55)):
        share = draws.count(kind) / len(draws)  # type: ignore[arg-type]
        assert abs(share - expected) <= 0.02, (kind, share)


async def test_faulty_model_rates_show_in_its_stats() -> None:
    model = FaultyModel(ScriptedModel.echo(), fail_rate=0.25, malformed_rate=0.15, seed=3)
    outcomes = await ask(model, 10_000)
    stats = model.stats
    assert stats.calls == 10_000
    assert abs(stats.errors / 10_000 - 0.25) <= 0.02
    assert abs(stats.malformed / 10_000 - 0.15) <= 0.02
    assert stats.hangs == 0
    assert outcomes.count("ProviderError") == stats.errors
    assert outcomes.count("ModelResponseError") == stats.malformed
    assert outcomes.count("ok") == stats.passed == 10_000 - stats.injected
    assert len(model.faults) == stats.injected
    assert len(model.calls) == stats.passed  # faults never reach the wrapped model


async def test_same_seed_same_faults_other_seed_other_faults() -> None:
    def make(seed: int) -> FaultyModel:
        return FaultyModel(ScriptedModel.echo(), fail_rate=0.3, malformed_rate=0.2, seed=seed)

    a, b, c = make(5), make(5), make(6)
    assert await ask(a, 200) == await ask(b, 200)
    await ask(c, 200)
    assert a.faults == b.faults and a.stats == b.stats
    assert a.faults != c.faults


async def test_the_global_random_is_left_alone() -> None:
    random.seed(1234)
    state = random.getstate()
    model = FaultyModel(ScriptedModel.echo(), fail_rate=0.5, seed=1)
    await ask(model, 50)
    tool_ = flaky_tool(ping, fail_rate=0.5, seed=1)
    assert tool_.injector.schedule.draw(1) in ("error", None)
    assert random.getstate() == state


async def test_fault_log_is_call_number_and_kind() -> None:
    model = FaultyModel(ScriptedModel.echo(), schedule=Chaos([None, "error", None, "malformed"]))
    assert await ask(model, 5) == ["ok", "ProviderError", "ok", "ModelResponseError", "ok"]
    assert model.faults == [(2, "error"), (4, "malformed")]
    assert model.faults[0] == Fault(call=2, kind="error")
    assert model.stats == FaultStats(calls=5, errors=1, hangs=0, malformed=1)


async def test_errors_rotate_429_503_by_default_and_are_fresh() -> None:
    model = FaultyModel(ScriptedModel.echo(), fail_rate=1.0)
    seen: list[BaseException] = []
    for _ in range(4):
        with pytest.raises(ProviderError) as info:
            await model.respond(ASK)
        seen.append(info.value)
    assert [getattr(e, "status", None) for e in seen] == [429, 503, 429, 503]
    assert len({id(e) for e in seen}) == 4  # a new exception each time: tracebacks never pile
    assert any("call #3" in note for note in getattr(seen[2], "__notes__", []))


async def test_custom_errors_rotate_in_order() -> None:
    model = FaultyModel(
        ScriptedModel.echo(),
        fail_rate=1.0,
        errors=[connection_reset(), server_error(502), TimeoutError, lambda: auth_error()],
    )
    kinds = []
    for _ in range(4):
        with pytest.raises(Exception) as info:
            await model.respond(ASK)
        kinds.append((type(info.value).__name__, getattr(info.value, "status", None)))
    assert kinds == [
        ("ProviderError", None),
        ("ProviderError", 502),
        ("TimeoutError", None),
        ("ModelError", 401),
    ]


def test_named_errors_are_what_the_retry_policy_expects() -> None:
    policy = Retry()
    assert rate_limited().status == 429 and server_error().status == 503
    assert server_error(500).status == 500
    for transient in (rate_limited(), server_error(), connection_reset(), malformed_output()):
        assert isinstance(transient, TransientError)
        assert policy.should_retry(transient, 1)
    refused = auth_error()
    assert isinstance(refused, ModelError) and refused.status == 401
    assert not policy.should_retry(refused, 1)
    assert isinstance(malformed_output(), ModelResponseError)
    with pytest.raises(UsageError, match="5xx"):
        server_error(404)


async def test_named_errors_are_planned_items_in_a_scripted_model() -> None:
    model = ScriptedModel([rate_limited(), server_error(), "fine"])
    with pytest.raises(ProviderError, match="429"):
        await model.respond(ASK)
    with pytest.raises(ProviderError, match="503"):
        await model.respond(ASK)
    assert (await model.respond(ASK)).text == "fine"


async def test_malformed_response_mode_returns_what_an_agent_must_refuse() -> None:
    from podium.models.base import OutputSchema

    model = FaultyModel(ScriptedModel.echo(), malformed_rate=1.0, malformed="response")
    text_answer = await model.respond(ASK)
    assert [c.name for c in text_answer.tool_calls] == ["podium_testing_no_such_tool"]
    schema = OutputSchema("x", {"type": "object"})
    json_answer = await model.respond(ASK, output_schema=schema)
    assert json_answer.output is None and json_answer.text.startswith("{")
    assert model.stats.malformed == 2


def test_fail_first_guard_fails_n_times_then_passes() -> None:
    guard = FailFirst(2)
    for _ in range(2):
        with pytest.raises(ProviderError, match="injected failure"):
            guard()
    guard()
    guard()
    assert guard.calls == 4 and guard.failed == 2
    once = FailOnce(error=RuntimeError("disk full"))
    with pytest.raises(RuntimeError, match="disk full"):
        once()
    once()
    assert fail_first(3).n == 3


def test_chaos_plays_its_script_then_hands_over() -> None:
    chaos = Chaos(["error", None, "hang"], then=FailFirst(4))
    assert [chaos.draw(n) for n in range(1, 7)] == ["error", None, "hang", "error", None, None]
    with pytest.raises(UsageError, match="entry #2"):
        Chaos([None, "explode"])  # type: ignore[list-item]


def test_bad_settings_fail_at_construction_naming_the_wrapper() -> None:
    inner = ScriptedModel.echo(name="gpt")
    with pytest.raises(UsageError, match="faulty model 'gpt': fail_rate must be between"):
        FaultyModel(inner, fail_rate=1.5)
    with pytest.raises(UsageError, match="must not exceed 1"):
        FaultyModel(inner, fail_rate=0.6, hang_rate=0.6)
    with pytest.raises(UsageError, match="either a schedule or rates"):
        FaultyModel(inner, fail_rate=0.1, schedule=FailOnce())
    with pytest.raises(UsageError, match="hang_for must be positive"):
        FaultyModel(inner, hang_rate=0.1, hang_for=0)
    with pytest.raises(UsageError, match="needs a Model"):
        FaultyModel("gpt")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="when must be"):
        flaky_tool(ping, when="during")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not an exception"):
        flaky_tool(ping, error="boom")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a tool, model or agent"):
        fail_first(1, lambda x: x)


async def test_a_tool_cannot_be_asked_to_answer_malformed() -> None:
    flaky = flaky_tool(ping, schedule=Chaos(["malformed"]))
    with pytest.raises(UsageError, match="flaky tool 'ping': cannot inject 'malformed'"):
        await flaky.invoke(None)  # type: ignore[arg-type]


def test_fail_first_wraps_what_it_is_given() -> None:
    @agent
    def step(x: int) -> int:
        return x

    model: Any = fail_first(1, ScriptedModel.echo())
    assert type(model).__name__ == "FaultyModel"
    assert type(fail_first(1, ping)).__name__ == "FlakyTool"
    assert type(fail_first(1, step)).__name__ == "FlakyAgent"
    assert flaky_agent(step).stats == FaultStats()
