"""LLMAgent with a ScriptedModel through a real Runtime: answers, tools, retries, replay."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    ModelError,
    ModelResponseError,
    Retry,
    RunStatus,
    Runtime,
    StepError,
    StepStatus,
    Usage,
    UsageError,
)
from podium.agents.llm import LLMAgent, check_model_response
from podium.core.records import StepRecord
from podium.core.serde import dumps, loads, to_plain
from podium.core.tools import ToolContext
from podium.errors import MaxTurnsExceededError, OutputTruncatedError
from podium.models.base import Message, ModelResponse, ModelSettings, ToolCall
from podium.models.scripted import ScriptedModel, tool_call
from podium.stores.memory import MemoryStore
from podium.tools import tool

FAST = Retry(attempts=3, initial_delay=0.0)


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=FAST)


class Decision(BaseModel):
    approve: bool
    reason: str


@tool
def lookup(order_id: int) -> dict[str, Any]:
    """Find an order.

    Args:
        order_id: Which order.
    """
    return {"order_id": order_id, "sku": "a"}


@tool
async def price(sku: str) -> float:
    """Price of one item."""
    return {"a": 10.0, "b": 2.5}[sku]


async def test_text_answer(rt: Runtime) -> None:
    model = ScriptedModel(["Hello, Ada."])
    greeter = LLMAgent("greeter", model=model, instructions="Greet the person.")
    result = await rt.run(greeter, "Ada")
    assert result.ok, result.error
    assert result.output == "Hello, Ada."
    (req,) = model.calls
    assert req.messages == (Message.system("Greet the person."), Message.user("Ada"))
    assert req.tools == () and req.output_schema is None
    steps = await rt.steps(result.run_id)
    assert [(s.key, s.kind) for s in steps] == [
        ("/greeter", "agent"),
        ("/greeter/model#0", "model"),
    ]
    assert result.usage == Usage(input_tokens=4, output_tokens=2, requests=1)
    assert steps[1].usage == result.usage
    model.assert_consumed()


async def test_non_string_input_is_sent_as_json(rt: Runtime) -> None:
    model = ScriptedModel(["ok"])
    agent = LLMAgent("a", model=model, instructions="x")
    assert (await rt.run(agent, {"name": "Ada", "n": [1, 2]})).ok
    assert model.calls[0].messages[1].content == '{"name":"Ada","n":[1,2]}'


async def test_structured_output(rt: Runtime) -> None:
    model = ScriptedModel([{"approve": True, "reason": "in policy"}])
    judge = LLMAgent("judge", model=model, instructions="Decide.", output_type=Decision)
    result = await rt.run(judge, "refund order 3?")
    assert result.ok, result.error
    assert result.output == Decision(approve=True, reason="in policy")
    schema = model.calls[0].output_schema
    assert schema is not None and schema.name == "Decision"
    assert set(schema.schema["properties"]) == {"approve", "reason"}
    assert schema.strict is False  # a plain pydantic model is not closed; not sent as strict
    journaled = (await rt.steps(result.run_id))[1].output
    assert journaled.output == {"approve": True, "reason": "in policy"}  # raw JSON, journalable


async def test_non_object_output_travels_wrapped(rt: Runtime) -> None:
    model = ScriptedModel([{"result": [3, 1, 2]}, ModelResponse(output=[4])])
    ranker = LLMAgent("ranker", model=model, instructions="Rank.", output_type=list[int])
    assert (await rt.run(ranker, "x")).output == [3, 1, 2]
    assert (await rt.run(ranker, "y")).output == [4]  # an unwrapped answer is fine too
    schema = model.calls[0].output_schema
    assert schema is not None and schema.strict is True
    assert schema.schema["required"] == ["result"]
    assert schema.schema["properties"]["result"]["type"] == "array"


async def test_tool_loop_with_two_tools_sums_usage(rt: Runtime) -> None:
    model = ScriptedModel(
        [
            [tool_call("lookup", order_id=3), tool_call("price", sku="a")],
            tool_call("price", {"sku": "b"}),
            "Order 3 costs 12.5 in all.",
        ],
        usage=[Usage(10, 2, 1), Usage(20, 3, 1), Usage(30, 4, 1)],
    )
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", tools=[lookup, price])
    result = await rt.run(clerk, "What does order 3 cost?")
    assert result.ok, result.error
    assert result.output == "Order 3 costs 12.5 in all."
    assert result.usage == Usage(60, 9, 3)
    assert {t.name for t in model.calls[0].tools} == {"lookup", "price"}
    third = model.calls[2].messages
    assert third[2] == Message.assistant(
        "",
        [
            ToolCall("call_1_0", "lookup", {"order_id": 3}),
            ToolCall("call_1_1", "price", {"sku": "a"}),
        ],
    )
    assert third[3] == Message.tool("call_1_0", '{"order_id":3,"sku":"a"}', "lookup")
    assert third[4] == Message.tool("call_1_1", "10.0", "price")
    assert third[6] == Message.tool("call_2_0", "2.5", "price")
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == [
        "/clerk",
        "/clerk/model#0",
        "/clerk/lookup#0",
        "/clerk/price#0",
        "/clerk/model#1",
        "/clerk/price#1",
        "/clerk/model#2",
    ]
    model.assert_consumed()


async def test_a_malformed_structured_answer_is_sent_back_with_the_problem(rt: Runtime) -> None:
    model = ScriptedModel(
        [{"approve": "perhaps"}, "I think yes", {"approve": False, "reason": "late"}]
    )
    judge = LLMAgent("judge", model=model, instructions="Decide.", output_type=Decision)
    result = await rt.run(judge, "refund?")
    assert result.ok, result.error
    assert result.output == Decision(approve=False, reason="late")
    # each ask is its own journaled step; nothing was retried as the same request
    steps = await rt.steps(result.run_id)
    assert [s.key for s in steps if s.kind == "model"] == [
        "/judge/model#0",
        "/judge/model#1",
        "/judge/model#2",
    ]
    assert all(s.status == StepStatus.COMPLETED for s in steps)
    events = await rt.events(result.run_id)
    assert [e.kind for e in events if e.kind == "step.retried"] == []
    second, third = model.calls[1].messages, model.calls[2].messages
    assert second[:2] == model.calls[0].messages[:2]
    assert second[2] == Message.assistant('{"approve":"perhaps"}')
    assert second[3].role == "user"
    assert "field 'approve'" in second[3].content and "field 'reason'" in second[3].content
    assert third[4] == Message.assistant("I think yes")
    assert "not JSON" in third[5].content
    reasks = [e.data for e in events if e.kind == "model.reask"]
    assert [(d or {}).get("step") for d in reasks] == ["/judge/model#0", "/judge/model#1"]
    assert result.usage.requests == 3  # every ask paid for
    model.assert_consumed()


async def test_re_asks_are_bounded_and_the_last_step_is_named(rt: Runtime) -> None:
    model = ScriptedModel(["no", "still no", "never asked"])
    judge = LLMAgent(
        "judge", model=model, instructions="Decide.", output_type=Decision, max_reasks=1
    )
    result = await rt.run(judge, "refund?")
    assert isinstance(result.exception, StepError)
    assert result.exception.step == "/judge/model#1"
    assert isinstance(result.exception.cause, ModelResponseError)
    assert "after 1 re-ask(s) (max_reasks=1)" in str(result.exception)
    assert len(model.calls) == 2  # not retried: the re-asks were the retries
    assert result.usage.requests == 2


async def test_json_in_fences_and_with_raw_newlines_is_read(rt: Runtime) -> None:
    model = ScriptedModel(['Sure!\n```json\n{"approve": true, "reason": "one\ntwo"}\n```'])
    judge = LLMAgent("judge", model=model, instructions="Decide.", output_type=Decision)
    result = await rt.run(judge, "refund?")
    assert result.ok, result.error
    assert result.output == Decision(approve=True, reason="one\ntwo")


async def test_a_cut_off_structured_answer_fails_naming_max_tokens(rt: Runtime) -> None:
    cut = ModelResponse(text='{"approve": tr', finish_reason="length", usage=Usage(20, 5, 1))
    model = ScriptedModel([cut, "never asked"])
    judge = LLMAgent(
        "judge",
        model=model,
        instructions="Decide.",
        output_type=Decision,
        settings=ModelSettings(max_tokens=5),
    )
    result = await rt.run(judge, "refund?")
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, OutputTruncatedError)
    assert "max_tokens=5" in str(result.exception)
    assert len(model.calls) == 1
    assert result.usage == Usage(20, 5, 1)


async def test_a_cut_off_text_answer_is_kept_and_reported(rt: Runtime) -> None:
    model = ScriptedModel([ModelResponse(text="Once upon a", finish_reason="length")])
    teller = LLMAgent(
        "teller", model=model, instructions="Tell.", settings=ModelSettings(max_tokens=3)
    )
    result = await rt.run(teller, "a story")
    assert result.output == "Once upon a"
    (cut,) = [e for e in await rt.events(result.run_id) if e.kind == "model.truncated"]
    assert cut.data == {"max_tokens": 3, "chars": 11}


async def test_tokens_of_failed_attempts_count(rt: Runtime) -> None:
    model = ScriptedModel(
        [ModelResponseError("garbled", usage=Usage(5, 7, 1)), "ok"],
        usage=[None, Usage(3, 2, 1)],
    )
    result = await rt.run(LLMAgent("a", model=model, instructions="x"), "go")
    assert result.ok, result.error
    assert result.usage == Usage(8, 9, 2)
    (step,) = [s for s in await rt.steps(result.run_id) if s.kind == "model"]
    assert step.usage == Usage(8, 9, 2) and step.attempt == 2


async def test_max_turns_exceeded_names_the_agent(rt: Runtime) -> None:
    model = ScriptedModel([tool_call("price", sku="a"), tool_call("price", sku="b")])
    loopy = LLMAgent("loopy", model=model, instructions="x", tools=[price], max_turns=2)
    result = await rt.run(loopy, "go")
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, MaxTurnsExceededError)
    assert "'loopy'" in str(result.exception) and "max_turns=2" in str(result.exception)
    model.assert_consumed()  # not retried: running out of turns is not transient


async def test_unknown_tool_is_retried_then_fails_naming_it(rt: Runtime) -> None:
    model = ScriptedModel([tool_call("refund_all"), "Sorry, I can't."])
    agent = LLMAgent("helper", model=model, instructions="x", tools=[price])
    result = await rt.run(agent, "go")
    assert result.output == "Sorry, I can't."
    (retried,) = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert retried.data is not None and "unknown tool 'refund_all'" in retried.data["error"]

    stubborn = ScriptedModel([tool_call("refund_all")] * 3)
    failing = await rt.run(LLMAgent("helper", model=stubborn, instructions="x"), "go")
    assert isinstance(failing.exception, StepError)
    assert failing.exception.step == "/helper/model#0"
    assert isinstance(failing.exception.cause, ModelResponseError)
    assert "unknown tool 'refund_all'" in str(failing.exception)
    stubborn.assert_consumed()


async def test_bad_tool_arguments_are_retried(rt: Runtime) -> None:
    model = ScriptedModel(
        [tool_call("price", {"sku": 5, "x": 1}), tool_call("price", sku="b"), "ok"]
    )
    agent = LLMAgent("a", model=model, instructions="x", tools=[price])
    result = await rt.run(agent, "go")
    assert result.ok, result.error
    (retried,) = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert retried.data is not None and "arguments for tool 'price'" in retried.data["error"]


async def test_a_refusal_for_good_is_not_retried(rt: Runtime) -> None:
    model = ScriptedModel([ModelError("model 'x': HTTP 400: bad", status=400), "unused"])
    result = await rt.run(LLMAgent("a", model=model, instructions="x"), "go")
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, ModelError)
    assert len(model.calls) == 1


class JsonMemoryStore(MemoryStore):
    """Keeps step outputs as JSON would (like SQLite or Postgres), to prove replay rebuilds
    the declared types from plain data."""

    async def record_finished(self, step: StepRecord) -> None:
        plain = loads(dumps(step.output)) if step.output is not None else None
        await super().record_finished(dataclasses.replace(step, output=plain))


async def test_resume_replays_model_answers_instead_of_asking_again() -> None:
    shipped: list[str] = []

    @tool(effect=True)
    def ship(order_id: int, ctx: ToolContext) -> str:
        """Ship an order."""
        if not shipped:
            shipped.append("crash")
            raise ValueError("warehouse offline")  # not transient: the run fails
        shipped.append(ctx.idempotency_key)
        return f"shipped {order_id}"

    model = ScriptedModel(
        [tool_call("ship", order_id=9), "Order 9 is on its way."],
        usage=[Usage(10, 1, 1), Usage(20, 2, 1)],
    )
    clerk = LLMAgent("clerk", model=model, instructions="Ship it.", tools=[ship])
    rt = Runtime(JsonMemoryStore(), retry=FAST)
    first = await rt.run(clerk, "ship order 9")
    assert first.status == RunStatus.FAILED and "warehouse offline" in (first.error or "")
    assert len(model.calls) == 1
    steps = {s.key: s for s in await rt.steps(first.run_id)}
    assert steps["/clerk/model#0"].status == StepStatus.COMPLETED
    assert isinstance(steps["/clerk/model#0"].output, dict)  # stored as plain JSON

    second = await rt.resume(first.run_id, clerk)
    assert second.ok, second.error
    assert second.output == "Order 9 is on its way."
    assert len(model.calls) == 2  # model#0 came from the journal, only model#1 was asked
    assert shipped == ["crash", f"{first.run_id}:/clerk/ship#0"]
    replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
    assert replayed == ["/clerk/model#0"]
    assert second.usage == Usage(30, 3, 2)  # the replayed answer's usage is carried over
    # the resumed turn saw the same history as a fresh run would have
    assert model.calls[1].messages[2].tool_calls == (ToolCall("call_1_0", "ship", {"order_id": 9}),)
    model.assert_consumed()


def test_model_response_round_trips_through_json() -> None:
    response = ModelResponse(
        text="",
        tool_calls=(ToolCall("c1", "ship", {"order_id": 9, "items": [{"sku": "a"}]}),),
        output={"nested": [1, {"x": None}]},
        usage=Usage(3, 4, 1),
        model="m",
        finish_reason="tool_calls",
    )
    assert check_model_response(loads(dumps(response))) == response
    assert check_model_response(to_plain(response)) == response
    assert check_model_response(response) is response


def test_construction_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    with pytest.raises(UsageError, match="'x' has no model"):
        _ = LLMAgent("x", instructions="x").model
    with pytest.raises(UsageError, match="max_turns"):
        LLMAgent("x", model=ScriptedModel(["a"]), instructions="x", max_turns=0)
    with pytest.raises(UsageError, match="two tools are named 'price'"):
        LLMAgent("x", model="scripted", instructions="x", tools=[price, price])
    with pytest.raises(UsageError, match="not a Tool"):
        LLMAgent("x", model="scripted", instructions="x", tools=[print])  # type: ignore[list-item]
    monkeypatch.setenv("PODIUM_MODEL", "scripted")
    assert isinstance(LLMAgent("x", instructions="x").model, ScriptedModel)


async def test_resume_on_a_persistent_store_from_a_fresh_runtime(persistent_url: str) -> None:
    """The journaled model answer is read back from SQLite / Postgres as JSON and rebuilt."""
    attempts: list[int] = []

    @tool
    def ship(order_id: int) -> str:
        """Ship an order."""
        attempts.append(order_id)
        if len(attempts) == 1:
            raise ValueError("warehouse offline")
        return "shipped"

    def clerk(model: ScriptedModel) -> LLMAgent:
        return LLMAgent("clerk", model=model, instructions="x", tools=[ship], output_type=Decision)

    before = ScriptedModel([[tool_call("ship", order_id=9), tool_call("ship", order_id=9)]])
    async with Runtime(persistent_url, retry=FAST) as rt:
        first = await rt.run(clerk(before), "ship 9")
    assert first.status == RunStatus.FAILED
    before.assert_consumed()

    after = ScriptedModel([{"approve": True, "reason": "shipped"}], usage=Usage(5, 5, 1))
    async with Runtime(persistent_url, retry=FAST) as rt:
        second = await rt.resume(first.run_id, clerk(after))
        steps = {s.key: s for s in await rt.steps(first.run_id)}
    assert second.ok, second.error
    assert second.output == Decision(approve=True, reason="shipped")
    assert len(after.calls) == 1  # the tool-call turn was replayed, not asked again
    assert after.calls[0].messages[2].tool_calls[0].name == "ship"
    assert [m.role for m in after.calls[0].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    assert attempts == [9, 9, 9]
    assert steps["/clerk/model#1"].status == StepStatus.COMPLETED


# tool choice and parallel tool calls ---------------------------------------------------------
async def test_a_forced_tool_choice_reverts_after_the_tool_ran(rt: Runtime) -> None:
    model = ScriptedModel([tool_call("price", sku="a"), "10.0 it is"])
    clerk = LLMAgent(
        "clerk",
        model=model,
        instructions="Price it.",
        tools=[price, lookup],
        settings=ModelSettings(tool_choice="price", max_tokens=50),
    )
    result = await rt.run(clerk, "price of a?")
    assert result.ok, result.error
    first, second = (c.settings for c in model.calls)
    assert first is not None and first.tool_choice == "price"
    assert second is not None and second.tool_choice is None and second.max_tokens == 50
    model.assert_consumed()


def test_tool_choice_is_checked_against_the_tools() -> None:
    with pytest.raises(UsageError, match=r"tool_choice='refund' is not 'auto'.*lookup, price"):
        LLMAgent(
            "x",
            model="scripted",
            instructions="x",
            tools=[price, lookup],
            settings=ModelSettings(tool_choice="refund"),
        )
    with pytest.raises(UsageError, match="tool_choice='required' but the agent has no tools"):
        LLMAgent(
            "x", model="scripted", instructions="x", settings=ModelSettings(tool_choice="required")
        )


async def test_parallel_tool_calls_run_concurrently_in_a_stable_order(rt: Runtime) -> None:
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    @tool
    async def slow(name: str) -> str:
        """Waits until the other call has started too: deadlocks when run one by one."""
        started[name].set()
        other = "b" if name == "a" else "a"
        async with asyncio.timeout(5):
            await started[other].wait()
        if name == "a":  # a finishes last; its result still goes back first
            await asyncio.sleep(0.01)
        return f"done {name}"

    model = ScriptedModel([[tool_call("slow", name="a"), tool_call("slow", name="b")], "ok"])
    agent = LLMAgent("pair", model=model, instructions="x", tools=[slow])
    result = await rt.run(agent, "go")
    assert result.ok, result.error
    replies = model.calls[1].messages[3:]
    assert [(m.tool_call_id, m.content) for m in replies] == [
        ("call_1_0", "done a"),
        ("call_1_1", "done b"),
    ]
    events = await rt.events(result.run_id)
    done = {e.key: e.seq for e in events if e.kind == "step.completed"}
    assert done["/pair/slow#1"] < done["/pair/slow#0"]  # b finished first; keys by model order


async def test_a_failing_parallel_tool_fails_the_agent_with_its_own_error(rt: Runtime) -> None:
    @tool
    async def boom(n: int) -> int:
        """Fails for n=2."""
        if n == 2:
            raise ValueError("no such thing as 2")
        await asyncio.sleep(0.01)
        return n

    model = ScriptedModel([[tool_call("boom", n=1), tool_call("boom", n=2)]])
    result = await rt.run(LLMAgent("fan", model=model, instructions="x", tools=[boom]), "go")
    assert isinstance(result.exception, StepError)
    assert result.exception.step == "/fan/boom#1"
    assert "no such thing as 2" in str(result.exception)
