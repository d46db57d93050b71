"""One conformance suite for every store: memory, SQLite, Postgres.

Each test runs once per backend (see `store_url` in tests/conftest.py). Persistent stores
hand outputs back as plain JSON; the memory store hands back the very object, so value
checks compare the JSON form.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest
from pydantic import BaseModel

from podium.core.records import Event, RunRecord, RunStatus, StepRecord, StepStatus, Usage
from podium.core.serde import to_plain
from podium.errors import JournalUnavailable, LeaseLost, OutputTypeError, UsageError
from podium.stores import Store, open_store
from podium.testing import FakeClock


class Address(BaseModel):
    city: str
    zip: str


class Customer(BaseModel):
    name: str
    address: Address
    tags: list[str]


@dataclasses.dataclass
class Point:
    x: int
    y: float


def make_run(run_id: str, created: float, **kw: object) -> RunRecord:
    return RunRecord(
        run_id,
        kw.pop("agent", "flow"),  # type: ignore[arg-type]
        kw.pop("status", RunStatus.RUNNING),  # type: ignore[arg-type]
        created_at=created,
        updated_at=created,
        **kw,  # type: ignore[arg-type]
    )


def make_step(run_id: str, key: str, started: float, **kw: object) -> StepRecord:
    name = key.rsplit("/", 1)[-1].split("#")[0]
    return StepRecord(
        run_id,
        key,
        name,
        "agent",
        StepStatus.STARTED,
        started_at=started,
        **kw,  # type: ignore[arg-type]
    )


async def reopen(store: Store) -> Store:
    """Close the store and open a new instance on the same URL."""
    await store.close()
    fresh = open_store(store.url)
    await fresh.open()
    return fresh


async def test_store_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)


async def test_create_and_get_run(store: Store) -> None:
    run = make_run("r1", 1000.5, input={"order": 7, "note": "rush"}, target="mod:flow")
    await store.create_run(run)
    got = await store.get_run("r1")
    assert got is not None
    assert (got.run_id, got.agent, got.status) == ("r1", "flow", RunStatus.RUNNING)
    assert got.input == {"order": 7, "note": "rush"}
    assert got.target == "mod:flow"
    assert got.created_at == pytest.approx(1000.5)
    assert got.output is None and got.error is None
    assert got.usage == Usage()
    assert await store.get_run("nope") is None


async def test_duplicate_run_id_is_a_usage_error(store: Store) -> None:
    await store.create_run(make_run("dup", 1.0))
    with pytest.raises(UsageError, match="dup"):
        await store.create_run(make_run("dup", 2.0, agent="other"))
    got = await store.get_run("dup")
    assert got is not None and got.agent == "flow"
    # the store still works after the refused insert
    await store.create_run(make_run("dup2", 3.0))
    assert await store.get_run("dup2") is not None


async def test_update_run_sets_given_fields(store: Store) -> None:
    await store.create_run(make_run("u", 1.0))
    before = time.time()
    await store.update_run("u", status=RunStatus.FAILED, error="boom")
    got = await store.get_run("u")
    assert got is not None
    assert (got.status, got.error, got.output) == (RunStatus.FAILED, "boom", None)
    assert got.updated_at >= before - 1

    usage = Usage(10, 5, 2)
    await store.update_run("u", status=RunStatus.COMPLETED, output={"ok": [1, 2]}, usage=usage)
    got = await store.get_run("u")
    assert got is not None
    assert (got.status, got.error, got.output) == (RunStatus.COMPLETED, None, {"ok": [1, 2]})
    assert got.usage == usage

    # no output given: the stored output stays
    await store.update_run("u", status=RunStatus.RUNNING)
    got = await store.get_run("u")
    assert got is not None
    assert (got.status, got.output, got.usage) == (RunStatus.RUNNING, {"ok": [1, 2]}, usage)


async def test_list_runs_newest_first_with_filter_and_limit(store: Store) -> None:
    statuses = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.COMPLETED, RunStatus.RUNNING]
    for i, status in enumerate(statuses):
        await store.create_run(make_run(f"run{i}", 100.0 + i, status=status))
    assert [r.run_id for r in await store.list_runs()] == ["run3", "run2", "run1", "run0"]
    assert [r.run_id for r in await store.list_runs(limit=2)] == ["run3", "run2"]
    done = await store.list_runs(status=RunStatus.COMPLETED)
    assert [r.run_id for r in done] == ["run2", "run0"]
    assert [r.run_id for r in await store.list_runs(status=RunStatus.COMPLETED, limit=1)] == [
        "run2"
    ]
    assert await store.list_runs(status=RunStatus.WAITING) == []


async def test_started_then_finished_is_one_row(store: Store) -> None:
    await store.create_run(make_run("s", 1.0))
    step = make_step("s", "/flow", 10.0)
    store.record_started(step)
    await store.flush()
    [row] = await store.load_steps("s")
    assert (row.key, row.status, row.output, row.ended_at) == (
        "/flow",
        StepStatus.STARTED,
        None,
        None,
    )

    step.status = StepStatus.COMPLETED
    step.output = {"answer": 42}
    step.attempt = 2
    step.ended_at = 11.5
    step.usage = Usage(3, 4, 1)
    await store.record_finished(step)
    [row] = await store.load_steps("s")
    assert row.status == StepStatus.COMPLETED
    assert row.output == {"answer": 42}
    assert (row.attempt, row.agent, row.kind) == (2, "flow", "agent")
    assert row.started_at == pytest.approx(10.0)
    assert row.ended_at == pytest.approx(11.5)
    assert row.usage == Usage(3, 4, 1)
    assert row.duration == pytest.approx(1.5)


async def test_failed_step_can_be_started_again(store: Store) -> None:
    """A resume re-runs a failed step: its row goes back to started, then completed."""
    await store.create_run(make_run("f", 1.0))
    step = make_step("f", "/flow/a#0", 1.0)
    step.status, step.error, step.ended_at = StepStatus.FAILED, "ValueError: no", 2.0
    await store.record_finished(step)
    again = make_step("f", "/flow/a#0", 5.0)
    store.record_started(again)
    await store.flush()
    [row] = await store.load_steps("f")
    assert (row.status, row.error, row.ended_at) == (StepStatus.STARTED, None, None)
    again.status, again.output, again.ended_at = StepStatus.COMPLETED, "yes", 6.0
    await store.record_finished(again)
    [row] = await store.load_steps("f")
    assert (row.status, row.output, row.error) == (StepStatus.COMPLETED, "yes", None)


async def test_load_steps_in_start_order(store: Store) -> None:
    await store.create_run(make_run("o", 1.0))
    await store.create_run(make_run("other", 1.0))
    keys = ["/flow", "/flow/b#0", "/flow/a#0", "/flow/a#1", "/flow/c#0"]
    steps = [make_step("o", key, 100.0 + i) for i, key in enumerate(keys)]
    for s in steps:
        store.record_started(s)
    store.record_started(make_step("other", "/x", 50.0))
    # finish in another order than they started
    for s in reversed(steps):
        s.status, s.output, s.ended_at = StepStatus.COMPLETED, s.key, 200.0
        await store.record_finished(s)
    rows = await store.load_steps("o")
    assert [r.key for r in rows] == keys
    assert [r.output for r in rows] == keys
    assert all(r.status == StepStatus.COMPLETED for r in rows)
    assert await store.load_steps("missing") == []


async def test_events_in_seq_order_with_all_fields(store: Store) -> None:
    await store.create_run(make_run("e", 1.0))
    await store.create_run(make_run("e2", 1.0))
    kinds = ["run.started", "step.started", "step.completed", "route.decision", "run.completed"]
    for seq, kind in enumerate(kinds, start=1):
        store.record_event(
            Event(
                "e",
                seq,
                1000.0 + seq,
                kind,
                "/flow" if seq > 1 else "",
                "flow",
                1 if "step" in kind else 0,
                0.25 if kind == "step.completed" else None,
                Usage(1, 2, 1) if kind == "step.completed" else None,
                {"route": "billing", "score": 0.9} if kind == "route.decision" else None,
            )
        )
    store.record_event(Event("e2", 1, 1.0, "run.started"))
    await store.flush()
    events = await store.list_events("e")
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.kind for e in events] == kinds
    assert events[0].key == "" and events[1].key == "/flow"
    done = events[2]
    assert (done.attempt, done.duration, done.usage) == (1, pytest.approx(0.25), Usage(1, 2, 1))
    assert events[3].data == {"route": "billing", "score": 0.9}
    assert events[4].to_dict()["ts"] == pytest.approx(1005.0)
    assert [e.run_id for e in await store.list_events("e2")] == ["e2"]
    assert await store.list_events("missing") == []


async def test_json_round_trip_is_plain_json(store: Store, store_kind: str) -> None:
    customer = Customer(name="Ada", address=Address(city="Paris", zip="75001"), tags=["vip"])
    output = {"customer": customer, "point": Point(1, 2.5), "z_first": 1, "a_last": [None, True]}
    await store.create_run(make_run("j", 1.0, input=customer))
    step = make_step("j", "/flow", 1.0)
    step.status, step.output, step.ended_at = StepStatus.COMPLETED, output, 2.0
    await store.record_finished(step)
    await store.update_run("j", status=RunStatus.COMPLETED, output=Point(3, 4.0))

    [row] = await store.load_steps("j")
    run = await store.get_run("j")
    assert run is not None
    assert to_plain(row.output) == to_plain(output)
    assert to_plain(run.input) == {
        "name": "Ada",
        "address": {"city": "Paris", "zip": "75001"},
        "tags": ["vip"],
    }
    assert to_plain(run.output) == {"x": 3, "y": 4.0}
    if store_kind != "memory":
        # plain JSON, object keys in the order they were written; replay re-validates
        assert row.output["customer"] == {
            "name": "Ada",
            "address": {"city": "Paris", "zip": "75001"},
            "tags": ["vip"],
        }
        assert list(row.output) == ["customer", "point", "z_first", "a_last"]
        assert Customer.model_validate(row.output["customer"]) == customer


async def test_unicode_round_trips(store: Store) -> None:
    text = 'naïve café — 東京 🚀 مرحبا \u2028 "quoted" \\ back'
    await store.create_run(make_run("uni", 1.0, input={"q": text}))
    step = make_step("uni", "/flow", 1.0)
    step.status, step.output, step.error = StepStatus.FAILED, {text: [text]}, f"ValueError: {text}"
    await store.record_finished(step)
    store.record_event(Event("uni", 1, 1.0, "custom", "/flow", "flow", data={"msg": text}))
    await store.update_run("uni", status=RunStatus.FAILED, error=text)
    await store.flush()
    run = await store.get_run("uni")
    assert run is not None and run.input == {"q": text} and run.error == text
    [row] = await store.load_steps("uni")
    assert row.output == {text: [text]} and row.error == f"ValueError: {text}"
    [event] = await store.list_events("uni")
    assert event.data == {"msg": text}


async def test_flush_makes_buffered_writes_visible(store: Store, store_kind: str) -> None:
    await store.create_run(make_run("fl", 1.0))
    store.record_started(make_step("fl", "/flow", 1.0))
    store.record_event(Event("fl", 1, 1.0, "run.started"))
    await store.flush()
    if store_kind == "memory":
        readers = [store]
    else:  # another connection (as another process would have) sees them too
        other = open_store(store.url)
        await other.open()
        readers = [store, other]
    try:
        for reader in readers:
            assert [s.key for s in await reader.load_steps("fl")] == ["/flow"]
            assert [e.kind for e in await reader.list_events("fl")] == ["run.started"]
    finally:
        if store_kind != "memory":
            await other.close()


async def test_close_and_reopen_keeps_everything(persistent_url: str) -> None:
    store = open_store(persistent_url)
    await store.open()
    await store.create_run(make_run("keep", 1.0, input=[1, 2]))
    step = make_step("keep", "/flow", 1.0)
    store.record_started(step)
    store.record_event(Event("keep", 1, 1.0, "run.started"))
    step.status, step.output, step.ended_at = StepStatus.COMPLETED, "done", 2.0
    await store.record_finished(step)
    store.record_event(Event("keep", 2, 2.0, "run.completed"))  # buffered: close flushes it
    await store.update_run("keep", status=RunStatus.COMPLETED, output="done")
    store = await reopen(store)
    try:
        run = await store.get_run("keep")
        assert run is not None and (run.status, run.output, run.input) == (
            RunStatus.COMPLETED,
            "done",
            [1, 2],
        )
        [row] = await store.load_steps("keep")
        assert (row.status, row.output) == (StepStatus.COMPLETED, "done")
        assert [e.kind for e in await store.list_events("keep")] == ["run.started", "run.completed"]
    finally:
        await store.close()


async def test_started_row_is_a_snapshot(persistent_url: str) -> None:
    """The door mutates a StepRecord after `record_started`; the stored row must not move."""
    store = open_store(persistent_url)
    await store.open()
    try:
        await store.create_run(make_run("snap", 1.0))
        step = make_step("snap", "/flow", 1.0)
        store.record_started(step)
        step.status, step.output = StepStatus.COMPLETED, "later"
        await store.flush()
        [row] = await store.load_steps("snap")
        assert (row.status, row.output) == (StepStatus.STARTED, None)
    finally:
        await store.close()


async def test_closed_store_refuses_work(persistent_url: str) -> None:
    store = open_store(persistent_url)
    with pytest.raises(UsageError, match="not open"):
        store.record_started(make_step("x", "/flow", 1.0))
    await store.open()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(UsageError, match="not open"):
        await store.get_run("x")


# one bad value harms nobody else ---------------------------------------------------------------
async def test_nan_and_infinity_round_trip_as_floats(store: Store) -> None:
    """JSON has no NaN or Infinity (Postgres' json type refuses the bare tokens): they are kept
    so that they come back as the floats they were, and the word "NaN" as the word."""
    value = {"score": math.nan, "hi": [math.inf, -math.inf], "word": "NaN", "n": 1.5}
    await store.create_run(make_run("nan", 1.0, input=value))
    step = make_step("nan", "/flow", 1.0)
    step.status, step.output, step.ended_at = StepStatus.COMPLETED, value, 2.0
    await store.record_finished(step)
    store.record_event(Event("nan", 1, 1.0, "custom", "/flow", "flow", data=value))
    await store.update_run("nan", status=RunStatus.COMPLETED, output=value)
    await store.flush()
    run = await store.get_run("nan")
    [row] = await store.load_steps("nan")
    [event] = await store.list_events("nan")
    assert run is not None
    for got in (row.output, event.data, run.input, run.output):
        assert math.isnan(got["score"]) and got["hi"] == [math.inf, -math.inf]
        assert (got["word"], got["n"]) == ("NaN", 1.5)


class Opaque:
    """A class no store knows how to keep."""


async def test_an_output_without_json_form_is_refused_naming_agent_step_and_type(
    store: Store,
) -> None:
    """It used to be kept as its `repr()`, a string that then replayed as the output."""
    await store.create_run(make_run("opq", 1.0))
    store.record_started(make_step("opq", "/flow/pay#0", 1.0))
    done = make_step("opq", "/flow/pay#0", 1.0)
    done.status, done.output, done.ended_at = StepStatus.COMPLETED, {"receipt": Opaque()}, 2.0
    with pytest.raises(OutputTypeError, match=r"'pay' at /flow/pay#0.*dict.*Opaque") as info:
        await store.record_finished(done)
    assert "cannot be journaled" in str(info.value)
    await store.flush()
    [row] = await store.load_steps("opq")
    assert (row.status, row.output) == (StepStatus.STARTED, None)  # nothing of it was written


async def test_text_a_store_cannot_hold_is_kept_escaped(store: Store, store_kind: str) -> None:
    """NUL (which Postgres text cannot hold) and lone surrogates (which UTF-8 cannot) in an
    error message are written as escapes; the rows of another run in the same batch land."""
    await store.create_run(make_run("bad", 1.0))
    await store.create_run(make_run("good", 1.0))
    bad = make_step("bad", "/flow", 1.0)
    bad.status, bad.error, bad.ended_at = StepStatus.FAILED, "ValueError: a\x00b \ud800", 2.0
    good = make_step("good", "/flow", 1.0)
    good.status, good.output, good.ended_at = StepStatus.COMPLETED, "charged", 2.0
    await asyncio.gather(store.record_finished(bad), store.record_finished(good))
    await store.update_run("bad", status=RunStatus.FAILED, error="boom\x00")
    [row] = await store.load_steps("good")
    assert (row.status, row.output) == (StepStatus.COMPLETED, "charged")
    [row] = await store.load_steps("bad")
    run = await store.get_run("bad")
    assert run is not None
    if store_kind == "memory":  # keeps the very objects
        assert row.error == "ValueError: a\x00b \ud800"
    else:
        assert row.error == "ValueError: a\\x00b \\ud800"
        assert run.error == "boom\\x00"


async def test_a_row_that_cannot_be_written_fails_alone(persistent_url: str) -> None:
    """One row the database refuses (here a NOT NULL column left empty) fails its own writer;
    another run's row sent in the same batch is written."""
    store = open_store(persistent_url)
    await store.open()
    try:
        await store.create_run(make_run("a", 1.0))
        await store.create_run(make_run("b", 1.0))
        bad = make_step("a", "/flow", 1.0)
        bad.agent = None  # type: ignore[assignment]
        bad.status = StepStatus.COMPLETED
        good = make_step("b", "/flow/charge#0", 1.0)
        good.status, good.output = StepStatus.COMPLETED, {"charged": 30}
        outcomes = await asyncio.gather(
            store.record_finished(bad), store.record_finished(good), return_exceptions=True
        )
        assert isinstance(outcomes[0], JournalUnavailable)
        assert outcomes[1] == len('{"charged":30}')  # the bytes of the output kept
        [row] = await store.load_steps("b")
        assert (row.status, row.output) == (StepStatus.COMPLETED, {"charged": 30})
        assert await store.load_steps("a") == []
    finally:
        await store.close()


# leases ------------------------------------------------------------------------------------------
async def test_a_lease_is_exclusive_until_it_runs_out(store: Store, clock: FakeClock) -> None:
    first = await store.claim_lease("run-1", "worker-a", 30, holder={"host": "h", "pid": 1})
    assert first is not None and first.epoch >= 1 and first.holder == {"host": "h", "pid": 1}
    assert first.until == clock.now() + 30
    assert await store.claim_lease("run-1", "worker-b", 30) is None
    held = await store.get_lease("run-1")
    assert held is not None and (held.owner, held.epoch) == ("worker-a", first.epoch)
    await clock.advance(20)
    renewed = await store.renew_lease(first, 30)
    assert renewed is not None and renewed.until == first.until + 20
    await clock.advance(29)
    assert await store.claim_lease("run-1", "worker-b", 30) is None  # renewed: still live
    await clock.advance(1.5)
    second = await store.claim_lease("run-1", "worker-b", 30)  # ran out: taken
    assert second is not None and second.epoch > first.epoch
    assert await store.renew_lease(first, 0.3) is None  # the old holder cannot renew it
    await store.release_lease(first)  # nor let it go
    assert (await store.get_lease("run-1")).owner == "worker-b"  # type: ignore[union-attr]
    await store.release_lease(second)
    assert await store.get_lease("run-1") is None
    third = await store.claim_lease("run-1", "worker-a", 0.3)
    assert third is not None and third.epoch > second.epoch  # epochs only grow


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    wins = await asyncio.gather(*(store.claim_lease("r", f"w{i}", 5) for i in range(20)))
    assert sum(w is not None for w in wins) == 1


async def test_a_lease_of_a_known_dead_holder_can_be_stolen(store: Store) -> None:
    dead = await store.claim_lease("r", "dead-worker", 60)
    assert dead is not None
    assert await store.claim_lease("r", "me", 60) is None
    assert await store.claim_lease("r", "me", 60, steal=dead.epoch + 1) is None
    mine = await store.claim_lease("r", "me", 60, steal=dead.epoch)
    assert mine is not None and mine.epoch == dead.epoch + 1
    assert (await store.get_lease("r")).owner == "me"  # type: ignore[union-attr]


async def test_a_holder_that_lost_its_lease_is_fenced(
    persistent_url: str, clock: FakeClock
) -> None:
    """Store `a` (a process that stalled) holds the run; its lease runs out and store `b`
    (another process) claims it. Every later write of `a` for that run is refused, inside
    the write itself; `b` writes as usual."""
    a, b = open_store(persistent_url, clock=clock), open_store(persistent_url, clock=clock)
    await a.open()
    await b.open()
    try:
        await a.create_run(make_run("r", 1.0))
        lease = await a.claim_lease("r", "a", 30)
        assert lease is not None
        step = make_step("r", "/flow/one#0", 1.0)
        step.status, step.output = StepStatus.COMPLETED, "a did it"
        await a.record_finished(step)  # still the holder
        assert await b.claim_lease("r", "b", 30) is None  # live: b waits
        await clock.advance(30.5)
        assert await b.claim_lease("r", "b", 30) is not None
        late = make_step("r", "/flow/two#0", 2.0)
        a.record_started(late)
        a.record_event(Event("r", 7, 2.0, "step.started", "/flow/two#0", "two"))
        late.status, late.output = StepStatus.COMPLETED, "a, too late"
        with pytest.raises(LeaseLost, match="r: another process took over"):
            await a.record_finished(late)
        with pytest.raises(LeaseLost):
            await a.update_run("r", status=RunStatus.FAILED, error="a gives up")
        assert await a.renew_lease(lease, 30) is None
        await a.flush("r")  # the dropped rows are not an error of their own
        mine = make_step("r", "/flow/two#0", 3.0)
        mine.status, mine.output = StepStatus.COMPLETED, "b did it"
        await b.record_finished(mine)
        await b.update_run("r", status=RunStatus.COMPLETED, output="b did it")
        steps = {s.key: s.output for s in await b.load_steps("r")}
        assert steps == {"/flow/one#0": "a did it", "/flow/two#0": "b did it"}
        assert await b.list_events("r") == []
        run = await b.get_run("r")
        assert run is not None and (run.status, run.error) == (RunStatus.COMPLETED, None)
    finally:
        await a.close()
        await b.close()


# audit ---------------------------------------------------------------------------------------
async def test_audited_events_are_chained_and_others_are_not(store: Store) -> None:
    from podium.core.audit import GENESIS, draft
    from podium.governance.audit import verify

    await store.create_run(make_run("a", 1.0))
    store.record_event(Event("a", 1, 1.0, "step.started", "/f", "f"))
    store.record_event(Event("a", 2, 1.5, "policy.denied", "/f", "f", data={"tool": "t"}))
    store.record_event(Event("a", 3, 2.0, "run.config", "", "f", data={"agent": "f"}))
    store.record_event(Event("a", 3, 2.0, "run.config", "", "f", data={"agent": "f"}))  # again
    await store.flush("a")
    records = await store.load_audit("a")
    assert [(r.seq, r.kind) for r in records] == [(1, "policy.denied"), (2, "run.config")]
    assert records[0].prev_hash == GENESIS and records[1].prev_hash == records[0].hash
    assert records[0].value["data"] == {"tool": "t"} and records[0].actor == "f"
    appended = await store.append_audit([draft("a", "approval.used", 3.0, "bob", {"h": "x"})])
    assert [r.seq for r in appended] == [3] and appended[0].prev_hash == records[1].hash
    head = await store.audit_head("a")
    assert head is not None and (head.seq, head.hash) == (3, appended[0].hash)
    assert await store.audit_runs() == ["a"]
    assert await store.load_audit("nope") == [] and await store.audit_head("nope") is None
    chain = await store.load_audit("a")
    assert verify(chain, {"a": head}, key=None).ok


async def test_a_decision_event_commits_with_its_step_row(store: Store) -> None:
    """The event recorded right before `record_finished` (no await between) is durable
    when `record_finished` returns, its audit record with it."""
    await store.create_run(make_run("d", 1.0))
    step = make_step("d", "/f/ok#0", 1.0)
    step.status, step.output = StepStatus.COMPLETED, {"action": "approve"}
    store.record_event(Event("d", 1, 1.0, "decision.recorded", step.key, "ok", data={"by": "a"}))
    await store.record_finished(step)
    assert [r.kind for r in await store.load_audit("d")] == ["decision.recorded"]


async def test_purge_run_deletes_payloads_and_chains_their_hashes(store: Store) -> None:
    from podium.core.audit import sha256
    from podium.governance.audit import verify

    await store.create_run(make_run("p", 1.0, input={"card": "4111"}))
    step = make_step("p", "/f#0", 1.0)
    step.status, step.output, step.error = StepStatus.FAILED, None, "boom 4111"
    await store.record_finished(step)
    store.record_event(Event("p", 1, 1.0, "effect.executed", "/f#0", "f", data={"x": "4111"}))
    await store.update_run("p", status=RunStatus.FAILED, output={"o": "4111"}, error="e 4111")
    await store.kv_put("dlq", "p", {"run_id": "p", "agent": "f", "error": "4111", "at": 2.0})
    await store.kv_put("dlq", "other", {"run_id": "other", "error": "4111"})
    done = await store.purge_run("p", at=5.0, actor="ops", kv=[("dlq", "p")])
    assert done is not None and (done.kind, done.seq, done.actor) == ("purge.done", 2, "ops")
    deleted = done.value["deleted"]
    assert set(deleted) == {
        "run.input",
        "run.output",
        "run.error",
        "step./f#0.error",
        "event.1.data",
        "kv.dlq.p",
    }
    assert deleted["run.error"] == sha256("e 4111") and done.value["audit_payloads"] == 1
    run = await store.get_run("p")
    assert run is not None and (run.input, run.output, run.error) == (None, None, None)
    assert [s.error for s in await store.load_steps("p")] == [None]
    assert [e.data for e in await store.list_events("p")] == [None]
    entry = await store.kv_get("dlq", "p")
    assert entry == {"run_id": "p", "agent": "f", "at": 2.0, "purged": deleted["kv.dlq.p"]}
    assert (await store.kv_get("dlq", "other"))["error"] == "4111"
    chain = await store.load_audit("p")
    assert chain[0].payload is None and chain[1].payload is not None
    assert verify(chain, {"p": await store.audit_head("p")}, key=None).ok
    assert await store.purge_run("p", at=6.0, actor="ops") is None
    with pytest.raises(UsageError, match="no run 'nope'"):
        await store.purge_run("nope", at=6.0, actor="ops")


async def test_two_store_instances_extend_one_chain(persistent_url: str) -> None:
    """A decision written by another process joins the run's chain: the link is read from
    the table inside the writing transaction."""
    from podium.governance.audit import verify

    a, b = open_store(persistent_url), open_store(persistent_url)
    await a.open()
    await b.open()
    try:
        await a.create_run(make_run("x", 1.0))
        for i in range(1, 41):
            writer = a if i % 2 else b
            writer.record_event(Event("x", i, float(i), "policy.denied", "/f", "f"))
            await writer.flush("x")
        chain = await a.load_audit("x")
        assert [r.seq for r in chain] == list(range(1, 41))
        assert verify(chain, {"x": await b.audit_head("x")}, key=None).ok
    finally:
        await a.close()
        await b.close()


async def test_a_fenced_audited_event_is_not_chained(persistent_url: str, clock: FakeClock) -> None:
    a, b = open_store(persistent_url, clock=clock), open_store(persistent_url, clock=clock)
    await a.open()
    await b.open()
    try:
        await a.create_run(make_run("r", 1.0))
        assert await a.claim_lease("r", "a", 30) is not None
        await clock.advance(30.5)
        assert await b.claim_lease("r", "b", 30) is not None
        a.record_event(Event("r", 1, 2.0, "effect.executed", "/f", "f"))
        await a.flush("r")
        assert await b.load_audit("r") == [] and await b.audit_head("r") is None
    finally:
        await a.close()
        await b.close()
