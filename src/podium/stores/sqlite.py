"""The embedded default store: one SQLite file in WAL mode, committed on the event loop.

    SQLiteStore("sqlite:///runs/podium.db")              # relative to the working directory
    SQLiteStore("sqlite:////var/lib/podium.db?synchronous=full")

Why commit on the loop: handing each write to another thread costs a thread wakeup, and on a
VM that puts the two threads on different cores one wakeup cost ~80-90 µs, while the
transaction itself (a step's started row, its events and its finished row) costs ~23 µs: a
10-step chain paid 210-560 µs per step that way, 70-90 µs when both threads shared a core.
So writes are buffered on the loop side and the first one of a loop iteration schedules ONE
flush (`call_soon`) that commits the whole buffer in one transaction on a loop-side
connection (group commit: 1,000 concurrent runs share transactions), then wakes the awaiting
coroutines directly.

Why that never holds the loop: with `synchronous=NORMAL` in WAL mode a commit is a `write()`
into the WAL, with no fsync; the loop's connection has `busy_timeout=0`, so it never waits on
another process's lock, and `wal_autocheckpoint=0`, so it never runs a checkpoint (and its
fsyncs). A committed transaction survives the process being killed, not necessarily the
machine losing power; `?synchronous=full` buys that too, at an fsync per commit, and then
every commit goes to the thread (as does `:memory:`, which is private to one connection).

The writer thread is the fallback and does the slow work. If the inline transaction meets a
lock (another process is writing) or any error, it is rolled back and the batch goes to the
thread, whose connection waits up to `busy_timeout` (10 s by default, `?busy_timeout=ms`) and
reports errors. While any batch is with the thread, later batches follow it there, so writes
land in the order they were made; inline commits resume once it has caught up. The thread also
checkpoints the WAL, holding the loop's commits off meanwhile (they queue on the thread), so
the WAL is copied whole and restarts instead of growing: as soon as the loop has been quiet for
a moment (steps that wait on models leave plenty), else after `CHECKPOINT_EVERY` commits or
`CHECKPOINT_ROWS` rows, when the writes made during those few ms (three fsyncs) wait for it.
`close` truncates the WAL. Reads run on the thread too (a large run may
take milliseconds to read) after the loop side has flushed, so they see every earlier write.
A write nobody awaits (`record_started`, `record_event`) that fails is reported by `flush`
for its run.
Another thread's event loop is served too, through the thread only.

A store is verified before anything is written into it: an existing file must be a podium
store (its `application_id`, or a `runs` table for stores made before it was set) that
passes `PRAGMA quick_check`; a 0-byte file is refused (a podium store never is one: a new
store is built under a temporary name and linked into place whole). Only the default
directory `./.podium/` is created; any other missing directory is an error.

One bad row harms nobody else: a row that cannot be written (a constraint, a value SQLite
cannot bind) fails alone, the rest of its transaction commits. A transaction that meets
another process's lock is tried again, on the thread, until it is written: the run whose row
it holds waits, nothing is lost and the loop keeps running. Any other failure of a
transaction fails its writers (`record_finished` raises `JournalUnavailable`: the run stops).
Journal writes of a run whose lease this store granted are fenced inside the transaction:
the lease is looked up once, and again only after another connection committed (one
`PRAGMA data_version` per transaction tells).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from podium.core.audit import AuditDraft, AuditHead, AuditRecord, audit_key, is_audited
from podium.core.clock import Clock, clock_or_default
from podium.core.records import (
    Event,
    Lease,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    Usage,
)
from podium.core.serde import (
    Unstorable,
    clean_text,
    loads,
    store_dumps,
    text_bytes,
    unstorable_output,
)
from podium.errors import JournalUnavailable, LeaseLost, RunLimitExceededError, UsageError
from podium.stores.base import LISTED_ERROR_CHARS, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES
from podium.stores.sqlite_audit import (
    AUDIT_COLUMNS,
    INSERT_EVENT,
    append_audit,
    event_audit_draft,
    insert_audited_event,
    purge_run,
)
from podium.stores.sqlite_file import (
    APPLICATION_ID,
    busy_timeout_ms,
    check_place,
    create_file,
    open_error,
    verify,
)

_SYNC_MODES = ("off", "normal", "full", "extra")
# When the thread checkpoints the WAL: once the loop has made no commit for CHECKPOINT_QUIET
# seconds (free: nobody waits), or under steady load after CHECKPOINT_EVERY inline commits or
# CHECKPOINT_ROWS rows, whichever comes first (then the few writes made meanwhile wait for it).
CHECKPOINT_QUIET = 0.02
CHECKPOINT_EVERY = 500
CHECKPOINT_ROWS = 2000
CHECKPOINT_IDLE = 1.0  # how often an idle thread looks for new inline commits
CHECKPOINT_BUSY_MS = 50  # a checkpoint gives up rather than wait long for other processes
BUSY_PAUSE = 0.01  # between two tries of a batch that met another process's lock

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
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    owner TEXT,
    epoch INTEGER NOT NULL,
    until REAL NOT NULL,
    holder TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT,
    payload_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_heads (
    run_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT
);
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
_INSERT_EVENT = INSERT_EVENT
_RUN_COLUMNS = "run_id, agent, status, input, output, error, target, created_at, updated_at, usage"
# A listing reads neither input nor output, and at most the start of an error.
_SUMMARY_COLUMNS = (
    f"run_id, agent, status, NULL, NULL, substr(error, 1, {LISTED_ERROR_CHARS}), target, "
    "created_at, updated_at, usage"
)
_STEP_COLUMNS = (
    "run_id, key, agent, kind, status, attempt, output, error, started_at, ended_at, usage"
)

# A claim takes the lease if it is free, let go, run out, already ours, or of a dead holder
# (`steal` is its epoch); every claim gets the next epoch, kept when the lease is let go.
_CLAIM = """
INSERT INTO leases (run_id, owner, epoch, until, holder) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    owner = excluded.owner, epoch = leases.epoch + 1, until = excluded.until,
    holder = excluded.holder
