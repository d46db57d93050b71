"""The runtime's promises, on every store: runs complete, a failed run resumes without
re-running what completed, a cancelled run stays cancelled with its finished steps kept."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    NO_RETRY,
    JournalUnavailable,
    OutputTypeError,
    Parallel,
    ParallelResult,
    RunContext,
    RunStatus,
    Runtime,
    Sequential,
    StepStatus,
    ToolContext,
    UsageError,
    agent,
    tool,
)
from podium.stores import open_store


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


# one run's bad value must not harm another ----------------------------------------------------
@pytest.mark.parametrize("bad", ["nan", "nul"])
async def test_one_runs_bad_value_does_not_cost_another_its_effect(
    persistent_url: str, bad: str
) -> None:
    """Run A's step returns NaN, or fails with a NUL byte in its error, in the very batch in
    which run B's charge completes. It used to fail the whole batch on Postgres: B lost the
    completed row of its charge, and charged again when resumed."""
    charges: list[str] = []
    waiting = 0
    gate = asyncio.Event()

    async def meet() -> None:  # both steps end in one loop iteration: one batch of rows
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            gate.set()
        await gate.wait()

    @tool(effect=True, idempotent=False)
    async def charge(amount: int, ctx: ToolContext) -> str:
        charges.append(ctx.idempotency_key)
        await meet()
        return f"charged {amount}"

    @agent
    async def pay(amount: int, ctx: RunContext) -> str:
        return str(await ctx.use(charge, {"amount": amount}))

    @agent
    async def ship(receipt: str) -> str:
        return f"shipped after {receipt}"

    @agent
    async def score(x: int) -> float:
        await meet()
        if bad == "nan":
            return math.nan
        raise ValueError("bad \x00 byte")

    order = Sequential("order", [pay, ship])
    rt = Runtime(persistent_url, retry=NO_RETRY)
    try:
        a, b = await asyncio.gather(rt.run(score, 1), rt.run(order, 30))
        assert (b.status, b.output) == (RunStatus.COMPLETED, "shipped after charged 30")
        again = await rt.resume(b.run_id, order)
        assert again.status == RunStatus.COMPLETED
        assert len(charges) == 1  # charged once, not twice
        steps = {s.key: s.status for s in await rt.steps(b.run_id)}
        assert steps["/order/pay#0/charge#0"] == StepStatus.COMPLETED
        record = await rt.get_run(a.run_id)
        if bad == "nan":  # kept as the float it is
            assert a.status == RunStatus.COMPLETED and math.isnan(a.output)
            assert record.status == RunStatus.COMPLETED and math.isnan(record.output)
        else:  # a clear failure, its NUL written as an escape
            assert a.status == record.status == RunStatus.FAILED
            assert "bad \\x00 byte" in (record.error or "")
    finally:
        await rt.close()


async def test_an_output_without_json_form_fails_its_step_on_every_store(rt: Runtime) -> None:
    """It used to be journaled as its repr(), and replayed as that string on resume."""

    class Receipt:
        pass

    @agent
    async def quote(x: int) -> Any:
        return {"receipt": Receipt()}

    @agent
    async def after(x: Any) -> str:
        return "never"

    result = await rt.run(Sequential("buy", [quote, after]), 1)
    assert result.status == RunStatus.FAILED
    assert isinstance(getattr(result.exception, "cause", None), OutputTypeError)
    assert "agent 'quote' at /buy/quote#0" in (result.error or "")
    assert "dict with no JSON form" in (result.error or "") and "Receipt" in (result.error or "")
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/buy/quote#0"].status == StepStatus.FAILED
    assert steps["/buy/quote#0"].output is None
    assert "/buy/after#0" not in steps


async def test_a_journal_write_that_fails_stops_the_run(persistent_url: str) -> None:
    """The database refuses one step's completed row (a trigger stands in for a full disk).
    That used to be a step failure like any other, and a `Parallel` took it for a gap and went
    on to the next step. Now the run stops there, still `running`, and resumes once the
    store writes again; only the step whose row was lost runs again."""
    calls: Counter[str] = Counter()

    def hit(name: str) -> str:
        calls[name] += 1
        return name

    @agent
    async def left(x: int) -> str:
        return hit("left")

    @agent
    async def right(x: int) -> str:
        return hit("right")

    @agent
    async def then(p: ParallelResult) -> str:
        return hit("then")

    flow = Sequential("flow", [Parallel("both", [left, right], min_success=1), then])
    await _refuse_rows(persistent_url, "%right%")
    rt = Runtime(persistent_url, retry=NO_RETRY)
    try:
        result = await rt.run(flow, 1)
        assert result.status == RunStatus.RUNNING
        assert isinstance(result.exception, JournalUnavailable)
        assert "/flow/both#0/right#0" in (result.error or "")
        assert calls == Counter(left=1, right=1)  # nothing after the lost row started
        assert (await rt.get_run(result.run_id)).status == RunStatus.RUNNING
        await _refuse_rows(persistent_url, None)
        resumed = await rt.resume(result.run_id, flow)
        assert resumed.status == RunStatus.COMPLETED
        assert calls == Counter(left=1, right=2, then=1)
    finally:
        await rt.close()


async def _refuse_rows(url: str, keys: str | None) -> None:
    """Make the database refuse completed step rows whose key is LIKE `keys` (None: stop)."""
    made = open_store(url)  # the tables, before a trigger is put on one
    await made.open()
    await made.close()
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for event in ("INSERT", "UPDATE"):
                conn.execute(f"DROP TRIGGER IF EXISTS refuse_{event}")
                if keys is not None:
                    conn.execute(
                        f"CREATE TRIGGER refuse_{event} BEFORE {event} ON steps "
                        f"WHEN NEW.key LIKE '{keys}' AND NEW.status = 'completed' "
                        "BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
                    )
        finally:
            conn.close()
        return
    import asyncpg

    conn2 = await asyncpg.connect(url)
    try:
        await conn2.execute("DROP TRIGGER IF EXISTS refuse ON steps")
        if keys is not None:
            await conn2.execute(
                "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.key LIKE '{keys}' AND NEW.status = 'completed' THEN "
                "RAISE EXCEPTION 'disk I/O error (injected)'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            await conn2.execute(
                "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON steps "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    finally:
        await conn2.close()


@agent
async def plus_one(x: int) -> int:
    return x + 1


@pytest.mark.parametrize("run_id", ["", "a\x00b", "lone \ud800", "x" * 201, "line\nbreak"])
async def test_a_hostile_run_id_is_a_usage_error_and_writes_nothing(
    rt: Runtime, run_id: str
) -> None:
    """On Postgres a NUL, a lone surrogate or an id past the index limit gave the driver's
    raw traceback; an empty id started a run with a random one."""
    with pytest.raises(UsageError, match="run id"):
        await rt.run(plus_one, 1, run_id=run_id)
    with pytest.raises(UsageError, match="run id"):
        await rt.submit(plus_one, 1, run_id=run_id)
    with pytest.raises(UsageError, match="run id"):
        await rt.resume(run_id, plus_one)
    assert await rt.list_runs() == []


async def test_a_run_id_of_200_printable_characters_is_kept(rt: Runtime) -> None:
    run_id = "é-" * 100
    done = await rt.run(plus_one, 1, run_id=run_id)
    assert (done.run_id, done.output) == (run_id, 2)
    assert (await rt.get_run(run_id)).status == RunStatus.COMPLETED


async def test_looking_up_a_hostile_run_id_is_a_usage_error(rt: Runtime) -> None:
    """`podium show` with an id that is not valid Unicode gave the Postgres driver's traceback."""
    for look in (rt.get_run, rt.steps, rt.events, rt.cancel):
        with pytest.raises(UsageError, match="cannot be printed or stored"):
            await look("bad\udcffid")
    with pytest.raises(UsageError, match="no run with id"):
        await rt.get_run("x" * 300)  # long, but printable: simply not there
