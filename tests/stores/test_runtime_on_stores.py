"""The runtime's promises, on every store: runs complete, a failed run resumes without
re-running what completed, a cancelled run stays cancelled with its finished steps kept."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Parallel,
    ParallelResult,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    StepStatus,
    agent,
)


class Ticket(BaseModel):
    id: int
    text: str
    tags: list[str] = []


@pytest.fixture
async def rt(store_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(store_url, retry=NO_RETRY)
    try:
        yield runtime
    finally:
        await runtime.close()


def make_flow(calls: Counter[str], broken: set[str]) -> Sequential:
    """parse -> Parallel(classify, urgency) -> answer; a name in `broken` raises."""

    def hit(name: str) -> None:
        calls[name] += 1
        if name in broken:
            raise RuntimeError(f"{name} is broken")

    @agent
    async def parse(text: str) -> Ticket:
        hit("parse")
        return Ticket(id=7, text=text)

    @agent
    async def classify(t: Ticket) -> str:
        hit("classify")
        return "billing" if "invoice" in t.text else "other"

    @agent
    async def urgency(t: Ticket) -> int:
        hit("urgency")
        return 3

    @agent
    async def answer(p: ParallelResult) -> Ticket:
        hit("answer")
        return Ticket(id=7, text="done", tags=[p.results["classify"], str(p.results["urgency"])])

    return Sequential("triage", [parse, Parallel("fan", [classify, urgency]), answer])


async def test_sequential_and_parallel_run_to_completion(rt: Runtime) -> None:
    calls: Counter[str] = Counter()
    result = await rt.run(make_flow(calls, set()), "invoice missing")
    assert result.status == RunStatus.COMPLETED
    assert result.output == Ticket(id=7, text="done", tags=["billing", "3"])
    record = await rt.get_run(result.run_id)
    assert record.status == RunStatus.COMPLETED
    assert record.input == "invoice missing"
    assert Ticket.model_validate(record.output) == result.output
    steps = await rt.steps(result.run_id)
    assert {s.key for s in steps} == {
        "/triage",
        "/triage/parse#0",
        "/triage/fan#0",
        "/triage/fan#0/classify#0",
        "/triage/fan#0/urgency#0",
        "/triage/answer#0",
    }
    assert steps[0].key == "/triage" and steps[1].key == "/triage/parse#0"
    assert all(s.status == StepStatus.COMPLETED for s in steps)
    kinds = [e.kind for e in await rt.events(result.run_id)]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    assert kinds.count("step.completed") == 6
    assert calls == Counter(parse=1, classify=1, urgency=1, answer=1)


async def test_resume_after_failure_skips_completed_steps(rt: Runtime) -> None:
    calls: Counter[str] = Counter()
    broken = {"answer"}
    flow = make_flow(calls, broken)
    failed = await rt.run(flow, "invoice missing")
    assert failed.status == RunStatus.FAILED
    assert "answer is broken" in (failed.error or "")
    assert (await rt.get_run(failed.run_id)).status == RunStatus.FAILED
    by_key = {s.key: s.status for s in await rt.steps(failed.run_id)}
    assert by_key["/triage/answer#0"] == StepStatus.FAILED
    assert by_key["/triage/fan#0"] == StepStatus.COMPLETED

    broken.clear()  # fix what failed, then resume
    resumed = await rt.resume(failed.run_id, flow)
    assert resumed.status == RunStatus.COMPLETED
    assert resumed.output == Ticket(id=7, text="done", tags=["billing", "3"])
    assert calls == Counter(parse=1, classify=1, urgency=1, answer=2)
    assert all(s.status == StepStatus.COMPLETED for s in await rt.steps(failed.run_id))
    assert (await rt.get_run(failed.run_id)).status == RunStatus.COMPLETED
    kinds = [e.kind for e in await rt.events(failed.run_id)]
    assert "run.resumed" in kinds and kinds.count("step.replayed") >= 2
    seqs = [e.seq for e in await rt.events(failed.run_id)]
    assert seqs == sorted(set(seqs))

    again = await rt.resume(failed.run_id, flow)  # a completed run just answers
    assert again.status == RunStatus.COMPLETED and calls["answer"] == 2


async def test_resume_from_another_runtime(persistent_url: str) -> None:
    """A second Runtime (as another process would) resumes from the store alone."""
    calls: Counter[str] = Counter()
    broken = {"urgency"}
    flow = make_flow(calls, broken)
    first = Runtime(persistent_url, retry=NO_RETRY)
    try:
        failed = await first.run(flow, "hello")
    finally:
        await first.close()
    assert failed.status == RunStatus.FAILED
    broken.clear()
    second = Runtime(persistent_url, retry=NO_RETRY)
    try:
        resumed = await second.resume(failed.run_id, flow)
    finally:
        await second.close()
    assert resumed.status == RunStatus.COMPLETED
    assert resumed.output == Ticket(id=7, text="done", tags=["other", "3"])
    assert calls == Counter(parse=1, classify=1, urgency=2, answer=1)


async def test_cancel_keeps_completed_steps(rt: Runtime) -> None:
    entered = asyncio.Event()
    calls: Counter[str] = Counter()

    @agent
    async def fetch(x: int) -> int:
        calls["fetch"] += 1
        return x + 1

    @agent
    async def wait_forever(x: int) -> int:
        calls["wait"] += 1
        entered.set()
        await asyncio.Event().wait()
        return x

    @agent
    async def never(x: int, ctx: RunContext) -> int:
        calls["never"] += 1
        return x

    flow = Sequential("slow", [fetch, wait_forever, never])
    task = asyncio.create_task(rt.run(flow, 1, run_id="cancel-me"))
    await entered.wait()
    assert (await rt.get_run("cancel-me")).status == RunStatus.RUNNING
    await rt.cancel("cancel-me")
    result = await task
    assert result.status == RunStatus.CANCELLED
    record = await rt.get_run("cancel-me")
    assert record.status == RunStatus.CANCELLED
    steps = {s.key: s for s in await rt.steps("cancel-me")}
    assert steps["/slow/fetch#0"].status == StepStatus.COMPLETED
    assert steps["/slow/fetch#0"].output == 2
    assert steps["/slow/wait_forever#0"].status == StepStatus.STARTED
    assert "/slow/never#0" not in steps
    assert calls == Counter(fetch=1, wait=1)
    assert "run.cancelled" in [e.kind for e in await rt.events("cancel-me")]


async def test_run_statuses_are_listed(rt: Runtime) -> None:
    calls: Counter[str] = Counter()
    ok = await rt.run(make_flow(calls, set()), "a")
    bad = await rt.run(make_flow(calls, {"parse"}), "b")
    assert {r.run_id for r in await rt.list_runs(status="completed")} == {ok.run_id}
    assert {r.run_id for r in await rt.list_runs(status=RunStatus.FAILED)} == {bad.run_id}
    assert [r.run_id for r in await rt.list_runs()] == [bad.run_id, ok.run_id]