WHERE leases.owner IS NULL OR leases.owner = excluded.owner OR leases.until < ?
    OR leases.epoch = ?
RETURNING epoch
"""
_LEASE_COLUMNS = "run_id, owner, epoch, until, holder"

# An operation: (is_write, function(conn, arg), arg, future or None, run id or None, fence).
# The fence is the epoch of the run's lease this store granted when the write was made: the
# write happens only if it is still the run's epoch.
Fn = Callable[[sqlite3.Connection, Any], Any]
Op = tuple[bool, Fn, Any, "asyncio.Future[Any] | None", str | None, int | None]
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
# What the thread's queue carries: (operations, counts as a write batch), or None, which only
# wakes it for a checkpoint.
Item = tuple[list[Op], bool] | None


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
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def step_row(step: StepRecord) -> tuple[Any, ...]:
    """A snapshot of a step: the record is mutated after `record_started` returns. An output
    no store could keep is `OutputTypeError` here, before anything is written."""
    output = None
    if step.output is not None:
        try:
            output = store_dumps(step.output)
        except Unstorable as e:
            raise unstorable_output(step.agent, step.key, e) from None
    return (
        step.run_id,
        step.key,
        step.agent,
        step.kind,
        str(step.status),
        step.attempt,
        output,
        clean_text(step.error),
        step.started_at,
        step.ended_at,
        None if step.usage is None else store_dumps(step.usage.to_dict()),
    )


def sized_step_row(step: StepRecord, limit: int) -> tuple[tuple[Any, ...], int]:
    """`step_row`, and the size of the output the store keeps, measured on the JSON text it
    writes anyway; an output over `limit` bytes is `RunLimitExceededError`, before anything
    is written."""
    row = step_row(step)
    size = text_bytes(row[6])
    if size > limit:
        raise RunLimitExceededError(step.run_id, "max_output_bytes", limit, size, step.key)
    return row, size


def sized_run_row(run: RunRecord, limit: int) -> tuple[Any, ...]:
    """`run_row`; an input over `limit` bytes as JSON is `RunLimitExceededError`."""
    row = run_row(run)
    size = text_bytes(row[3])
    if size > limit:
        raise RunLimitExceededError(run.run_id, "max_input_bytes", limit, size)
    return row


def event_row(event: Event) -> tuple[Any, ...]:
    data = None
    if event.data is not None:
        try:
            data = store_dumps(event.data)
        except Unstorable as e:
            where = f" at {event.key}" if event.key else ""
            raise UsageError(f"event {event.kind!r}{where}: its data is {e}") from None
    return (
        event.run_id,
        event.seq,
        event.ts,
        event.kind,
        event.key,
        event.agent,
        event.attempt,
        event.duration,
        None if event.usage is None else store_dumps(event.usage.to_dict()),
        data,
    )


def run_row(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.agent,
        str(run.status),
        _run_value(run.run_id, "input", run.input),
        _run_value(run.run_id, "output", run.output),
        clean_text(run.error),
        run.target,
        run.created_at,
        run.updated_at,
        store_dumps(run.usage.to_dict()),
    )


def _run_value(run_id: str, what: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return store_dumps(value)
    except Unstorable as e:
        raise UsageError(f"{what} of run {run_id} cannot be stored: it is {e}") from None


def lease_from_row(row: Any) -> Lease:
    return Lease(row[0], row[1], int(row[2]), float(row[3]), loads(row[4]) or {})


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
    run_id: str,
    status: RunStatus,
    output: Any,
    error: str | None,
    usage: Usage | None,
    now: float,
) -> list[tuple[str, Any]]:
    """The columns `update_run` sets: status, error and time always, output and usage if given."""
    updates: list[tuple[str, Any]] = [
        ("status", str(status)),
        ("error", clean_text(error)),
        ("updated_at", now),
    ]
    if output is not None:
        updates.append(("output", _run_value(run_id, "output", output)))
    if usage is not None:
        updates.append(("usage", store_dumps(usage.to_dict())))
    return updates


# operations, run on either connection ---------------------------------------------------------
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
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} FROM runs {where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
    )
    return [run_from_row(r) for r in conn.execute(sql, params)]


def _load_steps(conn: sqlite3.Connection, run_id: str) -> list[StepRecord]:
    sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY started_at, rowid"
    return [step_from_row(r) for r in conn.execute(sql, (run_id,))]


def _list_events(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    sql = "SELECT * FROM events WHERE run_id = ? ORDER BY seq"
    return [event_from_row(r) for r in conn.execute(sql, (run_id,))]


def _load_audit(conn: sqlite3.Connection, run_id: str) -> list[AuditRecord]:
    sql = f"SELECT {AUDIT_COLUMNS} FROM audit WHERE run_id = ? ORDER BY seq"
    return [AuditRecord(*r) for r in conn.execute(sql, (run_id,))]


def _audit_head(conn: sqlite3.Connection, run_id: str) -> AuditHead | None:
    sql = "SELECT run_id, seq, hash, signature FROM audit_heads WHERE run_id = ?"
    row = conn.execute(sql, (run_id,)).fetchone()
    return None if row is None else AuditHead(*row)


def _audit_runs(conn: sqlite3.Connection, arg: None) -> list[str]:
    sql = "SELECT run_id FROM audit UNION SELECT run_id FROM audit_heads ORDER BY 1"
    return [r[0] for r in conn.execute(sql)]


def _kv_get(conn: sqlite3.Connection, arg: tuple[str, str]) -> Any:
    row = conn.execute("SELECT value FROM kv WHERE namespace = ? AND key = ?", arg).fetchone()
    return None if row is None else loads(row[0])


def _kv_put(conn: sqlite3.Connection, row: tuple[str, str, str]) -> None:
    conn.execute("INSERT OR REPLACE INTO kv (namespace, key, value) VALUES (?, ?, ?)", row)


class _Refused:
    """What `_kv_update` hands back when the caller's function raised (or returned something
    a store cannot hold): raised by the caller, so that the rest of the batch still commits."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _kv_update(conn: sqlite3.Connection, arg: tuple[str, str, Callable[[Any], Any]]) -> Any:
    """Read, compute, write: inside the batch's `BEGIN IMMEDIATE` transaction, which holds the
    database's write lock from the read on, so no other process writes in between."""
    namespace, key, fn = arg
    row = conn.execute(
        "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
    ).fetchone()
    try:
        value = fn(None if row is None else loads(row[0]))
        text = store_dumps(value)
    except Exception as e:
        return _Refused(e)
    _kv_put(conn, (namespace, key, text))
    return value


