"""`Runtime.stream`: a run's events as they happen, model text as `model.delta` events that
reach the reader only (never the store), and a reader that cannot hold the run up."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Event,
    HumanApproval,
    LLMAgent,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ProviderError,
    Retry,
    Router,
    RunError,
    RunStatus,
    RunStream,
    Runtime,
    ScriptedModel,
    Sequential,
    UnknownRunError,
    UsageError,
    agent,
    tool,
    tool_call,
)
from podium.core.tools import ToolSpec
from podium.models.base import Message, ModelSettings, OutputSchema
from podium.patterns.supervisor import Plan, Subtask, Supervisor

FINAL = {"run.completed", "run.failed", "run.waiting", "run.cancelled", "run.parked"}


async def drain(stream: RunStream) -> list[Event]:
    return [event async for event in stream]


def texts(events: Sequence[Event]) -> dict[str, str]:
    """The text each step streamed, by step key: the deltas after the step's last retry."""
    out: dict[str, str] = defaultdict(str)
    for e in events:
        if e.kind == "step.retried":
            out.pop(e.key, None)
        elif e.kind == "model.delta":
            assert e.data is not None
            out[e.key] += e.data["text"]
    return dict(out)


async def journaled_text(rt: Runtime, run_id: str) -> dict[str, str]:
    """Every model step's journaled answer text, by step key."""
    return {
        s.key: (s.output["text"] if isinstance(s.output, dict) else s.output.text)
        for s in await rt.steps(run_id)
        if s.kind == "model"
    }


