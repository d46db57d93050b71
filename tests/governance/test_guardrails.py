"""Input and output guardrails per agent: checked at the door, a trip stops the call with a
clear error and a `guard.tripped` event, and is never retried."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from podium import (
    GuardrailTrippedError,
    GuardResult,
    LLMAgent,
    Retry,
    RunStatus,
    Runtime,
    ScriptedModel,
    Sequential,
    UsageError,
    agent,
    guardrail,
)

CARD = re.compile(r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b")


@guardrail
def no_card_numbers(value: Any) -> GuardResult:
    found = CARD.search(str(value))
    return GuardResult(tripwire=found is not None, info="a card number" if found else None)


async def polite(value: Any) -> bool:
    return "stupid" in str(value)  # an async function returning a bool works too


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    # a retry that would retry anything: a tripped guardrail must still run once only
    return Runtime(f"sqlite:///{tmp_path / 'runs.db'}", retry=Retry(attempts=3, on=(Exception,)))


async def events(rt: Runtime, run_id: str, kind: str) -> list[dict[str, Any]]:
    store = await rt.open()
    return [e.data or {} for e in await store.list_events(run_id) if e.kind == kind]


async def test_an_input_guardrail_stops_the_agent_before_it_runs(rt: Runtime) -> None:
    model = ScriptedModel(["never asked"])
    support = LLMAgent(
        "support", model=model, instructions="Help.", input_guardrails=[no_card_numbers]
    )
    result = await rt.run(support, "my card is 4111 1111 1111 1111, refund me")
    assert result.status == RunStatus.FAILED
    assert model.calls == []
    err = result.exception
    while err is not None and not isinstance(err, GuardrailTrippedError):
        err = err.__cause__
    assert isinstance(err, GuardrailTrippedError)
    assert (err.guard, err.where, err.agent) == ("no_card_numbers", "input", "support")
    assert "input guardrail 'no_card_numbers' of agent 'support' tripped" in str(err)
    (tripped,) = await events(rt, result.run_id, "guard.tripped")
    assert tripped == {"guard": "no_card_numbers", "where": "input", "info": "a card number"}


async def test_an_output_guardrail_stops_the_answer(rt: Runtime) -> None:
    calls: list[str] = []

    @agent(output_guardrails=[polite])
    def rude(x: str) -> str:
        calls.append(x)
        return "that is a stupid question"

    @agent
    def after(x: str) -> str:
        raise AssertionError("the stopped output must not reach the next agent")

    result = await rt.run(Sequential("flow", [rude, after]), "why?")
    assert result.status == RunStatus.FAILED
    assert calls == ["why?"]  # not retried, though the retry would retry anything
    assert "output guardrail 'polite' of agent 'rude' tripped" in (result.error or "")
    (tripped,) = await events(rt, result.run_id, "guard.tripped")
    assert tripped["where"] == "output" and tripped["guard"] == "polite"


async def test_guardrails_that_pass_cost_nothing_to_the_result(rt: Runtime) -> None:
    support = LLMAgent(
        "support",
        model=ScriptedModel(["Your refund is on its way."]),
        instructions="Help.",
        input_guardrails=[no_card_numbers],
        output_guardrails=[polite, no_card_numbers],
    )
    result = await rt.run(support, "refund order 7")
    assert result.status == RunStatus.COMPLETED
    assert result.output == "Your refund is on its way."
    assert await events(rt, result.run_id, "guard.tripped") == []


def test_a_guardrail_must_be_a_function_and_say_what_it_found() -> None:
    with pytest.raises(UsageError, match="list of functions"):
        LLMAgent("a", model=ScriptedModel([]), instructions="", input_guardrails="nope")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="must be a function"):
        LLMAgent("a", model=ScriptedModel([]), instructions="", output_guardrails=[3])


async def test_a_guardrail_that_returns_nonsense_says_so(rt: Runtime) -> None:
    @agent(input_guardrails=[lambda v: "maybe"])
    def a(x: str) -> str:
        return x

    result = await rt.run(a, "x")
    assert result.status == RunStatus.FAILED
    assert "return a GuardResult(tripwire=...) or a bool" in (result.error or "")
