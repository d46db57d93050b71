"""The embedded default store: one SQLite file in WAL mode, written by one thread.

    SQLiteStore("sqlite:///runs/podium.db")              # relative to the working directory
    SQLiteStore("sqlite:////var/lib/podium.db?synchronous=full")

Why a thread: sqlite3 calls block, and the event loop must never wait on the disk. Every
operation is queued to one writer thread that owns the connection. Writes the door does not
wait for (`record_started`, `record_event`) are collected on the loop side and handed over
once per loop iteration, so a quick step's started row, its events and its finished row
usually travel together. The thread drains everything queued and commits it in ONE
transaction (group commit), then wakes the waiting coroutines with one
`call_soon_threadsafe` per loop per batch.

Durability: `synchronous=NORMAL` in WAL mode means a committed transaction survives the
process being killed, not necessarily the machine losing power; `?synchronous=full` buys that
too, at an fsync per commit. Reads go through the same queue, so they see every write queued
before them. Other processes may open the same file; `busy_timeout` makes them take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from podium.errors import UsageError
from podium.runtime.records import Event, RunRecord, RunStatus, StepRecord, StepStatus, Usage
from podium.runtime.serde import dumps, loads

_SYNC_MODES = ("off", "normal", "full", "extra")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    error TEXT,
    target TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    usage TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_status_created ON runs (status, created_at);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    output TEXT,
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    usage TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    agent TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    duration REAL,
    usage TEXT,
    data TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

# The same upsert serves `started` and finished rows: the last write of a step wins whole.
_UPSERT_STEP = """
INSERT INTO steps (run_id, key, agent, kind, status, attempt, output, error, started_at,
                   ended_at, usage)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    agent = excluded.agent, kind = excluded.kind, status = excluded.status,
    attempt = excluded.attempt, output = excluded.output, error = excluded.error,
    started_at = excluded.started_at, ended_at = excluded.ended_at, usage = excluded.usage
"""
_INSERT_EVENT = (
    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, seq) DO NOTHING"
)
_RUN_COLUMNS = "run_id, agent, status, input, output, error, target, created_at, updated_at, usage"
_STEP_COLUMNS = (
    "run_id, key, agent, kind, status, attempt, output, error, started_at, ended_at, usage"
)

# An operation for the writer thread: (is_write, function(conn, arg), arg, future or None).
Fn = Callable[[sqlite3.Connection, Any], Any]
Op = tuple[bool, Fn, Any, "asyncio.Future[Any] | None"]
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Stop(Exception):
    """Queued last by `close`: the writer thread finishes its batch and exits."""


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """`sqlite:///rel.db` -> `rel.db`, `sqlite:////abs.db` -> `/abs.db`, plus query options."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc:
        raise UsageError(
            f"SQLite store URL {url!r} must look like sqlite:///relative.db or sqlite:////abs.db"
        )
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if not path:
        raise UsageError(f"SQLite store URL {url!r} names no file")
    return path, dict(parse_qsl(parts.query))


def step_row(step: StepRecord) -> tuple[Any, ...]:
    """A snapshot of a step: the record is mutated after `record_started` returns."""
    return (
        step.run_id,
        step.key,
        step.agent,
        step.kind,
        str(step.status),
        step.attempt,
        None if step.output is None else dumps(step.output),
        step.error,
        step.started_at,
        step.ended_at,
        None if step.usage is None else dumps(step.usage.to_dict()),
    )


def event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.run_id,
        event.seq,
        event.ts,
        event.kind,
        event.key,
        event.agent,
        event.attempt,
        event.duration,
        None if event.usage is None else dumps(event.usage.to_dict()),
        None if event.data is None else dumps(event.data),
    )


def run_row(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.agent,
        str(run.status),
        None if run.input is None else dumps(run.input),
        None if run.output is None else dumps(run.output),
        run.error,
        run.target,
        run.created_at,
        run.updated_at,
        dumps(run.usage.to_dict()),
    )


def run_from_row(row: Any) -> RunRecord:
    return RunRecord(
        row[0],
        row[1],
        RunStatus(row[2]),
        input=loads(row[3]),
        output=loads(row[4]),
        error=row[5],
        target=row[6],
        created_at=row[7],
        updated_at=row[8],
        usage=Usage.from_dict(loads(row[9])),
    )