async def test_a_stream_yields_deltas_and_steps_then_ends_with_the_run(tmp_path: Path) -> None:
    story = "Once upon a time a tide followed the moon all the way home."
    writer = LLMAgent("writer", model=ScriptedModel([story], chunk=8), instructions="Write.")
    rt = Runtime(f"sqlite:///{tmp_path / 'runs.db'}")
    stream = rt.stream(writer, "a story", run_id="s1")
    assert stream.run_id == "s1"
    events = await drain(stream)
    result = await stream.result()
    assert result.status == RunStatus.COMPLETED and result.output == story

    kinds = [e.kind for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    deltas = [e for e in events if e.kind == "model.delta"]
    assert [e.data["text"] for e in deltas if e.data] == [
        story[i : i + 8] for i in range(0, len(story), 8)
    ]
    assert {(e.key, e.agent, e.attempt, e.run_id) for e in deltas} == {
        ("/writer/model#0", "model", 1, "s1")
    }
    # every delta arrives between its step's start and its completion
    started = kinds.index("step.started", kinds.index("step.started") + 1)  # the model's
    assert events[started].key == "/writer/model#0"
    done = next(i for i, e in enumerate(events) if e.kind == "step.completed")
    assert events[done].key == "/writer/model#0"
    assert all(started < events.index(d) < done for d in deltas)

    assert texts(events) == await journaled_text(rt, "s1") == {"/writer/model#0": story}
    stored = await rt.events("s1")  # deltas go to the reader only, never to the store
    assert "model.delta" not in {e.kind for e in stored}
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert [e.kind for e in stored] == [k for k in kinds if k != "model.delta"]
    await rt.close()


class Verdict(BaseModel):
    refund: bool
    reason: str


async def test_streamed_text_equals_the_journal_with_tools_reasks_and_structured_output() -> None:
    @tool
    def lookup(order: int) -> str:
        """The order's state."""
        return "arrived broken"

    model = ScriptedModel(
        [
            tool_call("lookup", order=7),  # a tool-call turn: no text to stream
            "I think they should get their money back.",  # not JSON: sent back
            {"refund": True, "reason": "arrived broken"},  # the JSON streams
        ],
        chunk=5,
    )
    judge = LLMAgent(
        "judge", model=model, instructions="Decide.", tools=[lookup], output_type=Verdict
    )
    rt = Runtime("memory://")
    stream = rt.stream(judge, "refund order 7?")
    events = await drain(stream)
    result = await stream.result()
    assert result.output == Verdict(refund=True, reason="arrived broken")

    journal = await journaled_text(rt, result.run_id)
    assert list(journal) == ["/judge/model#0", "/judge/model#1", "/judge/model#2"]
    streamed = texts(events)
    assert "/judge/model#0" not in streamed and journal["/judge/model#0"] == ""
    assert streamed == {k: v for k, v in journal.items() if v}
    assert streamed["/judge/model#2"] == '{"refund":true,"reason":"arrived broken"}'
    kinds = [(e.kind, e.key) for e in events]
    assert ("step.completed", "/judge/lookup#0") in kinds  # tools stream as their steps
    assert ("model.reask", "/judge") in kinds


class Counting:
    """A streaming model that says which way it was asked."""

    name = "counting"

    def __init__(self) -> None:
        self.responded = 0
        self.streamed = 0

    async def respond(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output_schema: OutputSchema | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        self.responded += 1
        return ModelResponse(text="whole", finish_reason="stop")

    async def stream(self, messages: Sequence[Message], **options: Any) -> AsyncIterator[Any]:
        self.streamed += 1
        yield ModelDelta("who")
        yield ModelDelta("le")
        yield ModelDone(ModelResponse(text="whole", finish_reason="stop"))


async def test_a_model_streams_only_when_someone_reads() -> None:
    model = Counting()
    speaker = LLMAgent("speaker", model=model, instructions="Speak.")
    rt = Runtime("memory://")
    seen: list[Event] = []
    rt.subscribe(seen.append)  # a runtime listener is not a reader of deltas
    assert (await rt.run(speaker, "hi")).output == "whole"
    assert (model.responded, model.streamed) == (1, 0)
    assert "model.delta" not in {e.kind for e in seen}
    events = await drain(rt.stream(speaker, "hi"))
    assert (model.responded, model.streamed) == (1, 1)
    assert [e.data["text"] for e in events if e.kind == "model.delta" and e.data] == ["who", "le"]
    assert "model.delta" not in {e.kind for e in seen}


async def test_a_reader_that_does_not_read_cannot_hold_the_run() -> None:
    text = "".join(f"{i % 10}" for i in range(3000))
    writer = LLMAgent("writer", model=ScriptedModel([text], chunk=1), instructions="Write.")
    rt = Runtime("memory://")
    stream = rt.stream(writer, "go")
    result = await asyncio.wait_for(stream.result(), 30)  # nobody read a single event
    assert result.output == text
    events = await drain(stream)  # what waited: 3000 deltas folded into fewer, none lost
    deltas = [e for e in events if e.kind == "model.delta"]
    assert len(events) <= RunStream.BUFFER + 10
    assert len(deltas) < len(text)
    assert texts(events) == {"/writer/model#0": text}
    assert events[-1].kind == "run.completed"


class FlakyStream:
    """Streams half an answer and breaks off the first time; answers whole the second."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    async def respond(self, messages: Sequence[Message], **options: Any) -> ModelResponse:
        raise AssertionError("a reader is there: the model must be streamed")

    async def stream(self, messages: Sequence[Message], **options: Any) -> AsyncIterator[Any]:
        self.calls += 1
        yield ModelDelta("The answer ")
        if self.calls == 1:
            raise ProviderError("connection reset mid-stream")
        yield ModelDelta("is 42.")
        yield ModelDone(ModelResponse(text="The answer is 42.", finish_reason="stop"))


async def test_a_retried_model_step_streams_again_and_says_which_attempt() -> None:
    quick = Retry(attempts=2, initial_delay=0, jitter=False)
    oracle = LLMAgent("oracle", model=FlakyStream(), instructions="Answer.", retry=quick)
    rt = Runtime("memory://", retry=quick)
    stream = rt.stream(oracle, "?")
    events = await drain(stream)
    assert (await stream.result()).output == "The answer is 42."
    model = [(e.kind, e.attempt) for e in events if e.key == "/oracle/model#0"]
    assert [k for k in model if k[0] in ("model.delta", "step.retried")] == [
        ("model.delta", 1),
        ("step.retried", 1),
        ("model.delta", 2),
        ("model.delta", 2),
    ]
    assert texts(events) == await journaled_text(rt, (await stream.result()).run_id)


async def test_a_resumed_run_streams_replayed_steps_without_their_tokens() -> None:
    broken = {"on": True}

    @agent
    def checker(draft: str) -> str:
        if broken["on"]:
            raise ValueError("checker is down")
        return draft

    writer = LLMAgent("writer", model=ScriptedModel(["first draft"], chunk=4), instructions="W")
    editor = LLMAgent("editor", model=ScriptedModel(["final text"], chunk=4), instructions="E")
    flow = Sequential("flow", [writer, checker, editor], retry=NO_RETRY)
    rt = Runtime("memory://", retry=NO_RETRY)
    first = rt.stream(flow, "go")
    events = await drain(first)
    assert events[-1].kind == "run.failed"
    assert texts(events) == {"/flow/writer#0/model#0": "first draft"}

    broken["on"] = False
    again = rt.stream_resume(first.run_id, flow)
    assert again.run_id == first.run_id
    events = await drain(again)
    assert (await again.result()).output == "final text"
    assert events[0].kind == "run.resumed" and events[-1].kind == "run.completed"
    replayed = [e.key for e in events if e.kind == "step.replayed"]
    assert replayed == ["/flow/writer#0"]
    assert texts(events) == {"/flow/editor#0/model#0": "final text"}  # not the writer's again
    assert not any(e.key.startswith("/flow/writer#0") for e in events if e.kind != "step.replayed")


async def test_tokens_stream_through_nested_patterns() -> None:
    """A Router sends to a Supervisor whose worker is an LLMAgent: its tokens reach the
    reader of the top run, under the worker's own step key."""
    drafter = LLMAgent(
        "drafter", model=ScriptedModel(["Dear customer, sorry."], chunk=6), instructions="D"
    )
    plan = Plan(subtasks=[Subtask(id="d", worker="drafter", instruction="draft the reply")])
    boss = Supervisor.llm(
        "boss",
        {"drafter": drafter},
        model=ScriptedModel([plan.model_dump(), "Sent."], chunk=7),
        review=False,
    )
    front = Router.llm(
        "front",
        {"complaints": boss},
        model=ScriptedModel([{"route": "complaints", "confidence": 0.9}], chunk=9),
    )
    rt = Runtime("memory://")
    stream = rt.stream(front, "My kettle broke.")
    events = await drain(stream)
    result = await stream.result()
    assert result.ok, result.error
    streamed = texts(events)
    journal = await journaled_text(rt, result.run_id)
    assert streamed == journal
    kinds = [e.kind for e in events]  # the patterns' own events stream in their places
    assert kinds.index("route.decision") < kinds.index("supervisor.plan")
    assert kinds.index("supervisor.plan") < kinds.index(
        "model.delta", kinds.index("supervisor.plan")
    )
    (inner,) = [k for k in streamed if "/drafter#" in k]
    assert streamed[inner] == "Dear customer, sorry."
    assert inner.startswith("/front/boss#") and inner.endswith("/model#0")
    assert len([e for e in events if e.key == inner and e.kind == "model.delta"]) == 4


async def test_a_stream_ends_when_the_run_waits_or_is_cancelled() -> None:
    writer = LLMAgent("writer", model=ScriptedModel(["refund 12"]), instructions="W")
    flow = Sequential("flow", [writer, HumanApproval("ok")])
    rt = Runtime("memory://")
    stream = rt.stream(flow, "go")
    events = await drain(stream)
    assert events[-1].kind == "run.waiting"
    assert (await stream.result()).status == RunStatus.WAITING

    gate = asyncio.Event()

    @agent
    async def slow(text: str) -> str:
        gate.set()
        await asyncio.sleep(60)
        return text

    stream = rt.stream(slow, "x")
    seen: list[str] = []
    async for event in stream:
        seen.append(event.kind)
        if event.kind == "step.started":
            await gate.wait()
            await rt.cancel(stream.run_id)
    assert seen[-1] == "run.cancelled" and seen.count("run.cancelled") == 1
    assert (await stream.result()).status == RunStatus.CANCELLED


async def test_misuse_is_raised_before_anything_is_written() -> None:
    @agent
    def double(n: int) -> int:
        return 2 * n

    rt = Runtime("memory://")
    with pytest.raises(UsageError, match="input for agent 'double'"):
        rt.stream(double, "not a number")
    assert await rt.list_runs() == []
    missing = rt.stream_resume("nope")
    with pytest.raises(UnknownRunError):
        await drain(missing)
    with pytest.raises(UnknownRunError):
        await missing.result()


async def test_leaving_a_stream_early_interrupts_the_run_and_it_can_resume() -> None:
    text = "A long answer that the reader stops reading after its first piece."
    model = ScriptedModel([text, text], chunk=4)
    writer = LLMAgent("writer", model=model, instructions="W")
    rt = Runtime("memory://")
    async with rt.stream(writer, "go") as stream:
        async for event in stream:
            if event.kind == "model.delta":
                break
    record = await rt.get_run(stream.run_id)
    assert record.status == RunStatus.RUNNING  # interrupted, as if the process had stopped
    with pytest.raises(RunError, match="interrupted"):
        await stream.result()
    resumed = await rt.resume(stream.run_id, writer)
    assert resumed.output == text
