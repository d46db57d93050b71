"""What only the SQLite store has: URLs, pragmas, its writer thread, other processes' locks."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from podium import NO_RETRY, RunStatus, Runtime, Sequential, agent
from podium.core.records import Event, RunRecord, StepRecord, StepStatus
from podium.errors import UsageError
from podium.stores import open_store
from podium.stores.sqlite import (
    CHECKPOINT_EVERY,
    CHECKPOINT_ROWS,
    SQLiteStore,
    _nothing,
    parse_sqlite_url,
)


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
    assert SQLiteStore("sqlite:///p.db?busy_timeout=250").busy_timeout == 0.25
    for bad in ("abc", "-1", "inf", "nan", ""):
        with pytest.raises(
            UsageError, match=f"busy_timeout is a number of milliseconds, not '{bad}'"
        ):
            SQLiteStore(f"sqlite:///p.db?busy_timeout={bad}")


async def test_relative_path_and_only_the_default_directory_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`./.podium/` is made when missing; any other missing directory is an error (it used to
    be made silently, so a typo in a path started a new, empty store somewhere else)."""
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///.podium/podium.db?synchronous=full")
    assert isinstance(store, SQLiteStore)
    await store.open()
    assert store._inline is None  # an fsync per commit stays off the loop
    try:
        await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
    finally:
        await store.close()
    db = tmp_path / ".podium" / "podium.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [("r",)]
    conn.close()
    assert sorted(p.name for p in db.parent.iterdir()) == ["podium.db"]  # nothing left over
    for url in ("sqlite:///deep/er/podium.db", f"sqlite:///{tmp_path / 'nope' / 'p.db'}"):
        with pytest.raises(UsageError, match=r"directory '.*(deep/er|nope)' does not exist"):
            await open_store(url).open()
    assert not (tmp_path / "deep").exists() and not (tmp_path / "nope").exists()


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
    runs = asyncio.run(_get(rt, first.run_id, second.run_id))
    assert sorted(r.output for r in runs) == [4, 20]
    assert calls == [1, 2, 5, 10]


