"""What only the SQLite store has: URLs, pragmas, its writer thread, other processes' locks."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from podium import Runtime, Sequential, agent
from podium.errors import UsageError
from podium.runtime.records import Event, RunRecord, RunStatus, StepRecord, StepStatus
from podium.stores import open_store
from podium.stores.sqlite import SQLiteStore, parse_sqlite_url


def test_url_forms() -> None:
    assert parse_sqlite_url("sqlite:///runs/p.db") == ("runs/p.db", {})
    assert parse_sqlite_url("sqlite:////abs/p.db") == ("/abs/p.db", {})
    assert parse_sqlite_url("sqlite:///p.db?synchronous=full") == ("p.db", {"synchronous": "full"})
    for bad in ("sqlite://host/p.db", "sqlite:///", "mysql:///p.db"):
        with pytest.raises(UsageError):
            parse_sqlite_url(bad)
    with pytest.raises(UsageError, match="synchronous"):
        SQLiteStore("sqlite:///p.db?synchronous=sometimes")
    with pytest.raises(UsageError, match="unknown option"):
        SQLiteStore("sqlite:///p.db?color=red")


async def test_relative_path_and_parent_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///deep/er/podium.db?synchronous=full")
    assert isinstance(store, SQLiteStore)
    await store.open()
    try:
        await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
    finally:
        await store.close()
    db = tmp_path / "deep" / "er" / "podium.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [("r",)]
    conn.close()


def test_survives_a_new_event_loop_per_call(tmp_path: Path) -> None:
    """`run_sync` opens and closes the store on a fresh loop every time."""
    calls = []

    @agent
    def double(x: int) -> int:
        calls.append(x)
        return x * 2

    rt = Runtime(f"sqlite:///{tmp_path / 'p.db'}")
    flow = Sequential("twice", [double, double])
    first = rt.run_sync(flow, 1)
    second = rt.run_sync(flow, 5)
    assert (first.output, second.output) == (4, 20)
    runs = asyncio.run(_list(rt))
    assert sorted(r.output for r in runs) == [4, 20]
    assert calls == [1, 2, 5, 10]


async def _list(rt: Runtime) -> list[RunRecord]:
    try:
        return await rt.list_runs()
    finally:
        await rt.close()


async def test_a_locked_file_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """Another connection (as another process would) holds the write lock: the store waits
    on its thread while the loop keeps running, then commits once the lock is released."""
    path = tmp_path / "locked.db"
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        step = StepRecord("r", "/flow", "flow", "agent", StepStatus.COMPLETED, output=1)
        pending = asyncio.ensure_future(store.record_finished(step))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not pending.done()
        other.execute("COMMIT")
        await asyncio.wait_for(pending, 5)
        [row] = await store.load_steps("r")
        assert row.output == 1
    finally:
        other.close()
        await store.close()


async def test_concurrent_finishes_share_commits(tmp_path: Path) -> None:
    """Group commit: many steps finishing at once are written in few transactions."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
    await store.open()
    try:
        await store.create_run(RunRecord("g", "flow", RunStatus.RUNNING, created_at=1.0))
        steps = [
            StepRecord("g", f"/flow/s#{i}", "s", "agent", StepStatus.COMPLETED, output=i)
            for i in range(200)
        ]
        batches: list[int] = []
        apply = store._apply

        def counting(conn: sqlite3.Connection, batch: list) -> bool:  # type: ignore[type-arg]
            batches.append(len(batch))
            return apply(conn, batch)

        store._apply = counting  # type: ignore[method-assign]
        await asyncio.gather(*(store.record_finished(s) for s in steps))
        assert sum(batches) == 200
        assert len(batches) < 20
        assert len(await store.load_steps("g")) == 200
    finally:
        await store.close()


async def test_a_lost_buffered_write_is_reported_by_the_next_flush(tmp_path: Path) -> None:
    """Nobody awaits `record_event`; if its row cannot be written, `flush` says so."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'l.db'}")
    await store.open()
    try:
        store.record_event(Event("r", 1, 1.0, None))  # type: ignore[arg-type]  # NOT NULL kind
        store.record_event(Event("r", 2, 1.0, "fine"))
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            await store.flush()
        await store.flush()  # reported once
        assert [e.seq for e in await store.list_events("r")] == [2]
    finally:
        await store.close()


async def test_a_file_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    store = SQLiteStore(f"sqlite:///{tmp_path / 'dir.db'}")
    with pytest.raises(UsageError, match=r"cannot open SQLite store .*dir\.db"):
        await store.open()
    with pytest.raises(UsageError, match="not open"):
        await store.get_run("x")
