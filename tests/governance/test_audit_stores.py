"""The audit chain on every store, written by real runs: which events are chained, who
decided, tampering with the stored rows by SQL (a flipped byte, a deleted row, swapped
rows), signing, and purging payloads while the chain still verifies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from podium import Decision, HumanApproval, RunContext, RunStatus, Runtime, agent, tool
from podium.errors import UsageError
from podium.governance.audit import FIELDS_TO_FLIP
from podium.governance.hashing import args_hash
from podium.patterns import Sequential
from podium.runtime.audit import purge, verify_store
from podium.runtime.waiting import os_user
from podium.stores import Store
from podium.testing.audit import tamper

CANARY = "CANARY-4111-1111-1111-1111"


@tool(effect=True, idempotent=True)
def pay(amount: int, to: str) -> str:
    return f"paid {amount} to {to}"


@agent
async def payer(order: dict[str, Any], ctx: RunContext) -> str:
    ctx.emit("policy.denied", tool="wire", rule="no-wire", reason="not granted")
    ctx.emit("approval.granted", tool="pay", args_hash="x", by="alice", user="alice")
    ctx.emit("note", text="not audited")
    result: str = await ctx.use(pay, {"amount": order["amount"], "to": order["to"]})
    return result + " " + order.get("memo", "")


flow = Sequential("flow", [payer, HumanApproval("ok")])


async def run_one(rt: Runtime, memo: str = "") -> str:
    result = await rt.run(payer, {"amount": 5, "to": "bob", "memo": memo})
    assert result.status == RunStatus.COMPLETED, result.error
    return result.run_id


async def kinds(store: Store, run_id: str) -> list[str]:
    return [r.kind for r in await store.load_audit(run_id)]


async def test_security_events_are_chained_with_the_run(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        run_id = await run_one(rt)
        store = await rt.open()
        records = await store.load_audit(run_id)
        assert [r.kind for r in records] == [
            "run.config",
            "policy.denied",
            "approval.granted",
            "effect.executed",
        ]
        assert [r.seq for r in records] == [1, 2, 3, 4]
        config, _, _approval, effect = (r.value for r in records)
        assert config["data"]["agent"] == "payer"
        assert records[2].actor == "alice"
        assert effect["data"] == {
            "tool": "pay",
            "args_hash": args_hash("pay", {"amount": 5, "to": "bob"}),
        }
        head = await store.audit_head(run_id)
        assert head is not None and (head.seq, head.hash) == (4, records[-1].hash)
        report = await verify_store(store)
        assert report.ok, str(report)
        assert report.records == 4


async def test_a_decision_is_chained_with_the_os_user(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        waiting = await rt.run(flow, {"amount": 5, "to": "bob"})
        assert waiting.status == RunStatus.WAITING
        done = await rt.resume(waiting.run_id, flow, decision=Decision.approve(by="alice"))
        assert done.status == RunStatus.COMPLETED, done.error
        store = await rt.open()
        records = await store.load_audit(waiting.run_id)
        (decision,) = [r for r in records if r.kind == "decision.recorded"]
        assert decision.actor == os_user()
        assert decision.value["data"] == {
            "step": "/flow/ok#0/ok.decision#0",
            "action": "approve",
            "by": "alice",
            "user": os_user(),
        }
        events = await store.list_events(waiting.run_id)
        assert [e.kind for e in events].count("decision.recorded") == 1
        assert len({e.seq for e in events}) == len(events)  # the decision took the next seq
        assert (await verify_store(store, waiting.run_id)).ok


CASES = [("flip", f) for f in FIELDS_TO_FLIP] + [("delete", "hash"), ("swap", "hash")]


@pytest.mark.parametrize(("how", "field"), CASES)
async def test_tampering_with_a_stored_record_is_named(
    store_url: str, how: str, field: str
) -> None:
    async with Runtime(store_url) as rt:
        other = await run_one(rt)
        run_id = await run_one(rt)
        store = await rt.open()
        await tamper(store, run_id, 2, how, field, index=5)  # type: ignore[arg-type]
        report = await verify_store(store)
        assert not report.ok
        (brk,) = report.breaks  # the other run is intact
        assert brk.run_id == run_id and brk.run_id != other
        # a deleted row, or a seq moved away, shows as a gap at record 3
        expected = 3 if how == "delete" or field == "seq" else 2
        assert brk.seq == expected, str(brk)
        assert f"run {run_id} audit record {expected}" in str(report)
        assert not (await verify_store(store, run_id)).ok
        assert (await verify_store(store, other)).ok


async def test_deleting_the_last_records_is_caught(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        run_id = await run_one(rt)
        store = await rt.open()
        await tamper(store, run_id, 4, "delete")
        brk = (await verify_store(store)).first
        assert brk is not None and (brk.seq, brk.problem) == (4, "head")


async def test_signed_heads(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_AUDIT_KEY", "k1")
    async with Runtime(store_url) as rt:
        run_id = await run_one(rt)
        store = await rt.open()
        head = await store.audit_head(run_id)
        assert head is not None and head.signature
        good = await verify_store(store, require_signature=True)
        assert good.ok and good.signatures[run_id] == "signed"
        monkeypatch.setenv("PODIUM_AUDIT_KEY", "k2")
        bad = await verify_store(store)
        assert bad.first is not None and bad.first.problem == "signature"
        monkeypatch.delenv("PODIUM_AUDIT_KEY")
        unsigned_run = await run_one(rt)
        monkeypatch.setenv("PODIUM_AUDIT_KEY", "k1")
        report = await verify_store(store)
        assert report.ok and report.signatures[unsigned_run] == "unsigned"
        assert not (await verify_store(store, require_signature=True)).ok


async def test_purge_deletes_payloads_and_the_chain_still_verifies(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        run_id = await run_one(rt, memo=CANARY)
        keep = await run_one(rt, memo="kept")
        store = await rt.open()
        before = await store.load_audit(run_id)
        (done,) = await purge(store, [run_id])
        assert done.kind == "purge.done" and done.seq == len(before) + 1
        assert done.value["count"] >= 3 and done.value["audit_payloads"] == len(before)
        assert any(k.startswith("step.") for k in done.value["deleted"])
        report = await verify_store(store)
        assert report.ok, str(report)
        record = await store.get_run(run_id)
        assert record is not None and record.input is None and record.output is None
        assert all(s.output is None for s in await store.load_steps(run_id))
        assert all(e.data is None for e in await store.list_events(run_id))
        after = await store.load_audit(run_id)
        assert all(r.payload is None for r in after[:-1]) and after[-1].payload
        assert [r.hash for r in after[:-1]] == [r.hash for r in before]
        kept = await store.get_run(keep)
        assert kept is not None and kept.output.endswith("kept")
        assert await purge(store, [run_id]) == []  # nothing left: no second record
        assert (await verify_store(store)).ok


async def test_purge_refuses_a_waiting_run_unless_forced(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        waiting = await rt.run(flow, {"amount": 5, "to": CANARY})
        store = await rt.open()
        with pytest.raises(UsageError, match="is waiting: purge only finished runs"):
            await purge(store, [waiting.run_id])
        assert await purge(store, before=1e12) == []  # by date: skipped
        (done,) = await purge(store, [waiting.run_id], force=True)
        assert done.run_id == waiting.run_id
        with pytest.raises(UsageError, match="not both or neither"):
            await purge(store)


async def test_purge_clears_the_dead_letter_payload(store_url: str) -> None:
    @agent
    async def broken(x: str, ctx: RunContext) -> str:
        raise ValueError(f"bad input {x}")

    async with Runtime(store_url, retry=None) as rt:
        failed = await rt.run(broken, CANARY)
        assert failed.status == RunStatus.FAILED
        store = await rt.open()
        assert CANARY in json.dumps(await store.kv_get("dlq", failed.run_id))
        (done,) = await purge(store, [failed.run_id])
        entry = await store.kv_get("dlq", failed.run_id)
        assert CANARY not in json.dumps(entry)
        assert entry["run_id"] == failed.run_id and entry["purged"]
        assert f"kv.dlq.{failed.run_id}" in done.value["deleted"]
        assert (await verify_store(store)).ok


async def test_purged_values_leave_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    rt = Runtime(f"sqlite:///{db}")
    try:
        run_id = await run_one(rt, memo=CANARY)
        await rt.close()
        assert CANARY.encode() in b"".join(p.read_bytes() for p in tmp_path.iterdir())
        store = await rt.open()
        await purge(store, [run_id])
        assert (await verify_store(store)).ok
    finally:
        await rt.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert CANARY.encode() not in raw


@pytest.mark.postgres
async def test_purged_values_leave_the_postgres_tables(pg_url: str) -> None:
    import asyncpg

    async with Runtime(pg_url) as rt:
        run_id = await run_one(rt, memo=CANARY)
        store = await rt.open()
        await purge(store, [run_id])
    conn = await asyncpg.connect(pg_url)
    try:
        for table in ("runs", "steps", "events", "audit", "kv"):
            rows = await conn.fetch(f"SELECT t::text FROM {table} t")
            assert not [r for r in rows if CANARY in r[0]], table
    finally:
        await conn.close()


async def test_concurrent_runs_keep_separate_chains(store_url: str) -> None:
    async with Runtime(store_url) as rt:
        ids = await asyncio.gather(*(run_one(rt) for _ in range(20)))
        store = await rt.open()
        for run_id in ids:
            assert [r.seq for r in await store.load_audit(run_id)] == [1, 2, 3, 4]
        report = await verify_store(store)
        assert report.ok and report.runs == 20 and report.records == 80


async def test_a_run_from_before_the_chain_is_reported_not_checked(tmp_path: Path) -> None:
    """A store upgraded to a podium with the audit chain holds runs made before it: no
    `run.config`, no records. They are named as not checked, not as tampered with; a run
    that records `run.config` and lost its chain is still a break."""
    import sqlite3
    from contextlib import closing

    db = tmp_path / "runs.db"
    async with Runtime(f"sqlite:///{db}") as rt:
        older, newer = await run_one(rt), await run_one(rt)
    with closing(sqlite3.connect(db)) as conn, conn:
        for run_id in (older, newer):
            conn.execute("DELETE FROM audit WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM audit_heads WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM events WHERE run_id = ? AND kind = 'run.config'", (older,))
    async with Runtime(f"sqlite:///{db}") as rt:
        report = await verify_store(await rt.open())
    assert report.unaudited == [older]
    assert not report.ok and [b.run_id for b in report.breaks] == [newer]
    assert "made before this store kept an audit chain" in str(report)
