"""Item batching: a batchable LLMAgent answers items that arrive together in one model call;
each item stays its own journaled step (resume, budgets, cache), a failed item is asked again
alone, and what each item cost adds up to the calls made."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Batch,
    Budget,
    BudgetExceededError,
    LLMAgent,
    Message,
    ModelResponse,
    OutputSchema,
    ProviderError,
    Retry,
    RunContext,
    Runtime,
    ScriptedModel,
    ToolSpec,
    Usage,
    UsageError,
    agent,
    tool,
)

INSTRUCTIONS = "Triage the ticket: its category, and whether it is urgent. " * 20
ITEM = re.compile(r"^Item (\d+):\n(.*?)(?=\n\nItem \d+:\n|\Z)", re.S | re.M)


class Triage(BaseModel):
    category: str
    urgent: bool


def triage_of(ticket: str) -> dict[str, Any]:
    return {"category": ticket.split()[0], "urgent": "now" in ticket}


def tokens(messages: Sequence[Message]) -> int:
    return sum(len(m.content) // 4 + 4 for m in messages)


class Desk:
    """A model that answers one ticket or a numbered batch of them, and counts its calls;
    `leave_out` and `garble` spoil the batch answer for some tickets."""

    def __init__(
        self,
        leave_out: frozenset[str] = frozenset(),
        garble: frozenset[str] = frozenset(),
        down: set[str] | None = None,
    ) -> None:
        self.leave_out, self.garble = leave_out, garble
        self.down = down if down is not None else set()
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.model = ScriptedModel(self.answer, name="gpt-4o")

    def answer(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        user = messages[-1].content
        if schema is not None and schema.name.endswith("_batch"):
            items = [(int(n), text) for n, text in ITEM.findall(user)]
            self.batches.append([t for _, t in items])
            out = []
            for n, text in items:
                if text in self.leave_out:
                    continue
                value: Any = "not a triage" if text in self.garble else triage_of(text)
                out.append({"item": n, "output": value})
            said = json.dumps({"items": out})
        else:
            self.alone.append(user)
            if user in self.down:
                raise ProviderError("overloaded")
            said = json.dumps(triage_of(user))
        usage = Usage(tokens(messages), len(said) // 4, 1)
        return ModelResponse(text=said, usage=usage, finish_reason="stop")


def triage_agent(desk: Desk, batchable: Any = 4) -> LLMAgent:
    return LLMAgent(
        "triage",
        model=desk.model,
        instructions=INSTRUCTIONS,
        output_type=Triage,
        batchable=batchable,
    )


def mapper(triage: LLMAgent) -> Any:
    @agent(name="inbox")
    async def inbox(tickets: list[str], ctx: RunContext) -> list[Any]:
        return await ctx.map(triage, tickets)

    return inbox


TICKETS = [
    f"{word} ticket {i}" + (" now" if i % 3 == 0 else "")
    for i, word in enumerate(
        [
            "billing",
            "shipping",
            "returns",
            "account",
            "billing",
            "technical",
            "shipping",
            "returns",
            "account",
            "billing",
        ]
    )
]


async def test_items_that_arrive_together_share_model_calls_each_its_own_step() -> None:
    desk = Desk()
    rt = Runtime("memory://", prices={"gpt-4o": {"input": 2.5, "output": 10.0}})
    result = await rt.run(mapper(triage_agent(desk)), TICKETS)
    assert result.ok, result.error
    assert result.output == [Triage(**triage_of(t)) for t in TICKETS]
    assert [len(b) for b in desk.batches] == [4, 4, 2] and desk.alone == []
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    items = [steps[f"/inbox/triage#{i}/model#0"] for i in range(10)]
    assert all(s.status == "completed" and s.attempt == 1 for s in items)
    assert [s.output.output for s in items] == [triage_of(t) for t in TICKETS]
    # what the items cost adds up to the three calls made
    calls = [c for c in desk.model.calls]
    made = sum((Usage(tokens(c.messages), 0, 1) for c in calls), Usage())
    assert sum(s.usage.input_tokens for s in items) == made.input_tokens
    assert sum(s.usage.requests for s in items) == 3 == result.usage.requests
    assert result.usage.input_tokens == made.input_tokens
    assert result.usage.usd == pytest.approx(
        (result.usage.input_tokens * 2.5 + result.usage.output_tokens * 10.0) / 1e6
    )


async def test_batching_sends_the_instructions_once_per_batch() -> None:
    one_by_one, batched = Desk(), Desk()
    rt = Runtime("memory://")
    alone = await rt.run(mapper(triage_agent(one_by_one, batchable=None)), TICKETS[:8])
    together = await rt.run(mapper(triage_agent(batched, batchable=8)), TICKETS[:8])
    assert alone.output == together.output
    assert (alone.usage.requests, together.usage.requests) == (8, 1)
    assert together.usage.total_tokens < 0.25 * alone.usage.total_tokens  # ~78% fewer


async def test_calls_from_many_runs_at_once_share_a_call() -> None:
    desk = Desk()
    triage = triage_agent(desk, batchable=Batch(size=8, window=0.05))
    rt = Runtime("memory://")
    results = await asyncio.gather(*(rt.run(triage, t) for t in TICKETS[:8]))
    assert [r.output for r in results] == [Triage(**triage_of(t)) for t in TICKETS[:8]]
    assert len(desk.batches) == 1 and sorted(desk.batches[0]) == sorted(TICKETS[:8])
    assert sum(r.usage.requests for r in results) == 1


async def test_an_item_the_batch_got_wrong_is_asked_again_alone() -> None:
    left_out, garbled = TICKETS[1], TICKETS[2]
    desk = Desk(leave_out=frozenset({left_out}), garble=frozenset({garbled}))
    rt = Runtime("memory://", retry=NO_RETRY)
    result = await rt.run(mapper(triage_agent(desk)), TICKETS[:4])
    assert result.ok, result.error
    assert result.output == [Triage(**triage_of(t)) for t in TICKETS[:4]]
    assert len(desk.batches) == 1 and desk.alone == [left_out, garbled]
    solo = {
        e.key: e.data["problem"] for e in await rt.events(result.run_id) if e.kind == "batch.solo"
    }
    assert solo == {
        "/inbox/triage#1/model#0": "the batch's answer has no output for item 2",
        "/inbox/triage#2/model#0": solo["/inbox/triage#2/model#0"],
    }
    assert solo["/inbox/triage#2/model#0"].startswith("item 3: the JSON does not fit the schema")
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/inbox/triage#1/model#0"].usage.requests == 1  # its share + its own call
    assert result.usage.requests == 3


async def test_a_failed_request_is_retried_item_by_item() -> None:
    calls = 0

    def flaky(messages: Sequence[Message], tools: Any, schema: OutputSchema | None) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return ProviderError("overloaded")
        return json.dumps(triage_of(messages[-1].content))

    model = ScriptedModel(flaky, name="gpt-4o")
    triage = LLMAgent("triage", model=model, instructions="T.", output_type=Triage, batchable=4)
    rt = Runtime("memory://", retry=Retry(attempts=2, initial_delay=0))
    result = await rt.run(mapper(triage), TICKETS[:3])
    assert result.ok and calls == 4  # the batch, then each item alone
    retried = [e.key for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert sorted(retried) == [f"/inbox/triage#{i}/model#0" for i in range(3)]


async def test_each_item_is_journaled_so_a_resume_asks_only_what_is_missing(
    tmp_path: Path,
) -> None:
    """One item's lone retry fails, so the run fails; the resumed run replays every item that
    was answered and asks only for the one that was not."""
    bad = TICKETS[2]
    desk = Desk(leave_out=frozenset({bad}), down={bad})
    triage = triage_agent(desk)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(store, retry=NO_RETRY) as rt:
        failed = await rt.run(mapper(triage), TICKETS[:4], target=None)
        assert failed.status == "failed" and "overloaded" in str(failed.error)
        assert len(desk.batches) == 1 and desk.alone == [bad]
    desk.down.clear()
    async with Runtime(store, retry=NO_RETRY) as rt:
        again = await rt.resume(failed.run_id, mapper(triage))
        assert again.ok and again.output == [Triage(**triage_of(t)) for t in TICKETS[:4]]
        replayed = {e.key for e in await rt.events(failed.run_id) if e.kind == "step.replayed"}
    assert {f"/inbox/triage#{i}" for i in (0, 1, 3)} <= replayed
    assert desk.batches[1:] == [[bad]]  # only the missing item was asked again


async def test_a_budget_refuses_items_before_they_join_a_batch() -> None:
    desk = Desk()
    triage = triage_agent(desk)

    @agent(name="twice")
    async def twice(tickets: list[str], ctx: RunContext) -> list[Any]:
        first = await ctx.map(triage, tickets)
        return [first, await ctx.map(triage, list(reversed(tickets)))]

    rt = Runtime("memory://")
    result = await rt.run(twice, TICKETS[:4], budget=Budget(model_calls=4))
    assert isinstance(result.exception, BudgetExceededError)
    assert len(desk.batches) == 1  # the second batch never went out


async def test_cached_items_are_not_asked_again() -> None:
    desk = Desk()
    triage = LLMAgent(
        "triage", model=desk.model, instructions="T.", output_type=Triage, batchable=4, cache=True
    )
    rt = Runtime("memory://")
    first = await rt.run(mapper(triage), TICKETS[:4])
    again = await rt.run(mapper(triage), TICKETS[:4])
    assert again.output == first.output and len(desk.batches) == 1
    assert again.usage == Usage()


async def test_text_answers_batch_too() -> None:
    def answer(messages: Sequence[Message], tools: Any, schema: OutputSchema | None) -> Any:
        items = ITEM.findall(messages[-1].content)
        assert schema is not None and schema.schema["properties"]["items"]["items"]["properties"][
            "output"
        ] == {"type": "string"}
        return {"items": [{"item": int(n), "output": text.upper()} for n, text in items]}

    model = ScriptedModel(answer, name="m")
    shout = LLMAgent("shout", model=model, instructions="Shout it.", batchable=True)
    result = await Runtime("memory://").run(mapper(shout), ["a", "b", "c"])
    assert result.output == ["A", "B", "C"] and len(model.calls) == 1


def test_batchable_needs_no_tools_and_a_sensible_size() -> None:
    @tool
    def lookup(order: int) -> str:
        """Look it up."""
        return "x"

    with pytest.raises(UsageError, match="a batchable agent answers each item in one model"):
        LLMAgent("a", model="scripted", instructions="x", tools=[lookup], batchable=True)
    with pytest.raises(UsageError, match=r"Batch\(size=...\) must be an int from 2 to 1,000"):
        LLMAgent("a", model="scripted", instructions="x", batchable=1)
    with pytest.raises(UsageError, match="batchable must be True, a number of items"):
        LLMAgent("a", model="scripted", instructions="x", batchable="yes")


async def test_a_streamed_run_sees_each_items_text() -> None:
    desk = Desk()
    rt = Runtime("memory://")
    stream = rt.stream(mapper(triage_agent(desk)), TICKETS[:3])
    texts: dict[str, str] = {}
    async for event in stream:
        if event.kind == "model.delta":
            texts[event.key] = texts.get(event.key, "") + event.data["text"]
    result = await stream.result()
    journal = {s.key: s.output.text for s in await rt.steps(result.run_id) if s.kind == "model"}
    assert texts == journal and len(texts) == 3 and len(desk.batches) == 1
