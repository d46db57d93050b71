"""Handoff: Python agents returning `HandoffTo`, LLM agents calling transfer tools, typed
payloads checked at the door, context for receivers, limits, and durable resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    HandoffTypeError,
    LLMAgent,
    Retry,
    RunResult,
    RunStatus,
    Runtime,
    StepError,
    UsageError,
    agent,
    tool_call,
)
from podium.models.scripted import ScriptedModel
from podium.patterns.handoff import (
    Handoff,
    HandoffInput,
    HandoffResult,
    HandoffTo,
    MaxHandoffsExceededError,
    PingPongDetectedError,
    TransferTool,
)
from podium.runtime.budget import Budget


class Ticket(BaseModel):
    text: str


class BillingRequest(BaseModel):
    order_id: int
    issue: str


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def cause(result: RunResult) -> BaseException | None:
    error = result.exception
    return error.cause if isinstance(error, StepError) else error


@agent
def triage(ticket: Ticket) -> str | HandoffTo:
    if "invoice" in ticket.text:
        return HandoffTo("billing", payload={"order_id": 7, "issue": ticket.text}, note="money")
    if "crash" in ticket.text:
        return HandoffTo("tech", note="a bug")  # no payload: the ticket goes on as is
    return "answered by triage"


@agent
def billing(req: BillingRequest) -> str:
    return f"refund issued for order {req.order_id}"


@agent
def tech(ticket: Ticket) -> str:
    return f"tech looked at: {ticket.text}"


def support(**kwargs: Any) -> Handoff:
    return Handoff(
        "support",
        agents=[triage, billing, tech],
        start=triage,
        routes={"triage": ["billing", "tech"]},
        **kwargs,
    )


async def events(rt: Runtime, run_id: str) -> list[dict[str, Any]]:
    return [
        {"kind": e.kind, **(e.data or {})}
        for e in await rt.events(run_id)
        if e.kind.startswith("handoff.")
    ]


# python agents -----------------------------------------------------------------------------


async def test_python_agent_hands_off_with_a_typed_payload(rt: Runtime) -> None:
    result = await rt.run(support(), {"text": "wrong invoice"})
    assert result.ok, result.error
    out: HandoffResult = result.output
    assert out.output == "refund issued for order 7" and out.agent == "billing"
    assert (out.status, out.turns, out.gaps) == ("completed", 2, {})
    assert out.handoffs == 1 and out.hops[0].note == "money"
    assert out.hops[0].payload == {"order_id": 7, "issue": "wrong invoice"}
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/support", "/support/triage#0", "/support/billing#0"]
    assert await events(rt, result.run_id) == [
        {
            "kind": "handoff.transfer",
            "hop": 1,
            "sender": "triage",
            "receiver": "billing",
            "note": "money",
            "payload": {"order_id": 7, "issue": "wrong invoice"},
        },
        {
            "kind": "handoff.stop",
            "status": "completed",
            "reason": "answered by 'billing'",
            "turns": 2,
            "agent": "billing",
            "handoffs": 1,
        },
    ]


async def test_no_payload_passes_the_original_input_on(rt: Runtime) -> None:
    out = (await rt.run(support(), {"text": "app crash"})).output
    assert out.output == "tech looked at: app crash" and out.agent == "tech"
    out = (await rt.run(support(), {"text": "hello"})).output
    assert out.output == "answered by triage" and out.hops == []


async def test_wrong_payload_names_both_agents_and_the_field(rt: Runtime) -> None:
    @agent(name="triage")
    def sloppy(ticket: Ticket) -> HandoffTo:
        return HandoffTo("billing", payload={"order_id": "seven", "issue": "x"})

    flow = Handoff("support", [sloppy, billing], routes={"triage": ["billing"]})
    result = await rt.run(flow, {"text": "invoice"})
    assert result.status == RunStatus.FAILED
    error = cause(result)
    assert isinstance(error, HandoffTypeError)
    assert error.sender == "triage" and error.receiver == "billing"
    assert "field 'order_id'" in str(error)


async def test_receivers_without_a_type_get_the_context_so_far(rt: Runtime) -> None:
    seen: list[HandoffInput] = []

    @agent
    def first(text: str) -> HandoffTo:
        return HandoffTo("second", payload={"summary": "short"}, note="over to you")

    @agent
    def second(ctx_in: HandoffInput) -> HandoffTo:
        seen.append(ctx_in)
        return HandoffTo("third", note="one more")

    @agent
    def third(anything):  # type: ignore[no-untyped-def]  # untyped: receives HandoffInput
        seen.append(anything)
        return "done"

    flow = Handoff("h", [first, second, third], ping_pong=5)
    out = (await rt.run(flow, "the question")).output
    assert out.output == "done" and out.agent == "third"
    assert seen[0].input == "the question" and seen[0].payload == {"summary": "short"}
    assert seen[0].sender == "first" and [h.receiver for h in seen[0].hops] == ["second"]
    assert isinstance(seen[1], HandoffInput)
    assert [(h.sender, h.note) for h in seen[1].hops] == [
        ("first", "over to you"),
        ("second", "one more"),
    ]


async def test_handing_off_outside_the_routes_is_an_error(rt: Runtime) -> None:
    @agent(name="billing")
    def rogue(req: BillingRequest) -> HandoffTo:
        return HandoffTo("tech")

    flow = Handoff("support", [triage, rogue, tech], routes={"triage": ["billing", "tech"]})
    result = await rt.run(flow, {"text": "invoice"})
    assert result.status == RunStatus.FAILED
    assert "agent 'billing' handed off to 'tech', which it may not; it may hand off to nobody" in (
        str(result.error)
    )


# limits ------------------------------------------------------------------------------------


def passer(name: str, to: str) -> Any:
    def fn(x: Any) -> HandoffTo:
        return HandoffTo(to, note=f"{name} passes")

    return agent(name=name)(fn)


async def test_ping_pong_ends_the_run(rt: Runtime) -> None:
    flow = Handoff("loop", [passer("a", "b"), passer("b", "a")])
    result = await rt.run(flow, "x")
    assert result.status == RunStatus.FAILED
    error = cause(result)
    assert isinstance(error, PingPongDetectedError)
    assert error.path == ["a", "b", "a", "b"]
    assert "'a' and 'b' keep handing the work back and forth (a -> b -> a -> b)" in str(error)
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/loop", "/loop/a#0", "/loop/b#0", "/loop/a#1"]  # b is not asked again
    stop = (await events(rt, result.run_id))[-1]
    assert stop["kind"] == "handoff.stop" and stop["status"] == "stalled"
    assert stop["path"] == ["a", "b", "a", "b"]


async def test_max_turns_ends_a_longer_cycle(rt: Runtime) -> None:
    flow = Handoff("ring", [passer("a", "b"), passer("b", "c"), passer("c", "a")], max_turns=5)
    result = await rt.run(flow, "x")
    error = cause(result)
    assert isinstance(error, MaxHandoffsExceededError)
    assert error.path == ["a", "b", "c", "a", "b", "c"]
    assert "max_turns=5 turns ran and the work was handed on again" in str(error)
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert len(keys) == 6  # the handoff and its five turns: c is not asked a second time
    stop = (await events(rt, result.run_id))[-1]
    assert stop["kind"] == "handoff.stop" and stop["status"] == "max_turns"


async def test_a_deadline_or_a_spent_budget_ends_the_run_naming_who_has_the_work() -> None:
    transfer = tool_call("transfer_to_billing", payload={"order_id": 1, "issue": "x"})
    model = ScriptedModel([transfer, transfer])  # desk's second transfer is refused
    desk = LLMAgent("desk", model=model, instructions="Route.")

    @agent
    def billing(req: BillingRequest) -> HandoffTo:
        return HandoffTo("desk", note="back to you")

    budgeted = Runtime("memory://", retry=NO_RETRY)
    flow = Handoff(
        "support",
        [desk, billing],
        routes={"desk": ["billing"], "billing": ["desk"]},
        budget=Budget(model_calls=2),
    )
    out: HandoffResult = (await budgeted.run(flow, "refund")).output
    assert (out.status, out.agent, out.output, out.turns) == ("budget_exhausted", "desk", None, 2)
    assert out.gaps == {"desk": "not finished (budget_exhausted)"}
    assert [(h.sender, h.receiver) for h in out.hops] == [("desk", "billing"), ("billing", "desk")]


def test_the_renamed_max_handoffs_still_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"Handoff\(max_handoffs=...\) is deprecated"):
        flow = Handoff("ring", [passer("a", "b"), passer("b", "a")], max_handoffs=4)
    assert flow.max_turns == 5  # the first agent's turn, then one per transfer
    with pytest.warns(DeprecationWarning, match="Handoff.max_handoffs is deprecated"):
        assert flow.max_handoffs == 4


# LLM agents --------------------------------------------------------------------------------


async def test_llm_agent_hands_off_through_a_transfer_tool(rt: Runtime) -> None:
    model = ScriptedModel(
        [
            tool_call("transfer_to_billing", payload={"order_id": "x"}, note="billing issue"),
            tool_call(
                "transfer_to_billing", payload={"order_id": 42, "issue": "double charge"}, note="$"
            ),
        ]
    )
    desk = LLMAgent("triage", model=model, instructions="Route the customer.")
    flow = Handoff(
        "support",
        [desk, billing, tech],
        routes={"triage": ["billing", "tech"]},
        retry=None,
    )
    runtime = Runtime("memory://", retry=Retry(attempts=2, initial_delay=0))
    result = await runtime.run(flow, "I was charged twice")
    assert result.ok, result.error
    assert result.output.output == "refund issued for order 42"
    assert result.output.hops[0].payload == {"order_id": 42, "issue": "double charge"}
    model.assert_consumed()  # the malformed payload was sent back: asked twice
    tools = {t.name: t for t in model.calls[0].tools}
    assert set(tools) == {"transfer_to_billing", "transfer_to_tech"}
    schema = tools["transfer_to_billing"].parameters
    assert "order_id" in str(schema) and "note" in schema["properties"]
    assert "transfer_to_tech" in model.calls[0].messages[0].content
    assert desk.tools == {}  # the agent itself is not changed
    keys = [s.key for s in await runtime.steps(result.run_id)]
    assert "/support/triage#0/transfer_to_billing#0" in keys


async def test_llm_receiver_sees_the_handoff_context(rt: Runtime) -> None:
    model = ScriptedModel(["I can help with that refund."])
    helper = LLMAgent("helper", model=model, instructions="Help.")

    @agent
    def front(text: str) -> HandoffTo:
        return HandoffTo("helper", note="needs a refund")

    out = (await rt.run(Handoff("h", [front, helper]), "order 9 arrived broken")).output
    assert out.output == "I can help with that refund." and out.agent == "helper"
    received = HandoffInput.model_validate_json(model.calls[0].messages[-1].content)
    assert received.input == "order 9 arrived broken" and received.note == "needs a refund"
    assert received.hops[0].sender == "front"


def test_transfer_tool_schema_for_typed_and_untyped_receivers() -> None:
    typed = TransferTool(billing)
    assert typed.name == "transfer_to_billing"
    assert typed.parameters["required"] == ["payload"]
    args = typed.check_input({"payload": {"order_id": "3", "issue": "x"}})
    assert args["payload"] == BillingRequest(order_id=3, issue="x") and args["note"] == ""
    loose = TransferTool(LLMAgent("a.b", model="scripted", instructions="x"))
    assert loose.name == "transfer_to_a_b" and "required" not in loose.parameters


# durability --------------------------------------------------------------------------------


async def test_resume_replays_the_transfer_without_asking_the_model_again(
    tmp_path: Path,
) -> None:
    model = ScriptedModel(
        [tool_call("transfer_to_billing", payload={"order_id": 5, "issue": "late"})]
    )
    desk = LLMAgent("triage", model=model, instructions="Route.")
    calls: Counter[str] = Counter()
    down = {"billing": True}

    @agent(name="billing")
    def flaky_billing(req: BillingRequest) -> str:
        calls["billing"] += 1
        if down["billing"]:
            raise ConnectionError("billing system down")
        return f"credited order {req.order_id}"

    flow = Handoff("support", [desk, flaky_billing], routes={"triage": ["billing"]})
    url = f"sqlite:///{tmp_path / 'handoff.db'}"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(flow, "my parcel is late")
        assert first.status == RunStatus.FAILED and "billing system down" in str(first.error)
    down["billing"] = False
    async with Runtime(url, retry=NO_RETRY) as rt:
        done = await rt.resume(first.run_id, flow)
        assert done.ok, done.error
        assert done.output.output == "credited order 5"
        assert done.output.hops[0].receiver == "billing"
        assert len(model.calls) == 1 and calls["billing"] == 2
        replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
        assert replayed == ["/support/triage#0"]


# configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "nobody"}, "start 'nobody' is not one of"),
        ({"routes": {"zed": ["billing"]}}, "routes name 'zed'"),
        ({"routes": {"triage": ["zed"]}}, "'triage' may hand off to 'zed', which is not"),
        ({"routes": {"triage": ["triage"]}}, "may not hand off to itself"),
        ({"routes": {"triage": "billing"}}, "must be a list of agents"),
        ({"max_turns": 0}, "max_turns must be a positive integer"),
        ({"deadline": 0}, "deadline must be a positive number of seconds"),
        ({"ping_pong": 0}, "ping_pong must be a positive integer"),
    ],
)
def test_bad_configuration_is_a_usage_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match="Handoff 'h'") as info:
        Handoff("h", [triage, billing, tech], **kwargs)
    assert message in str(info.value)


def test_duplicate_agents_are_refused() -> None:
    with pytest.raises(UsageError, match="two agents are named 'billing'"):
        Handoff("h", [billing, billing])
