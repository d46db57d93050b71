"""Tampering with a store's audit chain, as an attacker with write access to the database
would: for tests and the security benchmark, which check that `podium audit verify` notices.

    await tamper(store, run_id, seq=2, how="flip", field="hash")   # one byte of one record
    await tamper(store, run_id, seq=2, how="delete")               # a row deleted
    await tamper(store, run_id, seq=2, how="swap")                 # rows 2 and 3 trade seq

SQLite and Postgres are edited with SQL on a connection of their own (the store's own
connection is not used, as an attacker would not use it); the memory store in place.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any, Literal

from podium.core.audit import AuditRecord
from podium.governance.audit import flip_byte
from podium.stores import Store
from podium.stores.memory import MemoryStore
from podium.stores.postgres import PostgresStore
from podium.stores.sqlite import SQLiteStore

How = Literal["flip", "delete", "swap"]
FIELDS = ("kind", "actor", "payload", "payload_hash", "prev_hash", "hash", "seq", "at")


async def tamper(
    store: Store,
    run_id: str,
    seq: int,
    how: How,
    field: str = "hash",
    index: int = 0,
) -> None:
    """Flip one byte of `field` of record `seq` (`index`: which byte), delete the record, or
    swap its seq with the next record's."""
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    await store.flush()
    if isinstance(store, MemoryStore):
        _tamper_memory(store, run_id, seq, how, field, index)
    elif isinstance(store, SQLiteStore):
        _tamper_sqlite(store.path, run_id, seq, how, field, index)
    elif isinstance(store, PostgresStore):
        await _tamper_postgres(store.url, run_id, seq, how, field, index)
    else:
        raise TypeError(f"cannot tamper with a {type(store).__name__}")


def _tamper_memory(store: MemoryStore, run_id: str, seq: int, how: How, f: str, i: int) -> None:
    store._settle(run_id)
    chain: list[AuditRecord] = store._audit[run_id]
    pos = next(n for n, r in enumerate(chain) if r.seq == seq)
    if how == "delete":
        del chain[pos]
    elif how == "swap":
        a, b = chain[pos], chain[pos + 1]
        chain[pos], chain[pos + 1] = replace(b, seq=a.seq), replace(a, seq=b.seq)
    else:
        chain[pos] = flip_byte(chain[pos], f, i)


def _flipped_value(rec: AuditRecord, f: str, i: int) -> Any:
    return getattr(flip_byte(rec, f, i), f)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(*row)


_COLS = "run_id, seq, kind, at, actor, payload, payload_hash, prev_hash, hash"


def _tamper_sqlite(path: str, run_id: str, seq: int, how: How, f: str, i: int) -> None:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if how == "delete":
            conn.execute("DELETE FROM audit WHERE run_id = ? AND seq = ?", (run_id, seq))
        elif how == "swap":
            swap = "UPDATE audit SET seq = ? WHERE run_id = ? AND seq = ?"
            conn.execute(swap, (-1, run_id, seq))
            conn.execute(swap, (seq, run_id, seq + 1))
            conn.execute(swap, (seq + 1, run_id, -1))
        else:
            row = conn.execute(
                f"SELECT {_COLS} FROM audit WHERE run_id = ? AND seq = ?", (run_id, seq)
            ).fetchone()
            value = _flipped_value(_record(row), f, i)
            conn.execute(
                f"UPDATE audit SET {f} = ? WHERE run_id = ? AND seq = ?", (value, run_id, seq)
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def _tamper_postgres(url: str, run_id: str, seq: int, how: How, f: str, i: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            if how == "delete":
                await conn.execute("DELETE FROM audit WHERE run_id = $1 AND seq = $2", run_id, seq)
            elif how == "swap":
                swap = "UPDATE audit SET seq = $1 WHERE run_id = $2 AND seq = $3"
                await conn.execute(swap, -1, run_id, seq)
                await conn.execute(swap, seq, run_id, seq + 1)
                await conn.execute(swap, seq + 1, run_id, -1)
            else:
                row = await conn.fetchrow(
                    f"SELECT {_COLS} FROM audit WHERE run_id = $1 AND seq = $2", run_id, seq
                )
                value = _flipped_value(_record(tuple(row)), f, i)
                await conn.execute(
                    f"UPDATE audit SET {f} = $1 WHERE run_id = $2 AND seq = $3", value, run_id, seq
                )
    finally:
        await conn.close()
