"""Sequential and Parallel: order, concurrency, merge strategies, quorum and gaps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from podium import (
    NO_RETRY,
    Parallel,
    ParallelResult,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    UsageError,
    agent,
)


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def sleeper(name: str, seconds: float, value: Any) -> Any:
    async def fn(x: Any) -> Any:
        await asyncio.sleep(seconds)
        return value

    return agent(name=name)(fn)


async def test_sequential_passes_each_output_on(rt: Runtime) -> None:
    @agent
    def a(x: str) -> str:
        return x + "a"

    @agent
    def b(x: str) -> str:
        return x + "b"

    assert (await rt.run(Sequential("s", [a, b, a]), ">")).output == ">aba"


async def test_parallel_runs_branches_concurrently(rt: Runtime) -> None:
    branches = [sleeper(f"b{i}", 0.2, i) for i in range(5)]
    t0 = time.perf_counter()
    result = await rt.run(Parallel("fan", branches), None)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.6  # the slowest branch, not the sum (1.0 s)
    out = result.output
    assert isinstance(out, ParallelResult)
    assert out.value == {f"b{i}": i for i in range(5)} and out.complete


async def test_vote_picks_the_most_common_answer(rt: Runtime) -> None:
    branches = [sleeper("x", 0, "yes"), sleeper("y", 0, "no"), sleeper("z", 0, "yes")]
    out = (await rt.run(Parallel("vote", branches, merge="vote"), None)).output
    assert out.value == "yes" and out.votes == {"yes": 2, "no": 1}


async def test_reducer_and_synthesis_agent(rt: Runtime) -> None:
    branches = [sleeper("x", 0, 2), sleeper("y", 0, 3)]
    out = (await rt.run(Parallel("sum", branches, merge=lambda r: sum(r.values())), None)).output
    assert out.value == 5

    @agent
    def synth(result: ParallelResult) -> str:
        return f"{len(result.results)} analysts agree"

    out = (await rt.run(Parallel("syn", branches, merge=synth), None)).output
    assert out.value == "2 analysts agree"


async def test_quorum_gives_a_partial_result_with_named_gaps(rt: Runtime) -> None:
    @agent
    async def broken(x: Any) -> int:
        raise RuntimeError("upstream down")

    branches = [sleeper("fast", 0, 1), sleeper("slow", 5, 2), broken]
    p = Parallel("q", branches, min_success=1, branch_timeout=0.1)
    result = await rt.run(p, None)
    assert result.status == RunStatus.COMPLETED
    out = result.output
    assert out.results == {"fast": 1}
    assert set(out.gaps) == {"slow", "broken"}
    assert "no result within 0.1s" in out.gaps["slow"]
    assert "upstream down" in out.gaps["broken"]
    gap_events = [e for e in await rt.events(result.run_id) if e.kind == "parallel.gap"]
    assert {e.data["branch"] for e in gap_events} == {"slow", "broken"}  # type: ignore[index]


async def test_missing_quorum_fails_and_names_the_gaps(rt: Runtime) -> None:
    @agent
    async def broken(x: Any) -> int:
        raise RuntimeError("nope")

    result = await rt.run(Parallel("all", [sleeper("ok", 0, 1), broken]), None)
    assert result.status == RunStatus.FAILED
    assert "1 of 2 branches succeeded" in (result.error or "") and "broken" in (result.error or "")


async def test_the_same_agent_twice_gets_distinct_labels_and_keys(rt: Runtime) -> None:
    keys: list[str] = []

    @agent
    async def critic(x: int, ctx: RunContext) -> int:
        keys.append(ctx.key)
        return x

    out = (await rt.run(Parallel("p", [critic, critic]), 1)).output
    assert set(out.results) == {"critic", "critic#1"}
    assert sorted(keys) == ["/p/critic#0", "/p/critic#1"]


async def test_patterns_nest(rt: Runtime) -> None:
    @agent
    def inc(x: int) -> int:
        return x + 1

    @agent
    def total(r: ParallelResult) -> int:
        return sum(r.results.values())

    inner = Sequential("inner", [inc, inc])
    flow = Sequential("outer", [inc, Parallel("fan", [inner, inc]), total])
    assert (await rt.run(flow, 0)).output == 3 + 2


def test_construction_errors_name_the_pattern() -> None:
    with pytest.raises(UsageError, match="'s' needs at least one step"):
        Sequential("s", [])
    with pytest.raises(UsageError, match="min_success"):
        Parallel("p", [sleeper("a", 0, 1)], min_success=2)
    with pytest.raises(UsageError, match="merge 'avg'"):
        Parallel("p", [sleeper("a", 0, 1)], merge="avg")
    with pytest.raises(UsageError, match="is not an agent"):
        Sequential("s", [print])
