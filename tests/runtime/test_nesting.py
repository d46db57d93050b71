"""Deep nesting: 120 patterns inside each other run, fail and resume the same way on every
store. (Each level stacks Python frames; past about 90 levels a run hit Python's recursion
limit, and on SQLite and Postgres the error struck inside the store's write path and left
the run `running` for ever.) A run tree too deep for any store's keys fails cleanly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium import (
    NO_RETRY,
    FunctionAgent,
    Parallel,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    StepStatus,
    UsageError,
    agent,
)
from podium.core.serde import dumps
from podium.patterns.parallel import ParallelResult

LEVELS = 120


def tower(leaf: Any, levels: int = LEVELS, prefix: str = "s") -> Any:
    """`levels` Sequentials, each holding the next, with `leaf` at the bottom."""
    for i in range(levels):
        leaf = Sequential(f"{prefix}{i}", [leaf])
    return leaf


@pytest.mark.timeout(60)
async def test_120_nested_patterns_complete_on_every_store(store_url: str) -> None:
    @agent
    def shout(text: str) -> str:
        return text.upper()

    async with Runtime(store_url, retry=NO_RETRY) as rt:
        result = await rt.run(tower(shout), "deep")
        assert result.status == RunStatus.COMPLETED, result.error
        assert result.output == "DEEP"
        assert (await rt.get_run(result.run_id)).status == RunStatus.COMPLETED
        steps = await rt.steps(result.run_id)
        assert len(steps) == LEVELS + 1
        assert all(s.status == StepStatus.COMPLETED for s in steps)
        assert max(s.key.count("/") for s in steps) == LEVELS + 1


@pytest.mark.timeout(60)
async def test_a_failure_120_levels_down_fails_cleanly_and_resumes(
    store_url: str, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()

    @agent
    def fragile(text: str) -> str:
        if flag.exists():
            raise ValueError("the bottom is broken")
        return text.upper()

    flow = tower(fragile)
    async with Runtime(store_url, retry=NO_RETRY) as rt:
        failed = await rt.run(flow, "deep")
        assert failed.status == RunStatus.FAILED
        assert "the bottom is broken" in (failed.error or "")
        assert (await rt.get_run(failed.run_id)).status == RunStatus.FAILED
        steps = await rt.steps(failed.run_id)
        assert len(steps) == LEVELS + 1
        assert all(s.status == StepStatus.FAILED for s in steps)

        flag.unlink()
        resumed = await rt.resume(failed.run_id, flow)
        assert resumed.status == RunStatus.COMPLETED, resumed.error
        assert resumed.output == "DEEP"


@pytest.mark.timeout(60)
async def test_deep_parallels_nest_their_outputs(store_url: str) -> None:
    @agent
    def one(text: str) -> int:
        return len(text)

    flow: Any = one
    for i in range(LEVELS):
        flow = Parallel(f"p{i}", [flow])
    async with Runtime(store_url, retry=NO_RETRY) as rt:
        result = await rt.run(flow, "abc")
        assert result.status == RunStatus.COMPLETED, result.error
        value = result.to_dict()["output"]
        for i in reversed(range(LEVELS)):
            value = value["value"][f"p{i - 1}" if i else "one"]
        assert value == 3


@pytest.mark.timeout(60)
async def test_a_run_tree_too_deep_for_its_keys_fails_cleanly(store_url: str) -> None:
    @agent
    def shout(text: str) -> str:
        return text.upper()

    flow = tower(shout, levels=100, prefix="a_rather_long_pattern_name_")
    async with Runtime(store_url, retry=NO_RETRY) as rt:
        result = await rt.run(flow, "deep")
        assert result.status == RunStatus.FAILED
        assert "nested too deeply" in (result.error or "")
        assert (await rt.get_run(result.run_id)).status == RunStatus.FAILED
        keys = [s.key for s in await rt.steps(result.run_id)]
        assert keys and max(len(k) for k in keys) <= 2000


def test_nested_parallel_results_do_not_double_per_level() -> None:
    result = ParallelResult(value={"one": 3}, results={"one": 3})
    for i in range(24):
        inner = {f"p{i}": result}
        result = ParallelResult(value=dict(inner), results=inner)
    text = dumps(result)
    assert len(text) < 5000  # linear in the depth; it used to be 2**24 copies of the leaf
    assert len(repr(result)) < 5000
    back = ParallelResult.model_validate_json(text)
    assert back.results == back.value and back.results["p23"]["value"]["p22"]
    odd = ParallelResult(value="merged", results={"a": 1})  # a merged value keeps results
    assert ParallelResult.model_validate_json(dumps(odd)) == odd
    flat = ParallelResult(value={"a": 1}, results={"a": 1})  # no Parallel inside: as ever
    assert json.loads(dumps(flat))["results"] == {"a": 1}


def test_agent_names_are_bounded() -> None:
    def f(x: int) -> int:
        return x

    FunctionAgent(f, name="n" * 200)
    with pytest.raises(UsageError, match="too long"):
        FunctionAgent(f, name="n" * 201)


@agent
def one(x: int) -> int:
    return x


async def _dig(levels: int, ctx: RunContext) -> int:
    if levels == 0:
        return int(await ctx.call(one, 1))
    return await _dig(levels - 1, ctx)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_recursion_error_anywhere_in_the_door_never_wedges_the_store(
    store_url: str,
) -> None:
    """User code that recurses deeply before it calls another agent: for some depth the
    RecursionError strikes inside the store's write path. Whatever depth, the run completes
    or fails, and the store goes on working."""
    async with Runtime(store_url, retry=NO_RETRY) as rt:
        statuses = set()
        for levels in range(700, 1000):

            @agent(name="digger")
            async def digger(x: int, ctx: RunContext, levels: int = levels) -> int:
                return await _dig(levels, ctx)

            result = await rt.run(digger, 0)
            statuses.add(result.status)
        assert statuses == {RunStatus.COMPLETED, RunStatus.FAILED}
        stored = await rt.list_runs(limit=1000)
        assert len(stored) == 300
        assert {r.status for r in stored} == {RunStatus.COMPLETED, RunStatus.FAILED}
        assert (await rt.run(one, 5)).output == 5
