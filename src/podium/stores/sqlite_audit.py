"""The audit chain and purging in SQLite: operations that run inside the store's write
transaction (`BEGIN IMMEDIATE` holds the database's write lock, so computing a record's link
from the table and appending it cannot interleave with another process doing the same).

An audited event and its audit record are written by one operation, under a savepoint: both
or neither, even when a row error leaves the rest of the batch to commit.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from podium.core.audit import (
    AuditDraft,
    AuditHead,
    AuditRecord,
    chain,
    draft,
    event_draft,
    head_of,
    sha256,
)
from podium.core.records import Event
from podium.errors import UsageError

AUDIT_COLUMNS = "run_id, seq, kind, at, actor, payload, payload_hash, prev_hash, hash"
INSERT_EVENT = (
    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, seq) DO NOTHING"
)
# What a purged key-value entry (a dead letter) keeps: what it is about, never its payload.
PURGE_KEEPS = ("run_id", "agent", "kind", "at", "status")


def event_audit_draft(event: Event) -> AuditDraft:
    return event_draft(
        event.run_id,
        event.seq,
        event.ts,
        event.kind,
        event.key,
        event.agent,
        event.attempt,
        event.data,
    )


def insert_audited_event(conn: sqlite3.Connection, arg: tuple[Any, AuditDraft, Any]) -> None:
    """The event row and its audit record, both or neither (a replayed event, already
    stored, is not chained twice)."""
    row, d, key = arg
    conn.execute("SAVEPOINT podium_audit")
    try:
        if conn.execute(INSERT_EVENT, row).rowcount == 1:
            append_audit(conn, ([d], key))
    except BaseException:
        conn.execute("ROLLBACK TO podium_audit")
        conn.execute("RELEASE podium_audit")
        raise
    conn.execute("RELEASE podium_audit")


def _last(conn: sqlite3.Connection, run_id: str) -> AuditHead | None:
    sql = "SELECT seq, hash FROM audit WHERE run_id = ? ORDER BY seq DESC LIMIT 1"
    row = conn.execute(sql, (run_id,)).fetchone()
    return None if row is None else AuditHead(run_id, int(row[0]), row[1])


def append_audit(
    conn: sqlite3.Connection, arg: tuple[list[AuditDraft], bytes | None]
) -> list[AuditRecord]:
    """Chain `drafts` after each run's last stored record, and move the runs' heads."""
    drafts, key = arg
    by_run: dict[str, list[AuditDraft]] = {}
    for d in drafts:
        by_run.setdefault(d.run_id, []).append(d)
    out: list[AuditRecord] = []
    for run_id, ds in by_run.items():
        records = chain(ds, _last(conn, run_id))
        conn.executemany(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [r.row() for r in records],
        )
        head = head_of(records[-1], key)
        conn.execute(
            "INSERT OR REPLACE INTO audit_heads (run_id, seq, hash, signature) VALUES (?,?,?,?)",
            (head.run_id, head.seq, head.hash, head.signature),
        )
        out.extend(records)
    return out


def purge_run(
    conn: sqlite3.Connection, arg: tuple[str, float, str, list[tuple[str, str]], bytes | None]
) -> AuditRecord | None:
    """Delete a run's payloads (run input/output/error, step outputs and errors, event data,
    audit payloads, the named key-value entries' payloads), zeroing the freed bytes, and chain
    a `purge.done` record holding the sha256 of each deleted value (None, and no record, if
    nothing was left to delete). Earlier `purge.done` records keep their payloads."""
    run_id, at, actor, kv, key = arg
    row = conn.execute(
        "SELECT input, output, error FROM runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        raise UsageError(f"no run {run_id!r} in this store to purge")
    conn.execute("PRAGMA secure_delete = ON")
    try:
        hashes = _hash_texts(zip(("run.input", "run.output", "run.error"), row, strict=True))
        steps = conn.execute("SELECT key, output, error FROM steps WHERE run_id = ?", (run_id,))
        for step, output, error in steps.fetchall():
            hashes.update(_hash_texts([(f"step.{step}.output", output)]))
            hashes.update(_hash_texts([(f"step.{step}.error", error)]))
        events = conn.execute(
            "SELECT seq, data FROM events WHERE run_id = ? AND data IS NOT NULL", (run_id,)
        )
        hashes.update(_hash_texts((f"event.{seq}.data", data) for seq, data in events.fetchall()))
        for namespace, k in kv:
            found = conn.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, k)
            ).fetchone()
            if found is not None:
                text = found[0]
                hashes[f"kv.{namespace}.{k}"] = sha256(text)
                conn.execute(
                    "UPDATE kv SET value = ? WHERE namespace = ? AND key = ?",
                    (purged_kv_value(text), namespace, k),
                )
        conn.execute(
            "UPDATE runs SET input = NULL, output = NULL, error = NULL WHERE run_id = ?", (run_id,)
        )
        conn.execute("UPDATE steps SET output = NULL, error = NULL WHERE run_id = ?", (run_id,))
        conn.execute("UPDATE events SET data = NULL WHERE run_id = ?", (run_id,))
        cleared = conn.execute(
            "UPDATE audit SET payload = NULL WHERE run_id = ? AND payload IS NOT NULL "
            "AND kind NOT LIKE 'purge.%'",
            (run_id,),
        ).rowcount
        if not hashes and not cleared:
            return None  # purged before: nothing left, no record
        payload = purge_payload(hashes, cleared)
        (record,) = append_audit(conn, ([draft(run_id, "purge.done", at, actor, payload)], key))
    finally:
        conn.execute("PRAGMA secure_delete = FAST")
    return record


def _hash_texts(items: Any) -> dict[str, str]:
    return {name: sha256(text) for name, text in items if text is not None}


def purge_payload(hashes: dict[str, str], audit_payloads: int) -> dict[str, Any]:
    """What a `purge.done` record holds: the sha256 of every deleted value, by where it was."""
    return {"deleted": hashes, "count": len(hashes), "audit_payloads": audit_payloads}


def purged_kv_value(text: str) -> str:
    """A key-value entry with its payload gone: what it is about, and the hash of the rest."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    kept = {k: v for k, v in value.items() if k in PURGE_KEEPS} if isinstance(value, dict) else {}
    kept["purged"] = sha256(text)
    return json.dumps(kept, sort_keys=True)
