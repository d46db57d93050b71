"""ScriptedModel: deterministic answers, recorded requests, loud failures; resolve_model."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from podium import ModelResponseError, Usage, UsageError
from podium.core.tools import ToolSpec
from podium.models.base import Message, Model, ModelResponse, OutputSchema, ToolCall
from podium.models.openai import OpenAIModel
from podium.models.scripted import ScriptedModel, ScriptExhaustedError, tool_call
from podium.models.settings import model_from_env, resolve_model

HELLO = [Message.system("be brief"), Message.user("hello there")]


async def test_plays_each_kind_of_planned_response_in_order() -> None:
    model = ScriptedModel(
        [
            "plain text",
            {"answer": 42},
            tool_call("lookup", order_id=3),
            [ToolCall("given", "a", {}), tool_call("b", {"x": 1})],
            ModelResponse(text="full", finish_reason="length"),
        ]
    )
    assert isinstance(model, Model)
    r1 = await model.respond(HELLO)
    assert (r1.text, r1.output, r1.tool_calls) == ("plain text", None, ())
    r2 = await model.respond(HELLO)
    assert r2.output == {"answer": 42} and r2.text == '{"answer":42}'
    r3 = await model.respond(HELLO)
    assert r3.tool_calls == (ToolCall("call_3_0", "lookup", {"order_id": 3}),)
    r4 = await model.respond(HELLO)
    assert [c.id for c in r4.tool_calls] == ["given", "call_4_1"]
    r5 = await model.respond(HELLO)
    assert (r5.text, r5.finish_reason, r5.model) == ("full", "length", "scripted")
    assert model.unconsumed == 0
    model.assert_consumed()


async def test_usage_is_counted_deterministically_or_taken_as_given() -> None:
    counted = ScriptedModel(["two words"])
    r = await counted.respond(HELLO)
    assert r.usage == Usage(input_tokens=4, output_tokens=2, requests=1)

    given = ScriptedModel(["a", "b"], usage=[Usage(10, 5, 1), None])
    assert (await given.respond(HELLO)).usage == Usage(10, 5, 1)
    assert (await given.respond(HELLO)).usage.requests == 1
    everywhere = ScriptedModel(["a"], usage=Usage(7, 7, 1))
    assert (await everywhere.respond(HELLO)).usage == Usage(7, 7, 1)
    with pytest.raises(UsageError, match="2 usages for 1 responses"):
        ScriptedModel(["a"], usage=[Usage(), Usage()])


async def test_exhausted_script_fails_loudly_naming_model_and_call() -> None:
    model = ScriptedModel(["only one"], name="planner")
    await model.respond(HELLO)
    with pytest.raises(ScriptExhaustedError, match=r"'planner': call #2 .* only 1 response"):
        await model.respond(HELLO)
    assert len(model.calls) == 2


async def test_unconsumed_responses_are_reported() -> None:
    model = ScriptedModel(["a", "b", "c"])
    await model.respond(HELLO)
    assert model.unconsumed == 2
    with pytest.raises(AssertionError, match="2 planned response"):
        model.assert_consumed()


async def test_planned_exceptions_are_raised_and_count_as_calls() -> None:
    model = ScriptedModel([ModelResponseError("garbled"), ValueError, "fine"])
    with pytest.raises(ModelResponseError, match="garbled"):
        await model.respond(HELLO)
    with pytest.raises(ValueError, match="call #2"):
        await model.respond(HELLO)
    assert (await model.respond(HELLO)).text == "fine"
    model.assert_consumed()


def test_bad_script_items_are_refused_up_front() -> None:
    with pytest.raises(UsageError, match="response #2"):
        ScriptedModel(["ok", 42])  # type: ignore[list-item]
    with pytest.raises(UsageError, match="list of responses or a function"):
        ScriptedModel("not a list")


async def test_records_requests_for_assertions() -> None:
    spec = ToolSpec("lookup", "find", {"type": "object", "properties": {}})
    schema = OutputSchema("Answer", {"type": "object"})
    model = ScriptedModel(["x"])
    await model.respond(HELLO, tools=[spec], output_schema=schema)
    (req,) = model.calls
    assert req.messages == tuple(HELLO)
    assert req.tools == (spec,) and req.output_schema is schema
    assert req.last_message == Message.user("hello there")


async def test_function_script_answers_from_the_request() -> None:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> str | dict[str, int]:
        return {"n": len(messages)} if schema else messages[-1].content.upper()

    async def async_answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ToolCall:
        return tool_call(tools[0].name)

    model = ScriptedModel(answer)
    assert (await model.respond(HELLO)).text == "HELLO THERE"
    out = await model.respond(HELLO, output_schema=OutputSchema("N", {"type": "object"}))
    assert out.output == {"n": 2}
    assert model.unconsumed == 0
    model.assert_consumed()
    spec = ToolSpec("t", "", {"type": "object"})
    r = await ScriptedModel(async_answer).respond(HELLO, tools=[spec])
    assert r.tool_calls[0].name == "t"


def test_resolve_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    assert resolve_model(None) is None
    assert model_from_env() is None
    given = ScriptedModel(["x"])
    assert resolve_model(given) is given
    assert isinstance(resolve_model("scripted"), ScriptedModel)
    m = resolve_model("openai:llama3.1:8b")
    assert isinstance(m, OpenAIModel) and m.model == "llama3.1:8b"
    bare = resolve_model("gpt-4o-mini")
    assert isinstance(bare, OpenAIModel) and bare.name == "openai:gpt-4o-mini"
    with pytest.raises(UsageError, match="not understood"):
        resolve_model("mistral:large")  # no such provider
    monkeypatch.setenv("PODIUM_MODEL", "openai:gpt-4o-mini")
    env = model_from_env()
    assert isinstance(env, OpenAIModel) and env.model == "gpt-4o-mini"


async def test_echo_model_for_demos() -> None:
    model = ScriptedModel.echo()
    assert (await model.respond(HELLO)).text == "(scripted echo) hello there"
