"""The audit chain in the runtime: what it records, verifying a store, and purging payloads.

Records are appended by the store with the event they belong to (see `podium.stores.base`);
the runtime emits the events worth chaining that no other part emits:

- `run.config` when a run first starts: agent, target, store kind, deadline, budget;
- `decision.recorded` when a person's decision is journaled (`podium approve`,
  `Runtime.resume(decision=...)`): step, action, `by` (free text) and `user` (the OS account);
- `effect.executed` when a side-effecting tool completed: tool and `args_hash`.

`verify_store` reads every chain back and hands it to `podium.governance.audit.verify`;
`purge` deletes the payloads of finished runs and leaves a `purge.done` record with the
hashes of what it deleted, so that the chain still verifies.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from podium.core.audit import AuditRecord, is_audited
from podium.core.records import TERMINAL_STATUSES, Event, StepRecord
from podium.core.serde import to_plain
from podium.errors import UnknownRunError, UsageError
from podium.governance.audit import Report, verify
from podium.governance.hashing import args_hash
from podium.runtime.dlq import DLQ
from podium.runtime.waiting import os_user
from podium.stores import Store

if TYPE_CHECKING:
    from podium.runtime.budget import Budget
    from podium.runtime.door import Call

ALL_RUNS = 2**63 - 1


def run_config(
    agent: Any,
    store_url: str,
    limits: dict[str, Any],
    budget: Budget | None,
    *,
    policies: list[str] | None = None,
    taint: bool = False,
    privacy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The data of a run's `run.config` event: what governs the run (its limits, budget,
    the digests of its policies, containment, privacy), with no inputs and no
    credentials."""
    target = getattr(agent, "target", None)
    return {
        "agent": agent.name,
        "target": target if isinstance(target, str) else None,
        "store": store_url.split(":", 1)[0],
        "limits": limits,
        "budget": None if budget is None else budget.to_dict(),
        "policies": policies or [],
        "taint": taint,
        "privacy": privacy,
    }


def effect_data(call: Call) -> dict[str, Any]:
    """The data of `effect.executed`: which tool, bound to its exact arguments by hash."""
    # the plain form, as the policy guard hashes the arguments it approves or refuses: one
    # call has one hash in every record
    return {"tool": call.name, "args_hash": args_hash(call.name, to_plain(call.input))}


async def decision_event(store: Store, answered: StepRecord) -> Event:
    """The `decision.recorded` event of a decision about to be journaled, next in the run's
    events: who decided (free text `by`, and the OS `user` podium stamped)."""
    events = await store.list_events(answered.run_id)
    seq = events[-1].seq + 1 if events else 1
    decision = answered.output if isinstance(answered.output, dict) else {}
    data = {
        "step": answered.key,
        "action": decision.get("action"),
        "by": decision.get("by"),
        "user": decision.get("user"),
    }
    if decision.get("identity") is not None:  # an authenticated caller (the HTTP server's key)
        data["identity"] = decision["identity"]
    at = answered.ended_at or time.time()
    return Event(
        answered.run_id, seq, at, "decision.recorded", answered.key, answered.agent, 0, data=data
    )


async def verify_store(
    store: Store, run_id: str | None = None, *, require_signature: bool = False
) -> Report:
    """Verify the audit chain of one run, or of every run in the store."""
    if run_id is not None:
        if await store.get_run(run_id) is None and run_id not in await store.audit_runs():
            raise UnknownRunError(run_id)
        runs = [run_id]
    else:
        listed = {r.run_id for r in await store.list_runs(limit=ALL_RUNS)}
        runs = sorted(listed | set(await store.audit_runs()))
    records: list[AuditRecord] = []
    heads = {}
    audited: dict[str, int] = {}
    older: list[str] = []
    for rid in runs:
        chain = await store.load_audit(rid)
        head = await store.audit_head(rid)
        events = await store.list_events(rid)
        if not chain and head is None and not any(e.kind == "run.config" for e in events):
            older.append(rid)  # every run since the chain began records run.config first
            continue
        records += chain
        heads[rid] = head
        audited[rid] = sum(is_audited(e.kind) for e in events)
    report = verify(records, heads, audited_events=audited, require_signature=require_signature)
    report.unaudited = older
    return report


async def purge(
    store: Store,
    run_ids: list[str] | None = None,
    *,
    before: float | None = None,
    force: bool = False,
    actor: str | None = None,
) -> list[AuditRecord]:
    """Delete the payloads of `run_ids`, or of every finished run last updated before
    `before` (a Unix time); one `purge.done` record per run that had payloads left (those
    records are returned). A run still running or waiting
    is refused (`UsageError`) when named, skipped when found by date, unless `force`."""
    if (run_ids is None) == (before is None):
        raise UsageError("purge takes run ids or a date (--before), not both or neither")
    who = actor or os_user()
    chosen: list[str] = []
    if run_ids is not None:
        for rid in run_ids:
            record = await store.get_run(rid)
            if record is None:
                raise UnknownRunError(rid)
            if record.status not in TERMINAL_STATUSES and not force:
                raise UsageError(
                    f"run {rid} is {record.status}: purge only finished runs "
                    "(or pass --force to purge it anyway)"
                )
            chosen.append(rid)
    else:
        assert before is not None
        for record in await store.list_runs(limit=ALL_RUNS):
            finished = record.status in TERMINAL_STATUSES or force
            if finished and record.updated_at < before:
                chosen.append(record.run_id)
    done: list[AuditRecord] = []
    for rid in chosen:
        purged = await store.purge_run(rid, at=time.time(), actor=who, kv=[(DLQ, rid)])
        if purged is not None:
            done.append(purged)
    return done