def _kv_delete(conn: sqlite3.Connection, arg: tuple[str, str]) -> bool:
    return conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", arg).rowcount > 0


def _claim_lease(conn: sqlite3.Connection, arg: tuple[Any, ...]) -> int | None:
    row = conn.execute(_CLAIM, arg).fetchone()
    return None if row is None else int(row[0])


def _renew_lease(conn: sqlite3.Connection, arg: tuple[float, str, str, int]) -> bool:
    sql = "UPDATE leases SET until = ? WHERE run_id = ? AND owner = ? AND epoch = ?"
    return conn.execute(sql, arg).rowcount > 0


def _release_lease(conn: sqlite3.Connection, arg: tuple[str, str, int]) -> None:
    sql = (
        "UPDATE leases SET owner = NULL, until = 0, holder = NULL "
        "WHERE run_id = ? AND owner = ? AND epoch = ?"
    )
    conn.execute(sql, arg)


def _get_lease(conn: sqlite3.Connection, run_id: str) -> Lease | None:
    sql = f"SELECT {_LEASE_COLUMNS} FROM leases WHERE run_id = ? AND owner IS NOT NULL"
    row = conn.execute(sql, (run_id,)).fetchone()
    return None if row is None else lease_from_row(row)


_LEASE_OPS = (_claim_lease, _release_lease)
# What one row can get wrong without harming the rest of its transaction.
_ROW_ERRORS = (
    UsageError,
    LeaseLost,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    ValueError,
    OverflowError,
)