async def _get(rt: Runtime, *run_ids: str) -> list[RunRecord]:
    try:
        return [await rt.get_run(run_id) for run_id in run_ids]
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
    """Group commit: steps finishing in the same loop iteration share one inline commit."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
    await store.open()
    try:
        await store.create_run(RunRecord("g", "flow", RunStatus.RUNNING, created_at=1.0))
        steps = [
            StepRecord("g", f"/flow/s#{i}", "s", "agent", StepStatus.COMPLETED, output=i)
            for i in range(200)
        ]
        before = store._commits
        await asyncio.gather(*(store.record_finished(s) for s in steps))
        assert store._commits - before == 1
        assert store._sent == 0  # nothing went through the thread
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


def _step(key: str, status: StepStatus, output: int | None = None) -> StepRecord:
    return StepRecord("r", key, key.rsplit("/", 1)[-1], "agent", status, output=output)


async def test_order_is_kept_across_inline_thread_inline(tmp_path: Path) -> None:
    """A step's started row goes to the thread (the file is locked); the lock is released and
    its finished row is issued at once, while the thread is still backing off: it must follow
    the started row through the thread, not overtake it inline. Then inline commits resume."""
    path = tmp_path / "order.db"
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
        store.record_started(_step("/a", StepStatus.STARTED))
        await store.record_finished(_step("/a", StepStatus.COMPLETED, 1))
        assert store._sent == 0
        other.execute("BEGIN IMMEDIATE")
        store.record_started(_step("/b", StepStatus.STARTED))
        await asyncio.sleep(0)  # the flush runs, meets the lock, hands the batch over
        assert store._sent == 1 and store._done == 0
        other.execute("COMMIT")  # the thread notices only after its busy back-off
        await store.record_finished(_step("/b", StepStatus.COMPLETED, 2))
        assert store._sent == 2
        commits = store._commits
        store.record_started(_step("/c", StepStatus.STARTED))
        await store.record_finished(_step("/c", StepStatus.COMPLETED, 3))
        assert store._commits == commits + 1 and store._sent == 2  # inline again
        steps = await store.load_steps("r")
        assert [(s.key, s.status, s.output) for s in steps] == [
            ("/a", StepStatus.COMPLETED, 1),
            ("/b", StepStatus.COMPLETED, 2),
            ("/c", StepStatus.COMPLETED, 3),
        ]
    finally:
        other.close()
        await store.close()


async def test_contention_falls_back_to_the_thread_and_the_loop_keeps_ticking(
    tmp_path: Path,
) -> None:
    """Another connection (as another process would) holds the write lock for 200 ms while a
    10-step chain runs: the chain's writes wait on the thread, the loop keeps ticking, every
    step lands completed and every event in order."""
    path = tmp_path / "busy.db"
    rt = Runtime(f"sqlite:///{path}")
    store = await rt.open()
    assert isinstance(store, SQLiteStore)

    @agent
    async def inc(x: int) -> int:
        return x + 1

    flow = Sequential("chain", [inc] * 10)
    await rt.run(flow, 0)  # warm: tables exist, inline path in use
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(5)
            other.execute("COMMIT")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.ensure_future(ticker())
    try:
        await asyncio.to_thread(locked.wait, 5)
        running = asyncio.ensure_future(rt.run(flow, 0))
        await asyncio.sleep(0.2)
        assert not running.done() and ticks >= 10
        release.set()
        result = await asyncio.wait_for(running, 5)
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
        ticking.cancel()
    assert result.output == 10 and store._sent > 0
    steps = await store.load_steps(result.run_id)
    assert len(steps) == 11 and all(s.status == StepStatus.COMPLETED for s in steps)
    seqs = [e.seq for e in await store.list_events(result.run_id)]
    assert seqs == list(range(1, len(seqs) + 1)) or seqs == list(range(len(seqs)))
    assert (await rt.run(flow, 0)).output == 10
    await rt.close()


async def test_the_wal_stays_bounded(tmp_path: Path) -> None:
    """The loop's connection never checkpoints; the thread does, asked by count under steady
    load (every CHECKPOINT_EVERY inline commits or CHECKPOINT_ROWS rows), so 10,000 journaled
    steps leave a WAL of a few MB, not one frame per page per commit (~125 MB).

    How far the thread lags behind the loop depends on the machine (a starved thread lets the
    WAL grow meanwhile), so every SYNC steps the test waits for the thread to get past what
    is queued, the checkpoints asked so far included: then the WAL can hold at most about
    CHECKPOINT_EVERY + SYNC steps' frames, whatever the machine's speed."""
    path = tmp_path / "wal.db"
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    wal = Path(f"{path}-wal")
    sync, biggest = 100, 0
    try:
        await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
        for i in range(10_000):
            store.record_started(_step(f"/s#{i}", StepStatus.STARTED))
            await store.record_finished(_step(f"/s#{i}", StepStatus.COMPLETED, i))
            if i % sync == sync - 1:
                biggest = max(biggest, wal.stat().st_size)
                await store._queued(_nothing, None)  # the thread caught up
        # the loop committed itself, and asked for checkpoints by count (not only when quiet)
        asked_at_commit, asked_at_rows = store._asked
        assert store._commits >= CHECKPOINT_EVERY
        assert asked_at_commit >= CHECKPOINT_EVERY or asked_at_rows >= CHECKPOINT_ROWS
        # ~12 KB a step: (CHECKPOINT_EVERY + sync) steps are ~7.5 MB; never checkpointed, ~125
        assert 0 < biggest < 16 * 1024 * 1024
        assert len(await store.load_steps("r")) == 10_000  # and every step is there
    finally:
        await store.close()
    assert not wal.exists() or wal.stat().st_size == 0  # truncated on close


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


async def test_a_lock_held_past_busy_timeout_loses_no_completed_step(tmp_path: Path) -> None:
    """Another process takes the write lock in the middle of a run and keeps it 1.5 s, far
    past the store's busy_timeout (100 ms). The completed row of the step then running used
    to be given up (the run broke off, and that step ran again on resume). Now the row is
    tried until it is written: the run just waits, and every step runs once."""
    path = tmp_path / "held.db"
    calls: Counter[str] = Counter()
    holder: list[subprocess.Popen[str]] = []

    @agent
    async def first(x: int) -> int:
        calls["first"] += 1
        return x + 1

    @agent
    async def second(x: int) -> int:
        calls["second"] += 1
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), "1.5"], stdout=subprocess.PIPE, text=True
        )
        holder.append(proc)
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "locked"
        return x * 10

    @agent
    async def third(x: int) -> int:
        calls["third"] += 1
        return x + 3

    flow = Sequential("chain", [first, second, third])
    rt = Runtime(f"sqlite:///{path}?busy_timeout=100", retry=NO_RETRY)
    try:
        result = await rt.run(flow, 1)
        assert holder[0].wait(10) == 0  # the lock was really held, and let go
        assert (result.status, result.output) == (RunStatus.COMPLETED, 23)
        assert calls == Counter(first=1, second=1, third=1)
        steps = await rt.steps(result.run_id)
        assert [s.status for s in steps] == [StepStatus.COMPLETED] * 4
    finally:
        for proc in holder:
            proc.kill()
            proc.communicate()
        await rt.close()


async def test_an_empty_file_is_not_taken_for_a_new_store(tmp_path: Path) -> None:
    """A 0-byte file used to be opened as a new, empty store: the runs the user expected
    there vanished without a word (and podium wrote a fresh store over it)."""
    path = tmp_path / "podium.db"
    path.write_bytes(b"")
    with pytest.raises(UsageError, match=r"is an empty file \(0 bytes\), not a podium store"):
        await open_store(f"sqlite:///{path}").open()
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["podium.db"]


async def _store_with_runs(path: Path, n: int) -> None:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        for i in range(n):
            await store.create_run(
                RunRecord(f"run-{i:02d}", "flow", RunStatus.COMPLETED, input="x" * 300)
            )
    finally:
        await store.close()


def damage(path: Path) -> bytes:
    """Overwrite the middle of the file's last page with garbage; its bytes after."""
    data = bytearray(path.read_bytes())
    page = 4096
    start = (len(data) // page - 1) * page
    data[start : start + 64] = b"\xde\xad" * 32
    path.write_bytes(bytes(data))
    return bytes(data)


async def test_a_damaged_store_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """A corrupted page used to give tracebacks on reading while new writes went on into the
    damaged file. Now opening checks it (`PRAGMA quick_check`) and refuses, writing nothing."""
    path = tmp_path / "podium.db"
    await _store_with_runs(path, 30)
    before = damage(path)
    with pytest.raises(UsageError, match=r"is damaged \(.*\); podium will not write into it"):
        await open_store(f"sqlite:///{path}").open()

    @agent
    def hello(x: int) -> int:
        return x

    rt = Runtime(f"sqlite:///{path}")
    with pytest.raises(UsageError, match="is damaged"):
        await rt.run(hello, 1)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


async def test_another_database_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(UsageError, match="a SQLite database of something else"):
        await open_store(f"sqlite:///{path}").open()
    assert path.read_bytes() == before
