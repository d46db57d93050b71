"""The door: step keys, typed handoffs, retries, timeouts, events and the journal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    HandoffTypeError,
    OutputTypeError,
    Retry,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    StepError,
    StepStatus,
    TransientError,
    agent,
)

FAST = Retry(attempts=3, initial_delay=0.0)


class Order(BaseModel):
    order_id: int
    qty: int = 1


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=FAST)


async def test_step_keys_are_deterministic_and_count_repeats(rt: Runtime) -> None:
    seen: list[str] = []

    @agent
    async def leaf(x: int, ctx: RunContext) -> int:
        seen.append(ctx.key)
        return x + 1

    @agent
    async def parent(x: int, ctx: RunContext) -> int:
        x = await ctx.call(leaf, x)
        return await ctx.call(leaf, x)

    result = await rt.run(Sequential("flow", [parent, leaf]), 0)
    assert result.output == 3
    assert seen == ["/flow/parent#0/leaf#0", "/flow/parent#0/leaf#1", "/flow/leaf#0"]
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == [
        "/flow",
        "/flow/parent#0",
        "/flow/parent#0/leaf#0",
        "/flow/parent#0/leaf#1",
        "/flow/leaf#0",
    ]


async def test_wrong_type_across_a_handoff_names_both_agents_and_the_field(rt: Runtime) -> None:
    @agent
    async def understand(text: str) -> dict[str, Any]:
        return {"order": "seven"}

    @agent
    async def eligibility(order: Order) -> bool:
        return True

    result = await rt.run(Sequential("returns", [understand, eligibility]), "hi")
    assert result.status == RunStatus.FAILED
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, HandoffTypeError)
    assert "'understand' to 'eligibility'" in (result.error or "")
    assert "order_id" in (result.error or "")
    # what was done before the bad handoff is kept
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/returns/understand#0"].status == StepStatus.COMPLETED


async def test_inputs_are_validated_once_and_coerced(rt: Runtime) -> None:
    received: list[Any] = []

    @agent
    async def take(order: Order) -> int:
        received.append(order)
        return order.order_id

    result = await rt.run(take, {"order_id": "12"})
    assert result.output == 12
    assert isinstance(received[0], Order)
    already = Order(order_id=5)
    await rt.run(take, already)
    assert received[1] is already  # an instance of the declared type is not re-validated


async def test_bad_root_input_raises_before_anything_is_written(rt: Runtime) -> None:
    @agent
    async def take(order: Order) -> int:
        return order.order_id

    with pytest.raises(Exception, match="order_id"):
        await rt.run(take, {"qty": 2})
    assert await rt.list_runs() == []


async def test_output_type_is_enforced(rt: Runtime) -> None:
    @agent
    async def liar(x: int) -> int:
        return "not a number"  # type: ignore[return-value]

    result = await rt.run(liar, 1)
    assert result.status == RunStatus.FAILED
    assert "liar" in (result.error or "") and "output" in (result.error or "")


async def test_transient_errors_are_retried_with_events(rt: Runtime) -> None:
    attempts = 0

    @agent
    async def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("try again")
        return x

    result = await rt.run(flaky, 7)
    assert result.output == 7 and attempts == 3
    events = await rt.events(result.run_id)
    retried = [e for e in events if e.kind == "step.retried"]
    assert [e.attempt for e in retried] == [1, 2]
    done = [e for e in events if e.kind == "step.completed"]
    assert done[-1].attempt == 3
    (step,) = await rt.steps(result.run_id)
    assert step.attempt == 3


async def test_bugs_are_not_retried(rt: Runtime) -> None:
    calls = 0

    @agent
    async def buggy(x: int) -> int:
        nonlocal calls
        calls += 1
        raise ValueError("bad math")

    result = await rt.run(buggy, 1)
    assert calls == 1
    assert result.status == RunStatus.FAILED
    assert "buggy" in (result.error or "") and "bad math" in (result.error or "")


async def test_retries_stop_at_max_attempts() -> None:
    rt = Runtime("memory://", retry=Retry(attempts=2, initial_delay=0.0))
    calls = 0

    @agent
    async def down(x: int) -> int:
        nonlocal calls
        calls += 1
        raise ConnectionError("refused")

    result = await rt.run(down, 1)
    assert calls == 2 and result.status == RunStatus.FAILED


async def test_backoff_delays_grow_and_are_capped() -> None:
    policy = Retry(attempts=10, initial_delay=0.1, max_delay=0.5, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
    jittered = Retry(initial_delay=1.0, max_delay=1.0)
    assert all(0.0 <= jittered.delay(1) <= 1.0 for _ in range(50))


async def test_timeout_becomes_a_retryable_step_timeout(rt: Runtime) -> None:
    calls = 0

    @agent(timeout=0.05)
    async def slow_once(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return x

    result = await rt.run(slow_once, 4)
    assert result.output == 4 and calls == 2
    retried = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
    assert "timed out after 0.05s" in retried[0].data["error"]  # type: ignore[index]


async def test_call_overrides_beat_agent_settings(rt: Runtime) -> None:
    @agent(timeout=10)
    async def sleepy(x: int) -> int:
        await asyncio.sleep(1)
        return x

    @agent
    async def impatient(x: int, ctx: RunContext) -> int:
        return int(await ctx.call(sleepy, x, timeout=0.02, retry=Retry(attempts=1)))

    result = await rt.run(impatient, 1)
    assert result.status == RunStatus.FAILED
    assert "StepTimeoutError" in (result.error or "")


async def test_sync_functions_and_functions_without_ctx_work(rt: Runtime) -> None:
    @agent
    def double(x: int) -> int:
        return 2 * x

    @agent(thread=True)
    def triple(x: int) -> int:
        return 3 * x

    result = await rt.run(Sequential("math", [double, triple]), 2)
    assert result.output == 12


async def test_cancel_stops_every_branch_and_keeps_completed_steps(rt: Runtime) -> None:
    started = asyncio.Event()

    @agent
    async def quick(x: int) -> int:
        return x

    @agent
    async def forever(x: int) -> int:
        started.set()
        await asyncio.sleep(60)
        return x

    task = asyncio.create_task(rt.run(Sequential("flow", [quick, forever]), 1, run_id="c1"))
    await started.wait()
    await rt.cancel("c1")
    result = await task
    assert result.status == RunStatus.CANCELLED
    assert (await rt.get_run("c1")).status == RunStatus.CANCELLED
    steps = {s.key: s.status for s in await rt.steps("c1")}
    assert steps["/flow/quick#0"] == StepStatus.COMPLETED


async def test_resume_replays_completed_steps(rt: Runtime) -> None:
    counts = {"a": 0, "b": 0}
    broken = True

    @agent
    async def a(x: int) -> int:
        counts["a"] += 1
        return x + 1

    @agent
    async def b(x: int) -> int:
        counts["b"] += 1
        if broken:
            raise ValueError("not yet")
        return x * 10

    flow = Sequential("flow", [a, b])
    first = await rt.run(flow, 1)
    assert first.status == RunStatus.FAILED
    broken = False
    second = await rt.resume(first.run_id, flow)
    assert second.status == RunStatus.COMPLETED and second.output == 20
    assert counts == {"a": 1, "b": 2}
    kinds = [e.kind for e in await rt.events(first.run_id)]
    assert "step.replayed" in kinds and kinds[-1] == "run.completed"
    seqs = [e.seq for e in await rt.events(first.run_id)]
    assert seqs == sorted(set(seqs))  # the resumed run continues the event sequence


def test_run_sync_wrapper() -> None:
    @agent
    def inc(x: int) -> int:
        return x + 1

    rt = Runtime("memory://")
    first = rt.run_sync(inc, 1)
    assert first.output == 2
    assert rt.run_sync(inc, 2).output == 3  # a second event loop reopens the store
    assert len(asyncio.run(rt.list_runs())) == 2


async def test_run_sync_refuses_inside_a_loop(rt: Runtime) -> None:
    @agent
    def inc(x: int) -> int:
        return x + 1

    with pytest.raises(Exception, match="running event loop"):
        rt.run_sync(inc, 1)


async def test_listeners_see_every_event(rt: Runtime) -> None:
    seen: list[str] = []
    unsubscribe = rt.subscribe(lambda e: seen.append(e.kind))

    @agent
    def inc(x: int) -> int:
        return x + 1

    await rt.run(inc, 1)
    unsubscribe()
    await rt.run(inc, 1)
    assert seen == [
        "run.started",
        "run.config",  # the audit chain's first record
        "step.started",
        "step.completed",
        "run.completed",
    ]


def test_unknown_middleware_slot_is_a_clear_error() -> None:
    async def mw(call: Any, nxt: Any) -> Any:
        return await nxt(call)

    with pytest.raises(Exception, match="unknown middleware slot"):
        Runtime("memory://", middleware={"polcy": mw})


async def test_a_filled_slot_runs_in_chain_order() -> None:
    order: list[str] = []

    async def policy(call: Any, nxt: Any) -> Any:
        order.append(f"policy:{call.key}")
        return await nxt(call)

    @agent
    def inc(x: int) -> int:
        return x + 1

    rt = Runtime("memory://", middleware={"policy": policy})
    assert (await rt.run(inc, 1)).output == 2
    assert order == ["policy:/inc"]


def test_agent_names_must_fit_in_step_keys() -> None:
    def f(x: int) -> int:
        return x

    from podium import FunctionAgent, UsageError

    with pytest.raises(UsageError, match="not valid"):
        FunctionAgent(f, name="a/b")


async def test_agent_signatures_in_any_order(rt: Runtime) -> None:
    @agent
    async def ctx_first(ctx: RunContext, x: int) -> str:
        return f"{ctx.key}:{x}"

    @agent
    def no_input() -> int:
        return 42

    @agent
    async def only_ctx(ctx: RunContext) -> str:
        return ctx.key

    assert (await rt.run(ctx_first, 1)).output == "/ctx_first:1"
    assert (await rt.run(no_input)).output == 42
    assert (await rt.run(only_ctx)).output == "/only_ctx"


def test_agent_functions_with_extra_required_parameters_are_refused() -> None:
    from podium import UsageError

    def two(x: int, y: int) -> int:
        return x + y

    with pytest.raises(UsageError, match="extra required parameter 'y'"):
        agent(two)


async def test_a_run_deadline_cancels_every_branch_and_keeps_completed_steps(rt: Runtime) -> None:
    from podium import Parallel

    finished: list[str] = []

    @agent
    async def quick(x: int) -> int:
        finished.append("quick")
        return x

    @agent
    async def stuck(x: int) -> int:
        try:
            await asyncio.sleep(30)
        finally:
            finished.append("stuck cancelled")
        return x

    flow = Sequential("flow", [quick, Parallel("fan", [stuck, stuck])])
    result = await rt.run(flow, 1, deadline=0.1)
    assert result.status == RunStatus.FAILED
    assert "deadline limit" in (result.error or "") and "the limit is 0.1s" in (result.error or "")
    assert finished == ["quick", "stuck cancelled", "stuck cancelled"]
    steps = {s.key: s.status for s in await rt.steps(result.run_id)}
    assert steps["/flow/quick#0"] == StepStatus.COMPLETED


async def test_a_run_can_carry_its_own_retry_policy() -> None:
    rt = Runtime("memory://", retry=Retry(attempts=1))
    calls = 0

    @agent
    async def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientError("again")
        return x

    assert (await rt.run(flaky, 1)).status == RunStatus.FAILED
    calls = 0
    assert (await rt.run(flaky, 1, retry=Retry(attempts=3, initial_delay=0))).output == 1


async def test_a_typed_call_returns_the_expected_type_and_journals_the_raw_output(
    rt: Runtime,
) -> None:
    @agent
    def loose(x: int) -> dict[str, Any]:
        return {"order_id": x, "qty": "2"}

    @agent
    async def caller(x: int, ctx: RunContext) -> int:
        order = await ctx.call(loose, x, expect=Order)
        assert isinstance(order, Order)
        return order.qty

    result = await rt.run(caller, 7)
    assert result.output == 2
    (row,) = [s for s in await rt.steps(result.run_id) if s.key == "/caller/loose#0"]
    assert row.output == {"order_id": 7, "qty": "2"}  # the agent's answer, as it gave it
    again = await rt.resume(result.run_id, caller)  # a replayed answer is read the same way
    assert again.output == 2


async def test_a_typed_call_names_the_agent_the_step_and_the_field(rt: Runtime) -> None:
    @agent
    def sloppy(x: int) -> dict[str, Any]:
        return {"qty": x}

    @agent
    async def caller(x: int, ctx: RunContext) -> Any:
        return await ctx.call(sloppy, x, expect=Order)

    result = await rt.run(caller, 1)
    assert result.status == RunStatus.FAILED
    error = result.exception
    assert isinstance(error, StepError) and isinstance(error.cause, OutputTypeError)
    assert (error.cause.agent, error.cause.step) == ("sloppy", "/caller/sloppy#0")
    assert "output is not a Order: field 'order_id': Field required" in str(error.cause)