def _fence_holds(conn: sqlite3.Connection, run_id: str, epoch: int) -> bool:
    """Whether `epoch` is still the run's lease (inside the write's transaction)."""
    sql = "SELECT epoch FROM leases WHERE run_id = ? AND owner IS NOT NULL"
    row = conn.execute(sql, (run_id,)).fetchone()
    return row is not None and row[0] == epoch


def _is_busy(error: BaseException) -> bool:
    """Another connection holds the lock (SQLITE_BUSY, SQLITE_LOCKED and their variants)."""
    if not isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (5, 6)


def _kv_list(conn: sqlite3.Connection, namespace: str) -> dict[str, Any]:
    sql = "SELECT key, value FROM kv WHERE namespace = ? ORDER BY key"
    return {key: loads(value) for key, value in conn.execute(sql, (namespace,))}


def _nothing(conn: sqlite3.Connection, arg: Any) -> None:
    return None


def _stop(conn: sqlite3.Connection, arg: Any) -> None:
    raise _Stop


class SQLiteStore:
    """Runs, journal and events in one SQLite file; see the module docstring for the design."""

    # What it keeps at most: a run's input, one step's output, as JSON bytes (its runtime
    # sets them from its limits: `podium.runtime.limits`).
    max_input_bytes: int = MAX_INPUT_BYTES
    max_output_bytes: int = MAX_OUTPUT_BYTES

    def __init__(self, url: str, *, busy_timeout: float = 10.0, clock: Clock | None = None) -> None:
        self.url = url
        self.clock = clock_or_default(clock)  # lease expiry and timestamps
        path, options = parse_sqlite_url(url)
        self.path = path
        sync = options.pop("synchronous", "normal").lower()
        if sync not in _SYNC_MODES:
            raise UsageError(f"SQLite store URL {url!r}: synchronous must be one of {_SYNC_MODES}")
        self.synchronous = sync
        self.busy_timeout = busy_timeout
        if "busy_timeout" in options:
            self.busy_timeout = busy_timeout_ms(url, options.pop("busy_timeout"))
        if options:
            raise UsageError(f"SQLite store URL {url!r}: unknown option(s) {sorted(options)}")
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._inline: sqlite3.Connection | None = None  # used only on the owner thread
        self._owner = 0  # the thread that opened the store: its loop commits inline
        self._inline_lock = threading.Lock()  # held by a commit on the loop or a checkpoint
        self._buf: list[Op] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._sent = 0  # write batches handed to the thread (written on the owner thread only)
        self._done = 0  # ... and applied by it (written on the writer thread only)
        self._commits = self._rows = 0  # inline transactions and rows so far (owner thread)
        self._asked = (0, 0)  # (`_commits`, `_rows`) when the loop last asked for a checkpoint
        self._lost: dict[str | None, BaseException] = {}  # unawaited writes that failed, by run
        self._fences: dict[str, int] = {}  # run -> epoch of the lease this store granted
        self._inline_fences, self._thread_fences = _Fences(), _Fences()  # one per connection

    # lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._thread is not None:
            return
        if self.path != ":memory:":
            check_place(self.path)
        ready: asyncio.Future[sqlite3.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue = queue.SimpleQueue()  # fresh: nothing left over from an earlier thread
        self._buf, self._flush_loop, self._lost = [], None, {}
        self._inline_fences, self._thread_fences = _Fences(), _Fences()
        self._sent = self._done = self._commits = self._rows = 0
        self._asked = (0, 0)
        self._thread = threading.Thread(
            target=self._writer,
            args=(ready,),
            name=f"podium-sqlite:{self.path}",
            daemon=True,
        )
        self._thread.start()
        try:
            self._inline = await ready
        except BaseException:  # failed to connect, or cancelled while connecting
            self._queue.put(([(False, _stop, None, None, None, None)], False))
            self._thread.join()
            self._thread = None
            raise
        self._owner = threading.get_ident()

    async def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            self._flush()
            self._inline = None  # the writer thread closes it
            await self._queued(_stop, None)
        finally:
            thread.join()
            self._thread = None
            self._inline = None
            self._flush_loop = None

    # runs ----------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> None:
        await self._write(_create_run, sized_run_row(run, self.max_input_bytes))

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        output: Any = None,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        updates = run_updates(run_id, status, output, error, usage, self.clock.now())
        sets = ", ".join(f"{column} = ?" for column, _ in updates)
        values = [value for _, value in updates]
        sql = f"UPDATE runs SET {sets} WHERE run_id = ?"
        await self._write(_update_run, (sql, [*values, run_id]), run_id)

    async def get_run(self, run_id: str) -> RunRecord | None:
        result: RunRecord | None = await self._read(_get_run, run_id)
        return result

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        arg = (None if status is None else str(status), limit)
        result: list[RunRecord] = await self._read(_list_runs, arg)
        return result

    # journal and events --------------------------------------------------------------------
    def record_started(self, step: StepRecord) -> None:
        run = step.run_id
        self._buffer((True, _upsert_step, step_row(step), None, run, self._fences.get(run)))

    async def record_finished(self, step: StepRecord) -> int:
        row, size = sized_step_row(step, self.max_output_bytes)
        try:
            await self._write(_upsert_step, row, step.run_id)
        except LeaseLost:
            raise LeaseLost(step.run_id, step.key) from None
        except Exception as e:
            raise JournalUnavailable(step.key, e) from e
        return size

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        result: list[StepRecord] = await self._read(_load_steps, run_id)
        return result

    def record_event(self, event: Event) -> None:
        run = event.run_id
        if is_audited(event.kind):  # chained in the event's own transaction
            arg: Any = (event_row(event), event_audit_draft(event), audit_key())
            self._buffer((True, insert_audited_event, arg, None, run, self._fences.get(run)))
            return
        self._buffer((True, _insert_event, event_row(event), None, run, self._fences.get(run)))

    async def list_events(self, run_id: str) -> list[Event]:
        result: list[Event] = await self._read(_list_events, run_id)
        return result

    # audit ---------------------------------------------------------------------------------
    async def append_audit(self, drafts: list[AuditDraft]) -> list[AuditRecord]:
        result: list[AuditRecord] = await self._write(append_audit, (drafts, audit_key()))
        return result

    async def load_audit(self, run_id: str) -> list[AuditRecord]:
        result: list[AuditRecord] = await self._read(_load_audit, run_id)
        return result

    async def audit_head(self, run_id: str) -> AuditHead | None:
        result: AuditHead | None = await self._read(_audit_head, run_id)
        return result

    async def audit_runs(self) -> list[str]:
        result: list[str] = await self._read(_audit_runs, None)
        return result

    async def purge_run(
        self, run_id: str, *, at: float, actor: str, kv: list[tuple[str, str]] | None = None
    ) -> AuditRecord | None:
        arg = (run_id, at, actor, list(kv or ()), audit_key())
        result: AuditRecord | None = await self._write(purge_run, arg)
        return result

    # key-value ---------------------------------------------------------------------------
    async def kv_get(self, namespace: str, key: str) -> Any | None:
        return await self._read(_kv_get, (namespace, key))

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        await self._write(_kv_put, (namespace, key, store_dumps(value)))

    async def kv_delete(self, namespace: str, key: str) -> bool:
        result: bool = await self._write(_kv_delete, (namespace, key))
        return result

    async def kv_update(self, namespace: str, key: str, fn: Callable[[Any | None], Any]) -> Any:
        result = await self._write(_kv_update, (namespace, key, fn))
        if isinstance(result, _Refused):
            raise result.error
        return result

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._read(_kv_list, namespace)
        return result

    # leases --------------------------------------------------------------------------------
    async def claim_lease(
        self,
        run_id: str,
        owner: str,
        ttl: float,
        *,
        holder: dict[str, Any] | None = None,
        steal: int | None = None,
    ) -> Lease | None:
        now = self.clock.now()
        info = dict(holder or {})
        arg = (run_id, owner, now + ttl, store_dumps(info), now, steal)
        epoch: int | None = await self._write(_claim_lease, arg)
        if epoch is None:
            return None
        self._fences[run_id] = epoch
        return Lease(run_id, owner, epoch, now + ttl, info)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        until = self.clock.now() + ttl
        arg = (until, lease.run_id, lease.owner, lease.epoch)
        if not await self._write(_renew_lease, arg):
            return None
        return Lease(lease.run_id, lease.owner, lease.epoch, until, lease.holder)

    async def release_lease(self, lease: Lease) -> None:
        if self._fences.get(lease.run_id) == lease.epoch:
            del self._fences[lease.run_id]
        await self._write(_release_lease, (lease.run_id, lease.owner, lease.epoch))

    async def get_lease(self, run_id: str) -> Lease | None:
        result: Lease | None = await self._read(_get_lease, run_id)
        return result

    async def flush(self, run_id: str | None = None) -> None:
        # Commit the buffer now; if some of it (or earlier batches) went to the thread, wait
        # for the thread to get past it. Then report a buffered write that could not be made.
        self._check_open()
        if threading.get_ident() != self._owner:
            await self._queued(_nothing, None)
        else:
            self._flush()
            if self._sent != self._done:
                await self._queued(_nothing, None)
        self._raise_lost(run_id)

    # the loop side -------------------------------------------------------------------------
    def _buffer(self, op: Op) -> None:
        """Collect a write; the first one of a loop iteration schedules the flush."""
        self._check_open()
        if threading.get_ident() != self._owner:  # another thread's loop: no inline commits
            self._queue.put(([op], False))
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._buf.append(op)
            self._flush()
            return
        if self._flush_loop is not loop:
            # Schedule before noting it: if scheduling fails (a RecursionError on a deep
            # stack), nothing is marked as scheduled and nothing is buffered, so the caller's
            # error is all there is, and the next write schedules the flush.
            loop.call_soon(self._flush)
            self._flush_loop = loop
        self._buf.append(op)

    def _write(self, fn: Fn, arg: Any, run: str | None = None) -> asyncio.Future[Any]:
        """A write the caller waits for: resolved once the flush that carries it commits.
        A write of `run` is fenced with the epoch of the lease this store granted for it."""
        self._check_open()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fence = None if run is None else self._fences.get(run)
        self._buffer((True, fn, arg, fut, run, fence))
        return fut

    async def _read(self, fn: Fn, arg: Any) -> Any:
        """Reads run on the thread (a big run may take ms), after every write issued before."""
        self._check_open()
        if threading.get_ident() == self._owner:
            self._flush()
        return await self._queued(fn, arg)

    def _queued(self, fn: Fn, arg: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put(([(False, fn, arg, fut, None, None)], False))
        return fut

    def _flush(self) -> None:
        """Commit the buffer inline, or hand it to the thread if that cannot be done at once
        or if earlier batches are still with the thread (they must land first)."""
        self._flush_loop = None
        if not self._buf:
            return
        batch, self._buf = self._buf, []
        conn = self._inline
        if conn is not None and self._sent == self._done and self._inline_lock.acquire(False):
            try:
                done = self._commit_inline(conn, batch)
            finally:
                self._inline_lock.release()
            if done:
                return
        self._sent += 1
        self._queue.put((batch, True))

    def _commit_inline(self, conn: sqlite3.Connection, batch: list[Op]) -> bool:
        """One transaction that never waits (busy_timeout=0, no checkpoints); False if it
        could not be made here, rolled back, for the thread to make."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes, lost, _ = _run_ops(conn, batch, self._inline_fences)
            conn.execute("COMMIT")
        except Exception:  # locked by another process, or anything else: the thread decides
            self._inline_fences.held.clear()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return False
        self._lost.update(lost)
        self._commits += 1
        self._rows += len(batch)
        commits, rows = self._asked
        if self._commits - commits >= CHECKPOINT_EVERY or self._rows - rows >= CHECKPOINT_ROWS:
            self._asked = (self._commits, self._rows)
            self._queue.put(None)  # steady load: checkpoint now, the WAL must not grow on
        _resolve_here(outcomes)
        return True

    def _check_open(self) -> None:
        if self._thread is None:
            raise UsageError(f"store {self.url} is not open")

    def _raise_lost(self, run_id: str | None) -> None:
        """Report (once) a write nobody waited for that failed: of `run_id`, or of any run."""
        if run_id is None:
            run_id = next(iter(self._lost), None)
        lost = self._lost.pop(run_id, None)
        if lost is not None:
            raise lost

    # the writer thread ---------------------------------------------------------------------
    def _connect(self, *, inline: bool = False) -> sqlite3.Connection:
        busy = 0.0 if inline else self.busy_timeout
        conn = sqlite3.connect(
            self.path, timeout=busy, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            if inline:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            elif self.path != ":memory:":
                verify(conn, self.path)
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            # freed bytes are zeroed where that costs no I/O: a purged payload leaves no copy
            conn.execute("PRAGMA secure_delete = FAST")
            if not inline:
                conn.executescript(
                    f"BEGIN IMMEDIATE;PRAGMA application_id = {APPLICATION_ID};{SCHEMA}COMMIT;"
                )
        except BaseException:
            conn.close()
            raise
        return conn

    def _writer(self, ready: asyncio.Future[sqlite3.Connection | None]) -> None:
        inline = pin = None
        try:
            if self.path != ":memory:" and not Path(self.path).exists():
                create_file(self.path, SCHEMA)
            conn = self._connect()
        except BaseException as e:
            _deliver_all([(ready, None, open_error(self.path, e))])
            return
        try:
            # An in-memory file is per connection; a synchronous mode that fsyncs each
            # commit would make the loop wait on the disk: both stay on this thread.
            if self.path != ":memory:" and self.synchronous in ("off", "normal"):
                inline = self._connect(inline=True)
                pin = self._connect(inline=True)
        except sqlite3.Error:
            inline = pin = None
        _deliver_all([(ready, inline, None)])
        try:
            self._serve(conn, pin)
        finally:
            for other in (inline, pin):
                if other is not None:
                    other.close()
            with contextlib.suppress(sqlite3.Error):
                _checkpoint(conn, "TRUNCATE")
            conn.close()

    def _serve(self, conn: sqlite3.Connection, pin: sqlite3.Connection | None) -> None:
        """Apply what is queued, in order, a drained batch per transaction; checkpoint the
        WAL when the loop has gone quiet or asks for it."""
        seen = last = 0  # `_commits` at the last checkpoint, and when last looked at
        stop = False
        while not stop:
            wait = CHECKPOINT_QUIET if self._commits != seen else CHECKPOINT_IDLE
            try:
                items = [self._queue.get(timeout=wait)]
                quiet = False
            except queue.Empty:
                items, quiet = [], True
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._queue.get_nowait())
            ops: list[Op] = []
            counted = 0
            for item in items:
                if item is not None:
                    ops.extend(item[0])
                    counted += item[1]
            if ops:
                stop = self._apply(conn, ops, counted)
            now = self._commits
            if pin and not stop and now != seen and ((quiet and now == last) or None in items):
                self._checkpoint(conn, pin)
                seen = now = self._commits
            last = now

    def _checkpoint(self, conn: sqlite3.Connection, pin: sqlite3.Connection) -> None:
        """Copy the WAL into the database in two passes. The bulk while the loop keeps
        committing, with `pin` reading the WAL so that the loop cannot restart it (a restart
        syncs the new WAL header: that fsync must not happen on the loop). Then the rest
        while the loop's commits wait their turn on this thread (they cannot get the lock),
        and one write from here, which restarts the WAL instead of letting it grow."""
        conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_BUSY_MS}")
        try:
            with contextlib.suppress(sqlite3.Error):
                pin.execute("BEGIN")
                try:
                    pin.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
                    _checkpoint(conn, "PASSIVE")
                finally:
                    pin.execute("COMMIT")
            with self._inline_lock, contextlib.suppress(sqlite3.Error):
                busy, log, copied = _checkpoint(conn, "PASSIVE")
                if not busy and 0 < log == copied:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        version = conn.execute("PRAGMA user_version").fetchone()[0]
                        conn.execute(f"PRAGMA user_version = {int(version)}")
                    finally:
                        conn.execute("COMMIT")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def _apply(self, conn: sqlite3.Connection, batch: list[Op], counted: int) -> bool:
        """Run a batch in one transaction; resolve its futures once it is committed. Another
        process's lock is waited out (`busy_timeout` per try) and the batch tried again until
        it is written: giving up would lose the rows of runs that already moved on."""
        writes = any(op[0] for op in batch)
        while True:
            try:
                if writes:
                    conn.execute("BEGIN IMMEDIATE")
                outcomes, lost, stop = _run_ops(conn, batch, self._thread_fences)
                if writes:
                    conn.execute("COMMIT")
                break
            except Exception as e:
                self._thread_fences.held.clear()
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if _is_busy(e):
                    time.sleep(BUSY_PAUSE)
                    continue
                outcomes = [(op[3], None, e) for op in batch if op[3] is not None]
                lost = {op[4]: e for op in batch if op[3] is None and op[0]}
                stop = any(op[1] is _stop for op in batch)
                break
        self._lost.update(lost)
        self._done += counted  # before waking anyone: the loop may commit inline again
        _deliver_all(outcomes)
        return stop


class _Fences:
    """The fences one connection saw hold, kept while no other connection commits: then a
    transaction checks one number (`PRAGMA data_version`) instead of a lease per run."""

    __slots__ = ("held", "version")

    def __init__(self) -> None:
        self.held: dict[str, int] = {}  # run -> epoch seen current
        self.version = -1

    def check(self, conn: sqlite3.Connection, run: str, epoch: int, fresh: bool) -> bool:
        """Whether `epoch` is still `run`'s lease; `fresh`: first look in this transaction."""
        if fresh:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self.version:  # another connection committed: look again
                self.held.clear()
                self.version = version
        if self.held.get(run) == epoch:
            return True
        if _fence_holds(conn, run, epoch):
            self.held[run] = epoch
            return True
        return False


def _run_ops(
    conn: sqlite3.Connection, batch: list[Op], fences: _Fences
) -> tuple[list[Outcome], dict[str | None, BaseException], bool]:
    """Apply a batch's operations inside the caller's transaction. A row that fails (or is
    fenced out) fails alone; only a failure of the transaction itself propagates. Returns
    the awaited outcomes, the failed unawaited writes by run, and whether `_stop` came."""
    outcomes: list[Outcome] = []
    lost: dict[str | None, BaseException] = {}
    stop = False
    fresh = True
    for _, fn, arg, fut, run, fence in batch:
        try:
            if fence is not None and run is not None:
                if not fences.check(conn, run, fence, fresh):
                    raise LeaseLost(run)
                fresh = False
            result, error = fn(conn, arg), None
            if fn in _LEASE_OPS:  # this connection changed a lease: data_version cannot tell
                fences.held.pop(arg[0], None)
        except _ROW_ERRORS as e:
            result, error = None, e
        except _Stop:
            result, error, stop = None, None, True
        if fut is not None:
            outcomes.append((fut, result, error))
        elif error is not None and not isinstance(error, LeaseLost):
            lost[run] = error  # fenced rows nobody waits for are dropped: nothing to report
    return outcomes, lost, stop


def _checkpoint(conn: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    busy, log, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(log), int(copied)


def _resolve_here(outcomes: list[Outcome]) -> None:
    """Wake the coroutines waiting on an inline commit: same thread, no handoff."""
    if not outcomes:
        return
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    others: list[Outcome] = []
    for outcome in outcomes:
        if outcome[0].get_loop() is here:
            _resolve((outcome,))
        else:
            others.append(outcome)
    _deliver_all(others)


def _deliver_all(outcomes: list[Outcome]) -> None:
    """Wake the waiting coroutines from the thread: one `call_soon_threadsafe` per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(outcomes: Iterable[Outcome]) -> None:
    for fut, result, error in outcomes:
        if fut.done():
            continue
        if error is None:
            fut.set_result(result)
        else:
            fut.set_exception(error)
