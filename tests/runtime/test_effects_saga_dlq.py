"""Side effects exactly once, saga compensation, and the dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from podium import (
    NO_RETRY,
    Decision,
    Retry,
    RunContext,
    RunStatus,
    Runtime,
    StepStatus,
    ToolContext,
    TransientError,
    UsageError,
    agent,
    tool,
)


class World:
    """The outside world: effects keyed by idempotency key, and a log of every call."""

    def __init__(self) -> None:
        self.effects: dict[str, Any] = {}
        self.calls: list[str] = []
        self.undone: list[str] = []


def booking_tools(world: World, *, reconcile: bool = True, idempotent: bool = False) -> Any:
    def already(ctx: ToolContext) -> Any:
        return world.effects.get(ctx.idempotency_key)

    def undo(ctx: ToolContext, result: Any) -> None:
        world.undone.append(result)

    def make(name: str) -> Any:
        @tool(
            name=name,
            effect=True,
            idempotent=idempotent,
            reconcile=already if reconcile else None,
            compensate=undo,
        )
        def book(item: str, ctx: ToolContext) -> str:
            world.calls.append(name)
            result = f"{name}:{item}"
            world.effects[ctx.idempotency_key] = result
            return result

        return book

    return make("flight"), make("hotel"), make("car")


def trip(world: World, fail_at: str | None, **kw: Any) -> Any:
    flight, hotel, car = booking_tools(world, **kw)
    state = {"fail_at": fail_at}

    @agent
    async def plan(city: str, ctx: RunContext) -> list[str]:
        done = []
        for t in (flight, hotel, car):
            if state["fail_at"] == t.name:
                raise RuntimeError(f"{t.name} desk is closed")
            done.append(await ctx.use(t, {"item": city}))
        return done

    return plan, state


async def crash_during(rt: Runtime, run_id: str, step: str, *, lost: tuple[str, ...] = ()) -> None:
    """Make the journal look as if the process died while `step` ran: that step and the
    root are `started`, the steps in `lost` never began, the run is `running`."""
    steps = rt._store_obj._steps[run_id]  # type: ignore[attr-defined]
    for key in (step, "/plan"):
        steps[key].status, steps[key].output = StepStatus.STARTED, None
    for key in lost:
        del steps[key]
    await rt._store_obj.update_run(run_id, status=RunStatus.RUNNING)


async def test_effect_started_row_is_durable_before_the_tool_runs() -> None:
    world = World()
    flight, _, _ = booking_tools(world)
    rt = Runtime("memory://", retry=NO_RETRY)
    seen: list[str] = []

    @agent
    async def one(city: str, ctx: RunContext) -> str:
        return str(await ctx.use(flight, {"item": city}))

    original = flight.fn

    def spy(item: str, ctx: ToolContext) -> str:
        # the journal already holds `started` for this step while the effect happens
        steps = rt._store_obj._steps[ctx.run_id]  # type: ignore[attr-defined]
        seen.append(steps[ctx.step].status)
        return str(original(item, ctx))

    flight.fn = spy
    assert (await rt.run(one, "Oslo")).output == "flight:Oslo"
    assert seen == [StepStatus.STARTED]


async def test_unfinished_effect_is_reconciled_not_repeated() -> None:
    world = World()
    flow, _ = trip(world, fail_at=None)
    rt = Runtime("memory://", retry=NO_RETRY)
    done = await rt.run(flow, "Oslo")
    # a crash right after the hotel was booked, before its `completed` row was written
    await crash_during(rt, done.run_id, "/plan/hotel#0", lost=("/plan/car#0",))
    world.calls.clear()
    again = await rt.resume(done.run_id, flow)
    assert again.output == ["flight:Oslo", "hotel:Oslo", "car:Oslo"]
    assert world.calls == ["car"]  # the hotel was reconciled, not booked twice
    kinds = [e.kind for e in await rt.events(done.run_id)]
    assert "effect.reconciled" in kinds


async def test_unfinished_effect_without_reconcile_waits_for_a_person() -> None:
    world = World()
    flow, _ = trip(world, fail_at=None, reconcile=False)
    rt = Runtime("memory://", retry=NO_RETRY)
    done = await rt.run(flow, "Oslo")
    await crash_during(rt, done.run_id, "/plan/hotel#0", lost=("/plan/car#0",))
    world.calls.clear()
    parked = await rt.resume(done.run_id, flow)
    assert parked.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.request["kind"] == "effect_unknown" and item.request["tool"] == "hotel"
    # the person checked: the hotel was booked, here is the confirmation
    final = await rt.resume(done.run_id, flow, decision={"answer": "hotel:Oslo (checked)"})
    assert final.output == ["flight:Oslo", "hotel:Oslo (checked)", "car:Oslo"]
    assert world.calls == ["car"]


async def test_an_effect_of_unknown_outcome_takes_approve_reject_or_answer_only() -> None:
    world = World()
    flow, _ = trip(world, fail_at=None, reconcile=False)
    rt = Runtime("memory://", retry=NO_RETRY)
    done = await rt.run(flow, "Oslo")
    await crash_during(rt, done.run_id, "/plan/hotel#0", lost=("/plan/car#0",))
    world.calls.clear()
    assert (await rt.resume(done.run_id, flow)).status == RunStatus.WAITING
    for unclear in ({}, "no", {"comment": "not sure"}):
        with pytest.raises(UsageError, match="say what was decided"):
            await rt.resume(done.run_id, flow, decision=unclear)
    assert world.calls == [] and len(await rt.inbox()) == 1
    # approve: the person checked that it did not happen, so it runs
    final = await rt.resume(done.run_id, flow, decision=Decision.approve(by="ops"))
    assert final.output == ["flight:Oslo", "hotel:Oslo", "car:Oslo"]
    assert world.calls == ["hotel", "car"]


async def test_an_effect_of_unknown_outcome_rejected_fails_the_run() -> None:
    world = World()
    flow, _ = trip(world, fail_at=None, reconcile=False)
    rt = Runtime("memory://", retry=NO_RETRY)
    done = await rt.run(flow, "Oslo")
    await crash_during(rt, done.run_id, "/plan/hotel#0", lost=("/plan/car#0",))
    await rt.resume(done.run_id, flow)
    world.calls.clear()
    final = await rt.resume(done.run_id, flow, decision=Decision.reject("cannot tell"))
    assert final.status == RunStatus.FAILED and "cannot tell" in (final.error or "")
    assert "car" not in world.calls


async def test_idempotent_effect_reruns_with_the_same_key() -> None:
    world = World()
    flow, _ = trip(world, fail_at=None, reconcile=False, idempotent=True)
    rt = Runtime("memory://", retry=NO_RETRY)
    done = await rt.run(flow, "Oslo")
    key_before = dict(world.effects)
    await crash_during(rt, done.run_id, "/plan/hotel#0")
    world.calls.clear()
    again = await rt.resume(done.run_id, flow)
    assert again.status == RunStatus.COMPLETED
    assert world.calls == ["hotel"] and world.effects == key_before  # same key, same entry


async def test_failure_compensates_in_reverse_and_dead_letters() -> None:
    world = World()
    flow, _ = trip(world, fail_at="car")
    rt = Runtime("memory://", retry=NO_RETRY)
    result = await rt.run(flow, "Oslo")
    assert result.status == RunStatus.FAILED and "car desk is closed" in (result.error or "")
    assert world.undone == ["hotel:Oslo", "flight:Oslo"]
    steps = {s.key: s.status for s in await rt.steps(result.run_id)}
    assert steps["/plan/hotel#0/compensate#0"] == StepStatus.COMPLETED
    assert steps["/~saga"] == StepStatus.COMPLETED
    (entry,) = await rt.dead_letters()
    assert entry["run_id"] == result.run_id and entry["saga"]["status"] == "completed"
    assert entry["saga"]["compensated"] == ["/plan/hotel#0", "/plan/flight#0"]
    with pytest.raises(UsageError, match="compensated"):
        await rt.requeue(result.run_id, flow)


async def test_a_failing_compensation_is_retried_then_reported() -> None:
    world = World()
    attempts = {"n": 0}
    rt = Runtime("memory://", retry=Retry(attempts=3, initial_delay=0))

    @agent
    async def plan2(city: str, ctx: RunContext) -> None:
        def undo(ctx: ToolContext, result: Any) -> None:
            attempts["n"] += 1
            if attempts["n"] < 3:
                raise TransientError("refund API busy")
            world.undone.append(result)

        @tool(effect=True, reconcile=lambda c: None, compensate=undo)
        def pay(amount: int, ctx: ToolContext) -> str:
            return f"paid {amount}"

        await ctx.use(pay, {"amount": 5})
        raise RuntimeError("shipping failed")

    result = await rt.run(plan2, "x")
    assert result.status == RunStatus.FAILED
    assert attempts["n"] == 3 and world.undone == ["paid 5"]


async def test_dead_letter_requeue_resumes_from_the_last_completed_step() -> None:
    calls = {"a": 0, "b": 0}
    broken = {"b": True}

    @agent
    def a(x: int) -> int:
        calls["a"] += 1
        return x + 1

    @agent
    def b(x: int) -> int:
        calls["b"] += 1
        if broken["b"]:
            raise ValueError("bad config")
        return x * 2

    from podium import Sequential

    flow = Sequential("ab", [a, b])
    rt = Runtime("memory://", retry=NO_RETRY)
    failed = await rt.run(flow, 1)
    (entry,) = await rt.dead_letters()
    assert entry["error"] and "bad config" in entry["error"] and entry["saga"] is None
    broken["b"] = False
    done = await rt.requeue(failed.run_id, flow)
    assert done.output == 4 and calls == {"a": 1, "b": 2}
    assert await rt.dead_letters() == []
    with pytest.raises(UsageError, match="not in the dead-letter queue"):
        await rt.discard(failed.run_id)
