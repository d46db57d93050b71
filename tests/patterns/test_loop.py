"""Loop: conditions (function, agent verdict), limits, no-progress, state mode, events, and
resume on a real SQLite store replaying completed iterations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import NO_RETRY, RunContext, RunStatus, Runtime, UsageError, agent
from podium.patterns.loop import Loop, LoopResult, LoopState
from podium.runtime.budget import Budget


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


@agent
def inc(x: int) -> int:
    return x + 1


async def loop_events(rt: Runtime, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data or {} for e in await rt.events(run_id) if e.kind == kind]


async def test_feeds_each_output_back_until_the_condition_holds(rt: Runtime) -> None:
    result = await rt.run(Loop("count", inc, until=lambda n: n >= 3), 0)
    assert result.output == LoopResult[int](
        output=3, status="completed", reason="the condition holds", turns=3
    )
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/count", "/count/inc#0", "/count/inc#1", "/count/inc#2"]
    iterations = await loop_events(rt, result.run_id, "loop.iteration")
    assert [e["iteration"] for e in iterations] == [1, 2, 3]
    assert [e["done"] for e in iterations] == [False, False, True]
    assert await loop_events(rt, result.run_id, "loop.stop") == [
        {"status": "completed", "reason": "the condition holds", "turns": 3}
    ]


async def test_async_condition(rt: Runtime) -> None:
    async def big(n: int) -> bool:
        return n > 4

    result = await rt.run(Loop("count", inc, until=big), 0)
    assert (result.output.output, result.output.turns) == (5, 5)


async def test_stops_at_max_turns_default_ten(rt: Runtime) -> None:
    result = await rt.run(Loop("count", inc), 0)
    assert result.output.status == "max_turns"
    assert (result.output.output, result.output.turns) == (10, 10)
    result = await rt.run(Loop("count", inc, until=lambda n: False, max_turns=2), 0)
    assert (result.output.output, result.output.status) == (2, "max_turns")


async def test_stops_when_the_body_repeats_itself(rt: Runtime) -> None:
    @agent
    def capped(x: int) -> int:
        return min(x + 1, 2)

    result = await rt.run(Loop("capped", capped), 0)
    assert result.output.model_dump() == {
        "output": 2,
        "status": "stalled",
        "reason": "no progress for 1 turn(s) in a row",
        "gaps": {},
        "turns": 3,
    }

    @agent
    def same(text: str) -> str:
        return text.upper()  # case does not make text new

    result = await rt.run(Loop("same", same), "hello")
    assert (result.output.turns, result.output.status) == (1, "stalled")


async def test_cycles_are_no_progress_and_patience_is_configurable(rt: Runtime) -> None:
    @agent
    def flip(x: int) -> int:
        return 1 - x

    result = await rt.run(Loop("flip", flip), 0)  # 1, then 0 again: seen before
    assert (result.output.turns, result.output.status) == (2, "stalled")
    result = await rt.run(Loop("flip", flip, max_stalls=3), 0)
    assert (result.output.turns, result.output.status) == (4, "stalled")
    result = await rt.run(Loop("flip", flip, max_stalls=None, max_turns=7), 0)
    assert (result.output.turns, result.output.status) == (7, "max_turns")


class Draft(BaseModel):
    text: str
    version: int


class Review(BaseModel):
    approved: bool
    notes: str = ""


async def test_agent_condition_with_state_and_check_first(rt: Runtime) -> None:
    seen: list[LoopState] = []

    @agent
    def critic(draft: Draft) -> Review:
        ok = "!" in draft.text
        return Review(approved=ok, notes="" if ok else "more energy")

    @agent
    def reviser(state: LoopState) -> Draft:
        seen.append(state)
        draft = Draft.model_validate(state.current)
        return Draft(text=draft.text + "!", version=draft.version + 1)

    flow = Loop("polish", reviser, until=critic, state=True, check_first=True)
    result = await rt.run(flow, Draft(text="hi", version=1))
    assert result.output.output == Draft(text="hi!", version=2)
    assert (result.output.turns, result.output.status) == (1, "completed")
    [state] = seen
    assert state.iteration == 0 and state.verdict == Review(approved=False, notes="more energy")
    assert state.input == Draft(text="hi", version=1)
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/polish", "/polish/critic#0", "/polish/reviser#0", "/polish/critic#1"]

    # already good: the body never runs
    result = await rt.run(flow, Draft(text="yes!", version=1))
    assert (result.output.turns, result.output.status) == (0, "completed")
    assert result.output.output == Draft(text="yes!", version=1)


async def test_verdict_as_dict_and_bad_verdict_names_the_agent(rt: Runtime) -> None:
    @agent
    def judge(n: int) -> dict[str, Any]:
        return {"done": n == 2}

    result = await rt.run(Loop("count", inc, until=judge), 0)
    assert (result.output.output, result.output.status) == (2, "completed")

    @agent
    def vague(n: int) -> str:
        return "maybe"

    result = await rt.run(Loop("count", inc, until=vague), 0)
    assert result.status == RunStatus.FAILED
    assert "vague" in (result.error or "") and "a loop condition must give a bool" in (
        result.error or ""
    )


def test_misuse_is_caught_at_construction() -> None:
    with pytest.raises(UsageError, match="'l': body 3 is not an agent"):
        Loop("l", 3)
    with pytest.raises(UsageError, match="max_turns must be a positive integer"):
        Loop("l", inc, max_turns=0)
    with pytest.raises(UsageError, match="until must be a function or an agent"):
        Loop("l", inc, until="yes")
    with pytest.raises(UsageError, match="check_first needs a condition"):
        Loop("l", inc, check_first=True)
    with pytest.raises(UsageError, match="max_stalls must be a positive integer"):
        Loop("l", inc, max_stalls=0)


async def test_resume_replays_completed_iterations_on_sqlite(tmp_path: Path) -> None:
    calls: list[int] = []
    broken = {"on": True}

    @agent
    async def step(d: Draft, ctx: RunContext) -> Draft:
        calls.append(d.version)
        if d.version == 2 and broken["on"]:
            raise ValueError("disk full")
        return Draft(text=d.text + ".", version=d.version + 1)

    flow = Loop("grow", step, until=lambda d: d.version >= 4)
    rt = Runtime(f"sqlite:///{tmp_path}/x.db", retry=NO_RETRY)
    async with rt:
        first = await rt.run(flow, Draft(text="a", version=0))
        assert first.status == RunStatus.FAILED and "disk full" in (first.error or "")
        assert calls == [0, 1, 2]
    broken["on"] = False
    calls.clear()
    rt = Runtime(f"sqlite:///{tmp_path}/x.db", retry=NO_RETRY)
    async with rt:
        second = await rt.resume(first.run_id, flow)
        assert second.status == RunStatus.COMPLETED
        assert calls == [2, 3]  # iterations 1 and 2 were replayed, not re-run
        out = second.output
        assert isinstance(out, LoopResult) and isinstance(out.output, Draft)
        assert out.output == Draft(text="a....", version=4) and out.turns == 4
        replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
        assert replayed == ["/grow/step#0", "/grow/step#1"]
        # the whole completed run resumes to its stored, typed result
        again = await rt.resume(first.run_id, flow)
        assert again.output["output"] == {"text": "a....", "version": 4}


def test_renamed_options_fields_and_statuses_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match=r"Loop\(max_iterations=...\) is deprecated"):
        loop = Loop("l", inc, max_iterations=3)
    assert loop.max_turns == 3
    with pytest.warns(DeprecationWarning, match=r"Loop\(no_progress=...\) is deprecated"):
        assert Loop("l", inc, no_progress=None).max_stalls is None
    with pytest.warns(DeprecationWarning, match="Loop.max_iterations is deprecated"):
        assert loop.max_iterations == 3
    with pytest.warns(DeprecationWarning) as seen:
        old = LoopResult[int](output=3, iterations=3, stopped="condition")
    assert sorted(str(w.message).split(" is ")[0] for w in seen) == [
        "LoopResult[int](iterations=...)",
        "LoopResult[int](stopped=...)",
    ]
    assert (old.status, old.turns) == ("completed", 3)
    with pytest.warns(DeprecationWarning, match=r"LoopResult\[int\].stopped is deprecated"):
        assert old.stopped == "condition"
    with pytest.warns(DeprecationWarning, match="status 'condition' is now 'completed'"):
        assert old.status == "condition"


async def test_a_spent_budget_or_a_deadline_ends_the_loop_with_the_last_value() -> None:
    from podium import LLMAgent, ScriptedModel
    from podium.testing import FakeClock

    model = ScriptedModel([f"draft {i}" for i in range(5)])
    reviser = LLMAgent("reviser", model=model, instructions="Improve it.")
    rt = Runtime("memory://", retry=NO_RETRY)
    out = (await rt.run(Loop("polish", reviser, budget=Budget(model_calls=2)), "draft")).output
    assert (out.status, out.output, out.turns) == ("budget_exhausted", "draft 1", 2)

    clock = FakeClock()
    rt = Runtime("memory://", retry=NO_RETRY, clock=clock)

    @agent
    async def slow(n: int) -> int:
        await clock.advance(30)  # each turn takes half a minute
        return n + 1

    out = (await rt.run(Loop("count", slow, deadline=20), 0)).output
    assert (out.status, out.output, out.turns) == ("deadline", 1, 1)
    assert out.reason == "deadline of 20s passed"
