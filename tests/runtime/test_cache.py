"""The door's cache slot: opt-in per agent, model or tool; keyed on everything that decides the
answer; hits cost nothing, are events, are journaled (a resume replays them) and are served
under an exhausted budget; single flight; memory, SQLite and Redis stores."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Budget,
    Cache,
    Event,
    LLMAgent,
    Message,
    ModelResponse,
    ModelSettings,
    RunContext,
    Runtime,
    ScriptedModel,
    Sequential,
    ToolSpec,
    Usage,
    UsageError,
    agent,
    tool,
)
from podium.observability.cost import cost_report
from podium.observability.trace import build_trace, describe
from podium.runtime.cache import MemoryCache, RedisCache, SQLiteCache, open_cache

REDIS = "redis://127.0.0.1:6379/0"
CALL = Usage(1000, 100, 1)  # at gpt-4o: 1,000 x $2.50 + 100 x $10 per million = $0.0035
CALL_USD = 0.0035


def echo_model(name: str = "gpt-4o", **kwargs: Any) -> ScriptedModel:
    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> str:
        return f"answer to {messages[-1].content}"

    return ScriptedModel(answer, name=name, usage=CALL, **kwargs)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def cache_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'cache.db'}"
    return REDIS


@pytest.fixture
def redis_prefix() -> str:
    return f"podium:test:{uuid.uuid4().hex[:8]}:"


def make_cache(kind: str, tmp_path: Path, prefix: str) -> Any:
    if kind == "redis":
        return RedisCache(REDIS, prefix=prefix)
    return open_cache(cache_url(kind, tmp_path))


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
async def test_a_hit_costs_nothing_is_an_event_and_is_journaled(
    kind: str, tmp_path: Path, redis_prefix: str
) -> None:
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    async with Runtime("memory://", cache=make_cache(kind, tmp_path, redis_prefix)) as rt:
        first = await rt.run(clerk, "where is order 7?")
        second = await rt.run(clerk, "where is order 7?")
        assert first.ok and second.ok and second.output == first.output
        assert len(model.calls) == 1  # the second run never asked the model
        assert round(first.usage.usd, 10) == CALL_USD
        assert second.usage == Usage()  # cost 0, no tokens, no request
        hit = [e for e in await rt.events(second.run_id) if e.kind == "cache.hit"]
        assert len(hit) == 1 and hit[0].key == "/clerk/model#0"
        assert hit[0].data == {
            "source": "cache",
            "saved_usd": CALL_USD,
            "saved_tokens": 1100,
            "model": "gpt-4o",
        }
        (row,) = [s for s in await rt.steps(second.run_id) if s.kind == "model"]
        assert row.status == "completed" and row.attempt == 0 and row.usage is None
        assert row.output.text == "answer to where is order 7?"  # journaled like any answer


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_shared_store_serves_another_runtime(
    kind: str, tmp_path: Path, redis_prefix: str
) -> None:
    """SQLite and Redis outlive a runtime: another process (here another runtime with its own
    connection) gets the hit."""
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    async with Runtime("memory://", cache=make_cache(kind, tmp_path, redis_prefix)) as rt:
        assert (await rt.run(clerk, "hello")).usage.requests == 1
    async with Runtime("memory://", cache=make_cache(kind, tmp_path, redis_prefix)) as rt:
        again = await rt.run(clerk, "hello")
    assert again.ok and again.usage.requests == 0 and len(model.calls) == 1


async def test_the_key_covers_model_settings_messages_tools_and_schema() -> None:
    @tool
    def lookup(order: int) -> str:
        """Look an order up."""
        return "shipped"

    class Verdict(BaseModel):
        ok: bool

    model = echo_model()
    typed = ScriptedModel(lambda m, t, s: {"ok": True}, name="gpt-4o", usage=CALL)
    other = echo_model("gpt-4o-mini")
    variants = [
        LLMAgent("a", model=model, instructions="Answer.", cache=True),
        LLMAgent("a", model=model, instructions="Answer briefly.", cache=True),  # messages
        LLMAgent(
            "a",
            model=model,
            instructions="Answer.",
            cache=True,
            settings=ModelSettings(temperature=0.2),  # settings
        ),
        LLMAgent("a", model=model, instructions="Answer.", tools=[lookup], cache=True),  # tools
        LLMAgent("a", model=other, instructions="Answer.", cache=True),  # model
    ]
    rt = Runtime("memory://")
    for variant in variants:
        assert (await rt.run(variant, "hi")).usage.requests == 1
    assert (await rt.run(variants[0], "hello")).usage.requests == 1  # another input
    assert (await rt.run(variants[0], "hi")).usage.requests == 0  # the same as the first
    schema = LLMAgent("a", model=typed, instructions="Answer.", cache=True, output_type=Verdict)
    assert (await rt.run(schema, "hi")).usage.requests == 1  # the answer's schema
    assert len(model.calls) == 5 and len(other.calls) == 1


async def test_no_cache_unless_asked() -> None:
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.")
    rt = Runtime("memory://")
    await rt.run(clerk, "hi")
    await rt.run(clerk, "hi")
    assert len(model.calls) == 2 and len(rt.cache) == 0  # type: ignore[arg-type]


async def test_a_model_can_carry_its_own_cache() -> None:
    model = echo_model()
    model.cache = Cache(ttl=60)  # type: ignore[attr-defined]
    rt = Runtime("memory://")
    for name in ("one", "two"):  # two agents, one model: the same request is one answer
        await rt.run(LLMAgent(name, model=model, instructions="Answer."), "hi")
    assert len(model.calls) == 1


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_entries_expire_after_their_ttl(kind: str, tmp_path: Path) -> None:
    now = [1000.0]
    url = cache_url(kind, tmp_path)
    store = (
        MemoryCache(clock=lambda: now[0])
        if kind == "memory"
        else SQLiteCache(url, clock=lambda: now[0])
    )
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=Cache(ttl=60))
    async with Runtime("memory://", cache=store) as rt:
        await rt.run(clerk, "hi")
        now[0] += 59
        assert (await rt.run(clerk, "hi")).usage.requests == 0
        now[0] += 2
        assert (await rt.run(clerk, "hi")).usage.requests == 1
    assert len(model.calls) == 2


async def test_redis_entries_carry_their_ttl(redis_prefix: str) -> None:
    import redis.asyncio as aioredis

    clerk = LLMAgent("clerk", model=echo_model(), instructions="A.", cache=Cache(ttl=90))
    async with Runtime("memory://", cache=RedisCache(REDIS, prefix=redis_prefix)) as rt:
        await rt.run(clerk, "hi")
    client = aioredis.from_url(REDIS)
    try:
        keys = await client.keys(redis_prefix + "*")
        assert len(keys) == 1
        assert 0 < await client.pttl(keys[0]) <= 90_000
        await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
async def test_concurrent_identical_calls_share_one_request(
    kind: str, tmp_path: Path, redis_prefix: str
) -> None:
    """Single flight: ten runs of the same question at once make one model call; the model
    answers only once every run has reached its model step."""
    arrived: list[str] = []
    gate = asyncio.Event()
    calls = 0

    async def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "one answer"

    def on_event(event: Event) -> None:
        if event.kind == "step.started" and event.key.endswith("/model#0"):
            arrived.append(event.run_id)
            if len(arrived) == 10:
                gate.set()

    model = ScriptedModel(answer, name="gpt-4o", usage=CALL)
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    cache = make_cache(kind, tmp_path, redis_prefix)
    async with Runtime("memory://", cache=cache, on_event=on_event) as rt:
        results = await asyncio.gather(*(rt.run(clerk, "same question") for _ in range(10)))
        assert all(r.ok and r.output == "one answer" for r in results)
        assert calls == 1
        assert sorted(r.usage.requests for r in results) == [0] * 9 + [1]
        sources = []
        for r in results:
            sources += [
                e.data["source"] for e in await rt.events(r.run_id) if e.kind == "cache.hit"
            ]
        assert sources == ["in-flight"] * 9


async def test_when_the_first_call_fails_the_waiting_ones_ask_on_their_own() -> None:
    gate = asyncio.Event()
    answers = 0

    async def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], schema: Any) -> str:
        nonlocal answers
        answers += 1
        if answers == 1:
            await gate.wait()
            raise ConnectionError("the provider hung up")
        return "fine"

    def on_event(event: Event) -> None:
        if event.kind == "step.started" and event.key.endswith("/model#0") and not gate.is_set():
            waiting.append(event.run_id)
            if len(waiting) == 3:
                gate.set()

    waiting: list[str] = []
    model = ScriptedModel(answer, name="gpt-4o")
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    rt = Runtime("memory://", retry=NO_RETRY, on_event=on_event)
    results = await asyncio.gather(*(rt.run(clerk, "same") for _ in range(3)))
    assert sorted(str(r.status) for r in results) == ["completed", "completed", "failed"]
    assert answers == 2  # the two that waited: one asked, the other shared its answer


async def test_a_tool_is_cached_by_its_arguments() -> None:
    runs: list[int] = []

    @tool(cache=True)
    def lookup(order: int) -> str:
        """Look an order up."""
        runs.append(order)
        return f"order {order} shipped"

    @agent
    async def desk(orders: list[int], ctx: RunContext) -> list[str]:
        return [await ctx.use(lookup, {"order": o}) for o in orders]

    rt = Runtime("memory://")
    result = await rt.run(desk, [7, 8, 7, 7])
    assert result.output == ["order 7 shipped", "order 8 shipped"] + ["order 7 shipped"] * 2
    assert runs == [7, 8]
    hits = [e for e in await rt.events(result.run_id) if e.kind == "cache.hit"]
    assert [e.key for e in hits] == ["/desk/lookup#2", "/desk/lookup#3"]
    assert hits[0].data == {"source": "cache", "saved_usd": 0.0}


def test_an_effect_tool_cannot_be_cached() -> None:
    with pytest.raises(UsageError, match="'refund': a tool with an effect cannot be cached"):

        @tool(effect=True, cache=True)
        def refund(order: int) -> str:
            """Refund an order."""
            return "refunded"


def test_bad_cache_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"Cache\(ttl=...\) must be positive"):
        Cache(ttl=0)
    with pytest.raises(UsageError, match=r"agent .a.: cache must be True, False or a podium"):
        LLMAgent("a", model=echo_model(), instructions="x", cache="yes")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown cache URL 'mongo://x'"):
        Runtime("memory://", cache="mongo://x")


async def test_a_cached_answer_is_replayed_from_the_journal_on_resume(tmp_path: Path) -> None:
    """A hit is journaled as the step's output: the resumed run replays that step (no model
    call, no second hit), even from a fresh cache."""
    down = {"checker": True}

    @agent
    def checker(text: str) -> str:
        if down["checker"]:
            raise ConnectionError("checker is down")
        return text.upper()

    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    flow = Sequential("flow", [clerk, checker], retry=NO_RETRY)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    cache = f"sqlite:///{tmp_path / 'cache.db'}"
    async with Runtime(store, cache=cache, retry=NO_RETRY) as rt:
        await rt.run(clerk, "hi")  # fills the cache
        failed = await rt.run(flow, "hi")
        assert failed.status == "failed" and len(model.calls) == 1
        assert "cache.hit" in kinds(await rt.events(failed.run_id))
    down["checker"] = False
    async with Runtime(store, retry=NO_RETRY) as rt:  # another process: an empty cache
        again = await rt.resume(failed.run_id, flow)
        assert again.ok and again.output == "ANSWER TO HI"
        events = await rt.events(failed.run_id)
        replayed = [e.key for e in events if e.kind == "step.replayed"]
    assert "/flow/clerk#0" in replayed and len(model.calls) == 1
    assert kinds(events).count("cache.hit") == 1  # the one from before, none new


async def test_a_hit_is_served_under_an_exhausted_budget() -> None:
    """A hit spends nothing: the budget that stops new calls lets it through."""
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)

    @agent
    async def twice(question: str, ctx: RunContext) -> list[str]:
        return [await ctx.call(clerk, question), await ctx.call(clerk, question)]

    rt = Runtime("memory://")
    result = await rt.run(twice, "hi", budget=Budget(model_calls=1))
    assert result.ok, result.error
    assert result.output == ["answer to hi"] * 2 and len(model.calls) == 1
    assert "budget.exceeded" not in kinds(await rt.events(result.run_id))


async def test_trace_and_cost_show_hits_and_what_they_saved() -> None:
    model = echo_model()
    clerk = LLMAgent("clerk", model=model, instructions="Answer.", cache=True)
    rt = Runtime("memory://")
    await rt.run(clerk, "hi")
    second = await rt.run(clerk, "hi")
    steps, events = await rt.steps(second.run_id), await rt.events(second.run_id)
    (root,) = build_trace(steps, events)
    node = root.children[0]
    assert node.cached and round(node.saved_usd, 10) == CALL_USD
    assert "cached" in describe(node) and "saved $0.0035" in describe(node)
    report = cost_report(await rt.get_run(second.run_id), steps, events)
    assert report.cache_hits == 1 and round(report.saved_usd, 10) == CALL_USD
    assert report.to_dict()["saved_usd"] == CALL_USD and report.to_dict()["cache_hits"] == 1
    assert report.total.model_calls == 0 and report.usd == 0


async def test_a_streamed_hit_streams_its_text() -> None:
    clerk = LLMAgent("clerk", model=echo_model(), instructions="Answer.", cache=True)
    rt = Runtime("memory://")
    await rt.run(clerk, "hi")
    stream = rt.stream(clerk, "hi")
    deltas = [e.data["text"] async for e in stream if e.kind == "model.delta"]
    assert "".join(deltas) == (await stream.result()).output == "answer to hi"


async def test_the_key_covers_the_models_own_settings() -> None:
    class Tuned:
        """A model with settings of its own, as OpenAIModel and AnthropicModel have."""

        def __init__(self, temperature: float) -> None:
            self.name = "gpt-4o"
            self.settings = ModelSettings(temperature=temperature)
            self.calls = 0

        async def respond(self, messages: Any, **options: Any) -> ModelResponse:
            self.calls += 1
            return ModelResponse(text=f"t={self.settings.temperature}", usage=CALL)

    cold, hot, cold_again = Tuned(0.0), Tuned(0.9), Tuned(0.0)
    rt = Runtime("memory://")
    for model in (cold, hot, cold_again):
        await rt.run(LLMAgent("a", model=model, instructions="x", cache=True), "hi")
    assert (cold.calls, hot.calls, cold_again.calls) == (1, 1, 0)