def step_from_row(row: Any) -> StepRecord:
    usage = loads(row[10])
    return StepRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        StepStatus(row[4]),
        attempt=row[5],
        output=loads(row[6]),
        error=row[7],
        started_at=row[8],
        ended_at=row[9],
        usage=None if usage is None else Usage.from_dict(usage),
    )


def event_from_row(row: Any) -> Event:
    usage = loads(row[8])
    return Event(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        None if usage is None else Usage.from_dict(usage),
        loads(row[9]),
    )


def run_updates(
    status: RunStatus, output: Any, error: str | None, usage: Usage | None, now: float
) -> list[tuple[str, Any]]:
    """The columns `update_run` sets: status, error and time always, output and usage if given."""
    updates: list[tuple[str, Any]] = [
        ("status", str(status)),
        ("error", error),
        ("updated_at", now),
    ]
    if output is not None:
        updates.append(("output", dumps(output)))
    if usage is not None:
        updates.append(("usage", dumps(usage.to_dict())))
    return updates


# operations run on the writer thread ---------------------------------------------------------
def _create_run(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    try:
        conn.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
    except sqlite3.IntegrityError:
        raise UsageError(f"a run with id {row[0]!r} already exists") from None


def _update_run(conn: sqlite3.Connection, arg: tuple[str, list[Any]]) -> None:
    sql, values = arg
    conn.execute(sql, values)


def _upsert_step(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(_UPSERT_STEP, row)


def _insert_event(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(_INSERT_EVENT, row)


def _get_run(conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else run_from_row(row)


def _list_runs(conn: sqlite3.Connection, arg: tuple[str | None, int]) -> list[RunRecord]:
    status, limit = arg
    where = "" if status is None else "WHERE status = ?"
    params: tuple[Any, ...] = (limit,) if status is None else (status, limit)
    sql = f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
    return [run_from_row(r) for r in conn.execute(sql, params)]


def _load_steps(conn: sqlite3.Connection, run_id: str) -> list[StepRecord]:
    sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY started_at, rowid"
    return [step_from_row(r) for r in conn.execute(sql, (run_id,))]


def _list_events(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    sql = "SELECT * FROM events WHERE run_id = ? ORDER BY seq"
    return [event_from_row(r) for r in conn.execute(sql, (run_id,))]


def _nothing(conn: sqlite3.Connection, arg: Any) -> None:
    return None


def _stop(conn: sqlite3.Connection, arg: Any) -> None:
    raise _Stop


class SQLiteStore:
    """Runs, journal and events in one SQLite file; see the module docstring for the design."""

    def __init__(self, url: str, *, busy_timeout: float = 10.0) -> None:
        self.url = url
        path, options = parse_sqlite_url(url)
        self.path = path
        sync = options.pop("synchronous", "normal").lower()
        if sync not in _SYNC_MODES:
            raise UsageError(f"SQLite store URL {url!r}: synchronous must be one of {_SYNC_MODES}")
        self.synchronous = sync
        self.busy_timeout = float(options.pop("busy_timeout", busy_timeout * 1000)) / 1000
        if options:
            raise UsageError(f"SQLite store URL {url!r}: unknown option(s) {sorted(options)}")
        self._queue: queue.SimpleQueue[list[Op]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._buf: list[Op] = []
        self._push_loop: asyncio.AbstractEventLoop | None = None
        self._lost: BaseException | None = None

    # lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._thread is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue = queue.SimpleQueue()  # fresh: nothing left over from an earlier thread
        self._thread = threading.Thread(
            target=self._writer,
            args=(ready,),
            name=f"podium-sqlite:{self.path}",
            daemon=True,
        )
        self._thread.start()
        try:
            await ready
        except BaseException:  # failed to connect, or cancelled while connecting
            self._queue.put([(False, _stop, None, None)])
            self._thread.join()
            self._thread = None
            raise

    async def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            await self._submit(False, _stop, None)
        finally:
            thread.join()
            self._thread = None
            self._push_loop = None

    # runs ----------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> None:
        await self._submit(True, _create_run, run_row(run))

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        output: Any = None,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        updates = run_updates(status, output, error, usage, time.time())
        sets = ", ".join(f"{column} = ?" for column, _ in updates)
        values = [value for _, value in updates]
        await self._submit(
            True, _update_run, (f"UPDATE runs SET {sets} WHERE run_id = ?", [*values, run_id])
        )

    async def get_run(self, run_id: str) -> RunRecord | None:
        result: RunRecord | None = await self._submit(False, _get_run, run_id)
        return result

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        arg = (None if status is None else str(status), limit)
        result: list[RunRecord] = await self._submit(False, _list_runs, arg)
        return result

    # journal and events --------------------------------------------------------------------
    def record_started(self, step: StepRecord) -> None:
        self._buffer((True, _upsert_step, step_row(step), None))

    async def record_finished(self, step: StepRecord) -> None:
        await self._submit(True, _upsert_step, step_row(step))

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        result: list[StepRecord] = await self._submit(False, _load_steps, run_id)
        return result

    def record_event(self, event: Event) -> None:
        self._buffer((True, _insert_event, event_row(event), None))

    async def list_events(self, run_id: str) -> list[Event]:
        result: list[Event] = await self._submit(False, _list_events, run_id)
        return result

    async def flush(self) -> None:
        # Not a write itself: it resolves after the commit of whatever was queued before it,
        # then reports a buffered write that could not be made.
        await self._submit(False, _nothing, None)
        self._raise_lost()

    # the loop side of the queue ------------------------------------------------------------
    def _buffer(self, op: Op) -> None:
        """Collect a write nobody waits for; hand the buffer over once per loop iteration."""
        if self._thread is None:
            raise UsageError(f"store {self.url} is not open")
        self._buf.append(op)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._push()
            return
        if self._push_loop is not loop:
            self._push_loop = loop
            loop.call_soon(self._push)

    def _push(self) -> None:
        self._push_loop = None
        if self._buf:
            batch, self._buf = self._buf, []
            self._queue.put(batch)

    async def _submit(self, write: bool, fn: Fn, arg: Any) -> Any:
        if self._thread is None:
            raise UsageError(f"store {self.url} is not open")
        if write:
            self._raise_lost()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._buf.append((write, fn, arg, fut))
        self._push()
        return await fut

    def _raise_lost(self) -> None:
        if self._lost is not None:
            lost, self._lost = self._lost, None
            raise lost

    # the writer thread ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=True
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    def _writer(self, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as e:
            _deliver_all([(ready, None, _open_error(self.path, e))])
            return
        _deliver_all([(ready, None, None)])
        try:
            stop = False
            while not stop:
                batch = self._queue.get()
                with contextlib.suppress(queue.Empty):
                    while True:
                        batch.extend(self._queue.get_nowait())
                stop = self._apply(conn, batch)
        finally:
            conn.close()

    def _apply(self, conn: sqlite3.Connection, batch: list[Op]) -> bool:
        """Run a batch in one transaction; resolve its futures once it is committed."""
        outcomes: list[Outcome] = []
        stop = False
        in_tx = False
        try:
            for write, fn, arg, fut in batch:
                if write and not in_tx:
                    conn.execute("BEGIN IMMEDIATE")
                    in_tx = True
                try:
                    result = fn(conn, arg)
                except (UsageError, sqlite3.IntegrityError) as e:
                    result, error = None, e
                except _Stop:
                    result, error, stop = None, None, True
                else:
                    error = None
                if fut is not None:
                    outcomes.append((fut, result, error))
                elif error is not None:
                    self._lost = error
            if in_tx:
                conn.execute("COMMIT")
        except Exception as e:
            if in_tx and conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failed: list[Outcome] = [(fut, None, e) for _, _, _, fut in batch if fut is not None]
            if len(failed) < len(batch):
                self._lost = e  # a buffered write was lost: the next awaited write says so
            _deliver_all(failed)
            return stop or any(fn is _stop for _, fn, _, _ in batch)
        _deliver_all(outcomes)
        return stop


def _open_error(path: str, error: BaseException) -> BaseException:
    if isinstance(error, sqlite3.Error):
        return UsageError(f"cannot open SQLite store {path!r}: {error}")
    return error


def _deliver_all(outcomes: list[Outcome]) -> None:
    """Wake the waiting coroutines: one `call_soon_threadsafe` per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(outcomes: list[Outcome]) -> None:
    for fut, result, error in outcomes:
        if fut.done():
            continue
        if error is None:
            fut.set_result(result)
        else:
            fut.set_exception(error)
