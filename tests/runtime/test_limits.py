"""Every run's limits (OWASP LLM10, unbounded consumption): a step count and a deadline of
running time, sizes of input, of each output and of the whole journal. Passing one fails the
run with `RunLimitExceededError`, never retried; what completed stays journaled, and the
counts go on from the journal when the run resumes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from podium import (
    Decision,
    HumanApproval,
    Parallel,
    Retry,
    RunContext,
    RunLimitExceededError,
    RunStatus,
    Runtime,
    RunTimeoutError,
    Sequential,
    StepStatus,
    UsageError,
    agent,
    tool,
)
from podium.runtime.limits import DEFAULT_LIMITS, RunLimits, active_seconds
from podium.testing import FakeClock

MIB = 1 << 20


@pytest.fixture
def url(store_url: str) -> str:
    """Each store: memory, a SQLite file, a Postgres schema."""
    return store_url


calls: list[int] = []


@tool
def echo(i: int) -> int:
    """Echo."""
    calls.append(i)
    return i


@agent
async def chatter(n: int, ctx: RunContext) -> int:
    """A tool call per item: n + 1 steps with the agent itself."""
    total = 0
    for i in range(n):
        total += await ctx.use(echo, {"i": i})
    return total


@agent
async def solo(n: int) -> int:
    return n


@agent
async def shout(text: str) -> str:
    return text.upper()


@tool
def blob(size: int) -> str:
    """A string of `size` characters."""
    return "x" * size


@agent
async def writer(sizes: list[int], ctx: RunContext) -> int:
    """One output per size: fills the journal."""
    for size in sizes:
        await ctx.use(blob, {"size": size})
    return len(sizes)


# defaults and configuration -----------------------------------------------------------------
def test_every_run_has_limits_by_default() -> None:
    rt = Runtime("memory://")
    assert rt.limits == DEFAULT_LIMITS
    assert (rt.limits.max_steps, rt.limits.deadline) == (10_000, 86_400.0)
    assert rt.limits.max_input_bytes == rt.limits.max_output_bytes == 16 * MIB
    assert rt.limits.max_journal_bytes == 1024 * MIB


def test_limits_come_from_code_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_MAX_STEPS", "500")
    monkeypatch.setenv("PODIUM_RUN_DEADLINE", "90.5")
    monkeypatch.setenv("PODIUM_MAX_OUTPUT_BYTES", "4096")
    rt = Runtime("memory://", max_steps=7)
    assert (rt.limits.max_steps, rt.limits.deadline, rt.limits.max_output_bytes) == (7, 90.5, 4096)


@pytest.mark.parametrize("text", ["many", "1e3x", "-5", "0", "inf", "99999999999999"])
def test_a_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("PODIUM_MAX_STEPS", text)
    with pytest.raises(UsageError, match=f"PODIUM_MAX_STEPS='{text}'"):
        Runtime("memory://")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_steps", 0),
        ("max_steps", -1),
        ("max_steps", 2.5),
        ("max_steps", "10"),
        ("max_steps", True),
        ("max_steps", 10**12),
        ("deadline", 0),
        ("deadline", -1.0),
        ("deadline", math.inf),
        ("deadline", math.nan),
        ("deadline", "1h"),
        ("deadline", 31 * 86_400),
        ("max_output_bytes", 0),
        ("max_output_bytes", 2 << 30),
        ("max_input_bytes", -1),
        ("max_journal_bytes", math.inf),
    ],
)
def test_wrong_limits_are_refused_by_name(option: str, value: Any) -> None:
    with pytest.raises(UsageError, match=option):
        Runtime("memory://", **{option: value})


async def test_a_run_given_a_wrong_limit_writes_nothing(url: str) -> None:
    rt = Runtime(url)
    with pytest.raises(UsageError, match="max_steps"):
        await rt.run(chatter, 1, max_steps=-3)
    with pytest.raises(UsageError, match="deadline"):
        await rt.run(chatter, 1, deadline=math.nan)
    assert await rt.list_runs() == []
    await rt.close()


# the step count ------------------------------------------------------------------------------
async def test_a_run_stops_at_its_step_limit_and_keeps_what_completed(url: str) -> None:
    calls.clear()
    rt = Runtime(url, retry=Retry(attempts=5, initial_delay=0))
    result = await rt.run(chatter, 50, max_steps=6)
    assert result.status == RunStatus.FAILED
    error = result.exception
    assert isinstance(error, RunLimitExceededError)
    assert (error.limit, error.maximum, error.used) == ("max_steps", 6, 7)
    assert error.step == "/chatter/echo#5"
    assert "max_steps limit: 7 steps, the limit is 6 steps" in str(error)
    assert calls == [0, 1, 2, 3, 4]  # never retried: the refused step never ran
    steps = await rt.steps(result.run_id)
    done = [s.key for s in steps if s.status == StepStatus.COMPLETED]
    assert done == [f"/chatter/echo#{i}" for i in range(5)]
    events = [e.kind for e in await rt.events(result.run_id)]
    assert "step.retried" not in events and "run.limit" in events
    await rt.close()


async def test_the_count_goes_on_from_the_journal_when_the_run_resumes(url: str) -> None:
    calls.clear()
    rt = Runtime(url, max_steps=6)
    first = await rt.run(chatter, 8)
    assert isinstance(first.exception, RunLimitExceededError)
    await rt.close()

    again = Runtime(url, max_steps=6)  # a new process's runtime: counts from the journal
    if url.startswith("memory"):
        again = rt
    second = await again.resume(first.run_id, chatter)
    assert isinstance(second.exception, RunLimitExceededError)
    assert calls == [0, 1, 2, 3, 4]  # nothing new ran: 6 rows are in the journal already

    done = await again.resume(first.run_id, chatter, max_steps=20)
    assert done.status == RunStatus.COMPLETED and done.output == sum(range(8))
    assert calls == list(range(8))  # completed steps replayed, not run again
    await again.close()


async def test_a_limit_given_to_a_run_is_kept_for_its_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Sequential("payout", [chatter, HumanApproval("approve", prompt="ok?"), chatter])
    rt = Runtime(url)
    first = await rt.run(flow, 3, max_steps=7)  # payout, chatter, 3 echos, approve + decision
    assert first.status == RunStatus.WAITING
    await rt.close()
    rt = Runtime(url)  # default 10,000: the run's own 5 still applies
    second = await rt.resume(first.run_id, flow, decision=Decision.approve())
    assert isinstance(second.exception, RunLimitExceededError)
    assert second.exception.maximum == 7
    await rt.close()


async def test_a_queued_run_keeps_the_limits_it_was_submitted_with(tmp_path: Path) -> None:
    rt = Runtime(f"sqlite:///{tmp_path / 'runs.db'}")
    run_id = await rt.submit(chatter, 10, max_steps=3)
    await rt.work(until_idle=True, agents=[chatter], sweep_every=None)
    record = await rt.get_run(run_id)
    assert record.status == RunStatus.FAILED and "max_steps limit" in (record.error or "")
    await rt.close()


async def test_a_pattern_that_carries_on_without_the_refused_step_still_fails() -> None:
    rt = Runtime("memory://")
    flow = Parallel("fan", [solo, chatter], min_success=1)
    result = await rt.run(flow, 3, max_steps=4)  # fan, solo, chatter, echo: then refused
    assert isinstance(result.exception, RunLimitExceededError)
    events = [e for e in await rt.events(result.run_id) if e.kind == "parallel.gap"]
    assert events and "max_steps" in str(events[0].data)  # the quorum was met without it


# the deadline --------------------------------------------------------------------------------
def test_active_seconds_leave_out_the_gaps_between_drives() -> None:
    from podium.core.records import Event

    def ev(ts: float, kind: str) -> Event:
        return Event("r", 0, ts, kind)

    events = [
        ev(100, "run.started"),
        ev(103, "step.completed"),
        ev(104, "run.waiting"),
        ev(100_000, "run.resumed"),  # a day later: a person answered
        ev(100_002, "run.completed"),
    ]
    assert active_seconds(events) == 6.0
    assert active_seconds([]) == 0.0


async def test_waiting_for_a_person_does_not_count_against_the_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Sequential("payout", [chatter, HumanApproval("approve", prompt="ok?")])
    rt = Runtime(url, clock=clock, deadline=60)
    first = await rt.run(flow, 2)
    assert first.status == RunStatus.WAITING
    await clock.advance(3 * 86_400)  # the person took a long weekend
    done = await rt.resume(first.run_id, flow, decision=Decision.approve())
    assert done.status == RunStatus.COMPLETED
    await rt.close()


async def test_running_time_adds_up_across_resumes(tmp_path: Path) -> None:
    clock = FakeClock()
    ran: list[int] = []

    @agent
    async def slow(x: int, ctx: RunContext) -> int:
        ran.append(x)
        await clock.advance(50)  # 50 s of running, on the runtime's clock
        return x

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Sequential("work", [slow, HumanApproval("approve", prompt="ok?"), slow])
    first = await Runtime(url, clock=clock, deadline=60).run(flow, 1)
    assert first.status == RunStatus.WAITING
    await clock.advance(86_400)  # waiting: not counted

    tight = Runtime(url, clock=clock, deadline=40)  # 50 s already ran: no time is left
    second = await tight.resume(first.run_id, flow, decision=Decision.approve())
    error = second.exception
    assert isinstance(error, RunTimeoutError)
    assert (error.maximum, error.used) == (40, 50)
    assert ran == [1]  # failed at once: nothing new ran
    await tight.close()

    roomy = Runtime(url, clock=clock, deadline=60)
    done = await roomy.resume(first.run_id, flow)
    assert done.status == RunStatus.COMPLETED and ran == [1, 1]
    await roomy.close()


async def test_a_run_past_its_deadline_fails_with_the_limit_named() -> None:
    import asyncio

    @agent
    async def stuck(x: int) -> int:
        await asyncio.sleep(30)
        return x

    rt = Runtime("memory://", deadline=0.05)
    result = await rt.run(stuck, 1)
    assert isinstance(result.exception, RunTimeoutError)
    assert isinstance(result.exception, RunLimitExceededError)
    assert result.exception.limit == "deadline" and result.exception.maximum == 0.05


# sizes -------------------------------------------------------------------------------------
async def test_an_output_over_the_limit_fails_its_step_named(url: str) -> None:
    rt = Runtime(url, max_output_bytes=1024, retry=Retry(attempts=3, initial_delay=0))
    result = await rt.run(writer, [10, 2000])
    error = result.exception
    assert isinstance(error, RunLimitExceededError)
    assert (error.limit, error.maximum, error.step) == ("max_output_bytes", 1024, "/writer/blob#1")
    assert error.used == 2002  # the JSON string: its quotes too
    assert "2,002 bytes, the limit is 1,024 bytes" in str(error)
    rows = {s.key: s for s in await rt.steps(result.run_id)}
    assert rows["/writer/blob#0"].status == StepStatus.COMPLETED
    refused = rows["/writer/blob#1"]
    assert refused.status == StepStatus.FAILED and refused.output is None
    assert "max_output_bytes" in (refused.error or "")
    kinds = [e.kind for e in await rt.events(result.run_id)]
    assert "step.retried" not in kinds
    await rt.close()


async def test_an_input_over_the_limit_is_refused_before_anything_is_stored(url: str) -> None:
    rt = Runtime(url, max_input_bytes=100)
    with pytest.raises(RunLimitExceededError, match="max_input_bytes limit: 1,002 bytes"):
        await rt.run(shout, "x" * 1000)
    assert await rt.list_runs() == []
    ok = await rt.run(shout, "x" * 98)
    assert ok.status == RunStatus.COMPLETED
    await rt.close()


async def test_the_journal_of_a_run_has_a_total_size(url: str) -> None:
    rt = Runtime(url, max_journal_bytes=1000)
    result = await rt.run(writer, [300] * 10)
    error = result.exception
    assert isinstance(error, RunLimitExceededError)
    assert (error.limit, error.step) == ("max_journal_bytes", "/writer/blob#3")
    assert error.used == 4 * 302
    again = await rt.resume(result.run_id, writer)  # counted from the journal: still over
    assert isinstance(again.exception, RunLimitExceededError)
    done = await rt.resume(result.run_id, writer, max_journal_bytes=10_000)
    assert done.status == RunStatus.COMPLETED
    await rt.close()


def test_run_limits_check_every_field() -> None:
    assert RunLimits(max_steps=1).max_steps == 1
    with pytest.raises(UsageError, match="above its ceiling of 10,000,000"):
        RunLimits(max_steps=10_000_001)


async def test_a_far_deadline_is_watched_by_the_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline beyond `WATCHED_BEYOND` has no timer of its own: the lease heartbeat
    (every lease / 3 seconds) cancels the run once it is past it."""
    import asyncio

    import podium.runtime.runtime as runtime_module

    monkeypatch.setattr(runtime_module, "WATCHED_BEYOND", 0.01)

    @agent
    async def stuck(x: int) -> int:
        await asyncio.sleep(30)
        return x

    rt = Runtime("memory://", deadline=0.1, lease=0.3)  # a beat every 0.1 s
    result = await asyncio.wait_for(rt.run(stuck, 1), 5)
    assert isinstance(result.exception, RunTimeoutError)
    assert result.exception.maximum == 0.1
    assert not rt._deadlines and not rt._expired
    ok = await rt.run(solo, 2)  # a quick run is not cancelled, and leaves nothing behind
    assert ok.output == 2 and not rt._deadlines


def test_an_event_between_drives_does_not_count_as_running() -> None:
    """A person's decision is recorded (an audited `decision.recorded` event) before the run
    resumes: the days it waited for that decision are not running time."""
    from podium.core.records import Event

    def ev(ts: float, kind: str) -> Event:
        return Event("r", 0, ts, kind)

    events = [
        ev(100, "run.started"),
        ev(104, "run.waiting"),
        ev(90_000, "decision.recorded"),
        ev(90_000, "run.resumed"),
        ev(90_002, "run.completed"),
    ]
    assert active_seconds(events) == 6.0
