"""The shared store: PostgreSQL through asyncpg, for many workers on many machines.

    PostgresStore("postgresql://podium@db:5432/podium")
    PostgresStore("postgresql://podium@db/podium?search_path=team_a")   # any server setting

Query parameters asyncpg does not know become server settings for every connection, so
`?search_path=...` picks a schema and `?synchronous_commit=off` trades the last moments
before a *server* crash for speed (a worker being killed loses nothing either way).

Journal rows and events the door does not wait for are buffered; one writer task sends
everything buffered as ONE statement (an upsert of steps and an insert of events from
arrays, run as one implicit transaction), so a step's started row, its events and its
finished row usually cost one round trip together. `record_finished` waits for the batch
holding its row. JSON is kept in `json` columns (not `jsonb`) so the text, and the order
of an object's keys, come back exactly as written.

If that statement fails for what a row holds (text Postgres cannot keep, a constraint), the
batch is sent again row by row, so only the bad row's writer hears of it; every other run's
rows are written. The same statement fences the rows of runs whose lease this store granted:
it locks those leases (`FOR SHARE`, so a claim waits for it to commit) and writes a fenced
row only while its epoch is current, returning the runs whose lease was taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from podium.core.audit import (
    AuditDraft,
    AuditHead,
    AuditRecord,
    audit_key,
    chain,
    draft,
    head_of,
    is_audited,
    sha256,
)
from podium.core.clock import Clock, clock_or_default
from podium.core.records import Event, Lease, RunRecord, RunStatus, StepRecord, Usage
from podium.core.serde import loads, store_dumps
from podium.errors import JournalUnavailable, LeaseLost, UsageError
from podium.stores.base import LISTED_ERROR_CHARS, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES
from podium.stores.sqlite import (
    event_from_row,
    event_row,
    lease_from_row,
    run_from_row,
    run_updates,
    sized_run_row,
    sized_step_row,
    step_from_row,
    step_row,
)
from podium.stores.sqlite_audit import (
    AUDIT_COLUMNS,
    event_audit_draft,
    purge_payload,
    purged_kv_value,
)

if TYPE_CHECKING:
    import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id text PRIMARY KEY,
    agent text NOT NULL,
    status text NOT NULL,
    input json,
    output json,
    error text,
    target text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    usage json,
    id bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS runs_status_created ON runs (status, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS steps (
    run_id text NOT NULL,
    key text NOT NULL,
    agent text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    output json,
    error text,
    started_at double precision NOT NULL,
    ended_at double precision,
    usage json,
    id bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS events (
    run_id text NOT NULL,
    seq integer NOT NULL,
    ts double precision NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    agent text NOT NULL,
    attempt integer NOT NULL,
    duration double precision,
    usage json,
    data json,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS kv (
    namespace text NOT NULL,
    key text NOT NULL,
    value json NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS leases (
    run_id text PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL,
    until double precision NOT NULL,
    holder json
);
CREATE TABLE IF NOT EXISTS audit (
    run_id text NOT NULL,
    seq integer NOT NULL,
    kind text NOT NULL,
    at double precision NOT NULL,
    actor text NOT NULL,
    payload text,
    payload_hash text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS audit_heads (
    run_id text PRIMARY KEY,
    seq integer NOT NULL,
    hash text NOT NULL,
    signature text
);
"""

_RUN_COLUMNS = "run_id, agent, status, input, output, error, target, created_at, updated_at, usage"
# A listing reads neither input nor output, and at most the start of an error.
_SUMMARY_COLUMNS = (
    f"run_id, agent, status, NULL::json, NULL::json, left(error, {LISTED_ERROR_CHARS}), "
    "target, created_at, updated_at, usage"
)
_STEP_COLUMNS = (
    "run_id, key, agent, kind, status, attempt, output, error, started_at, ended_at, usage"
)
_EVENT_COLUMNS = "run_id, seq, ts, kind, key, agent, attempt, duration, usage, data"

# One statement, one round trip, one transaction: every buffered step row and event, each
# fenced row (`fz`: the epoch this store granted) written only if its run's lease still has
# that epoch; it returns the (run, epoch) fences that no longer hold.
_BATCH = """
WITH f AS (
    SELECT DISTINCT r, ep FROM unnest($22::text[], $23::bigint[]) AS f(r, ep)
), held AS (
    SELECT l.run_id, l.epoch FROM leases l JOIN f ON l.run_id = f.r AND l.epoch = f.ep
    WHERE l.owner IS NOT NULL
    FOR SHARE OF l
), s AS (
    INSERT INTO steps (run_id, key, agent, kind, status, attempt, output, error, started_at,
                       ended_at, usage)
    SELECT r, k, a, kd, st, at, o::json, er, sa, ea, u::json
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::text[], $8::text[], $9::float8[], $10::float8[], $11::text[], $24::bigint[])
         AS x(r, k, a, kd, st, at, o, er, sa, ea, u, fz)
    WHERE x.fz IS NULL OR (x.r, x.fz) IN (SELECT run_id, epoch FROM held)
    ON CONFLICT (run_id, key) DO UPDATE SET
        agent = excluded.agent, kind = excluded.kind, status = excluded.status,
        attempt = excluded.attempt, output = excluded.output, error = excluded.error,
        started_at = excluded.started_at, ended_at = excluded.ended_at, usage = excluded.usage
), e AS (
    INSERT INTO events (run_id, seq, ts, kind, key, agent, attempt, duration, usage, data)
    SELECT r, sq, ts, kd, k, a, at, d, u::json, dt::json
    FROM unnest($12::text[], $13::int[], $14::float8[], $15::text[], $16::text[], $17::text[],
                $18::int[], $19::float8[], $20::text[], $21::text[], $25::bigint[])
         AS y(r, sq, ts, kd, k, a, at, d, u, dt, fz)
    WHERE y.fz IS NULL OR (y.r, y.fz) IN (SELECT run_id, epoch FROM held)
    ON CONFLICT (run_id, seq) DO NOTHING
)
SELECT f.r, f.ep FROM f WHERE (f.r, f.ep) NOT IN (SELECT run_id, epoch FROM held)
"""
_STEP_FIELDS = 11
_EVENT_FIELDS = 10
# A claim takes the lease if it is free, let go, run out, already ours, or of a dead holder
# (`steal` is its epoch); every claim gets the next epoch, kept when the lease is let go.
_CLAIM = """
INSERT INTO leases (run_id, owner, epoch, until, holder) VALUES ($1, $2, 1, $3, $4::json)
ON CONFLICT (run_id) DO UPDATE SET
    owner = EXCLUDED.owner, epoch = leases.epoch + 1, until = EXCLUDED.until,
    holder = EXCLUDED.holder
WHERE leases.owner IS NULL OR leases.owner = EXCLUDED.owner OR leases.until < $5
    OR leases.epoch = $6
RETURNING epoch
"""
_HOLDS = (
    "EXISTS (SELECT 1 FROM leases WHERE run_id = $1 AND epoch = {fence} "
    "AND owner IS NOT NULL FOR SHARE)"
)

# A buffered row and the epoch that fences it (None: not fenced).
Row = tuple[tuple[Any, ...], int | None]
StepKey = tuple[str, str]
# The audit drafts of audited events, by (run, event seq), with the signing key.
Audits = dict[tuple[str, int], tuple[AuditDraft, bytes | None]]


class _Outcome:
    """What one batch came to: a failure of the whole, or of single rows, and fenced runs."""

    __slots__ = ("events", "fenced", "steps", "whole")

    def __init__(self) -> None:
        self.whole: BaseException | None = None
        self.steps: dict[StepKey, BaseException] = {}
        self.events: list[tuple[str, BaseException]] = []
        self.fenced: set[tuple[str, int]] = set()  # (run, epoch) fences that no longer hold

    def step_error(self, key: StepKey, fence: int | None) -> BaseException | None:
        if self.whole is not None:
            return self.whole
        if fence is not None and (key[0], fence) in self.fenced:
            return LeaseLost(key[0], key[1])
        return self.steps.get(key)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one array per column, as `unnest` wants them."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


def _batch_args(steps: list[Row], events: list[Row]) -> list[Any]:
    """The arguments of `_BATCH`: the rows' columns, the fences, and each row's fence."""
    fences = {(row[0], fence) for row, fence in (*steps, *events) if fence is not None}
    return [
        *_columns([row for row, _ in steps], _STEP_FIELDS),
        *_columns([row for row, _ in events], _EVENT_FIELDS),
        [run for run, _ in fences],
        [epoch for _, epoch in fences],
        [fence for _, fence in steps],
        [fence for _, fence in events],
    ]


def _import_asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - depends on the install
        raise UsageError(
            "the Postgres store needs asyncpg: pip install 'podium[postgres]'"
        ) from None
    return asyncpg


class PostgresStore:
    """Runs, journal and events in PostgreSQL; see the module docstring for the design.

    Open and close it on the event loop that uses it: its pool and writer task belong to
    that loop (`Runtime.run_sync` does this for you on every call).
    """

    # What it keeps at most: a run's input, one step's output, as JSON bytes (its runtime
    # sets them from its limits: `podium.runtime.limits`).
    max_input_bytes: int = MAX_INPUT_BYTES
    max_output_bytes: int = MAX_OUTPUT_BYTES

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 10, clock: Clock | None = None
    ) -> None:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("postgres", "postgresql"):
            raise UsageError(f"Postgres store URL {url!r} must start with postgresql://")
        self.url = url
        self.clock = clock_or_default(clock)  # lease expiry and timestamps
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._closing = False
        # buffered rows, keyed so a step's later row replaces its earlier one in a batch
        self._steps: dict[StepKey, Row] = {}
        self._events: list[Row] = []
        self._audits: Audits = {}
        # who waits for the next batch: `record_finished` for its step's row, `flush` for all
        self._waiters: list[tuple[asyncio.Future[None], StepKey | None]] = []
        self._lost: dict[str, BaseException] = {}  # unawaited rows that failed, by run
        self._fences: dict[str, int] = {}  # run -> epoch of the lease this store granted

    # lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        asyncpg = _import_asyncpg()
        try:
            conn = await asyncpg.connect(self.url)
        except (OSError, asyncpg.PostgresError) as e:
            raise UsageError(f"cannot connect to Postgres store {_safe(self.url)}: {e}") from e
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('podium.schema'))")
                await conn.execute(SCHEMA)
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size
            )
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"podium-postgres-writer:{_safe(self.url)}"
        )

    async def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await writer
        finally:
            self._writer = None
            pool, conn = self._pool, self._conn
            self._pool = self._conn = None
            if conn is not None:
                await conn.close()
            if pool is not None:
                await pool.close()

    # runs ----------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> None:
        asyncpg = _import_asyncpg()
        sql = (
            f"INSERT INTO runs ({_RUN_COLUMNS}) "
            "VALUES ($1, $2, $3, $4::json, $5::json, $6, $7, $8, $9, $10::json)"
        )
        try:
            await self._open_pool().execute(sql, *sized_run_row(run, self.max_input_bytes))
        except asyncpg.UniqueViolationError:
            raise UsageError(f"a run with id {run.run_id!r} already exists") from None

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
        sets = ", ".join(
            f"{col} = ${i}{'::json' if col in ('output', 'usage') else ''}"
            for i, (col, _) in enumerate(updates, start=2)
        )
        values = [value for _, value in updates]
        sql = f"UPDATE runs SET {sets} WHERE run_id = $1"
        fence = self._fences.get(run_id)
        if fence is not None:
            sql += " AND " + _HOLDS.format(fence=f"${len(values) + 2}")
            values.append(fence)
        status_text = await self._open_pool().execute(sql, run_id, *values)
        if fence is not None and str(status_text).endswith(" 0"):
            raise LeaseLost(run_id)

    async def get_run(self, run_id: str) -> RunRecord | None:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = $1"
        row = await self._open_pool().fetchrow(sql, run_id)
        return None if row is None else run_from_row(row)

    async def list_runs(
        self, *, status: RunStatus | None = None, limit: int = 100
    ) -> list[RunRecord]:
        order = "ORDER BY created_at DESC, id DESC LIMIT $1"
        pool = self._open_pool()
        if status is None:
            rows = await pool.fetch(f"SELECT {_SUMMARY_COLUMNS} FROM runs {order}", limit)
        else:
            sql = f"SELECT {_SUMMARY_COLUMNS} FROM runs WHERE status = $2 {order}"
            rows = await pool.fetch(sql, limit, str(status))
        return [run_from_row(r) for r in rows]

    # journal and events --------------------------------------------------------------------
    def record_started(self, step: StepRecord) -> None:
        self._check_open()
        self._steps[(step.run_id, step.key)] = (step_row(step), self._fences.get(step.run_id))
        self._wake_soon()

    async def record_finished(self, step: StepRecord) -> int:
        self._check_open()
        key = (step.run_id, step.key)
        row, size = sized_step_row(step, self.max_output_bytes)
        self._steps[key] = (row, self._fences.get(step.run_id))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((fut, key))
        self._wake_soon()
        try:
            await fut
        except LeaseLost:
            raise
        except Exception as e:
            raise JournalUnavailable(step.key, e) from e
        return size

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        await self._flush_pending()
        sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY started_at, id"
        rows = await self._open_pool().fetch(sql, run_id)
        return [step_from_row(r) for r in rows]

    def record_event(self, event: Event) -> None:
        self._check_open()
        self._events.append((event_row(event), self._fences.get(event.run_id)))
        if is_audited(event.kind):  # chained in the event's own transaction
            self._audits[(event.run_id, event.seq)] = (event_audit_draft(event), audit_key())
        self._wake_soon()

    # audit ---------------------------------------------------------------------------------
    async def append_audit(self, drafts: list[AuditDraft]) -> list[AuditRecord]:
        async with self._open_pool().acquire() as conn, conn.transaction():
            return await _append_audit(conn, drafts, audit_key())

    async def load_audit(self, run_id: str) -> list[AuditRecord]:
        await self._flush_pending()
        sql = f"SELECT {AUDIT_COLUMNS} FROM audit WHERE run_id = $1 ORDER BY seq"
        return [AuditRecord(*r) for r in await self._open_pool().fetch(sql, run_id)]

    async def audit_head(self, run_id: str) -> AuditHead | None:
        await self._flush_pending()
        sql = "SELECT run_id, seq, hash, signature FROM audit_heads WHERE run_id = $1"
        row = await self._open_pool().fetchrow(sql, run_id)
        return None if row is None else AuditHead(*row)

    async def audit_runs(self) -> list[str]:
        await self._flush_pending()
        sql = "SELECT run_id FROM audit UNION SELECT run_id FROM audit_heads ORDER BY 1"
        return [r[0] for r in await self._open_pool().fetch(sql)]

    async def purge_run(
        self, run_id: str, *, at: float, actor: str, kv: list[tuple[str, str]] | None = None
    ) -> AuditRecord | None:
        await self._flush_pending()
        async with self._open_pool().acquire() as conn, conn.transaction():
            return await _purge(conn, run_id, at, actor, list(kv or ()), audit_key())

    async def list_events(self, run_id: str) -> list[Event]:
        await self._flush_pending()
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = $1 ORDER BY seq"
        rows = await self._open_pool().fetch(sql, run_id)
        return [event_from_row(r) for r in rows]

    async def flush(self, run_id: str | None = None) -> None:
        await self._drain()
        if run_id is None:
            run_id = next(iter(self._lost), None)
        lost = self._lost.pop(run_id, None) if run_id is not None else None
        if lost is not None:
            raise lost

    async def kv_get(self, namespace: str, key: str) -> Any | None:
        sql = "SELECT value FROM kv WHERE namespace = $1 AND key = $2"
        value = await self._open_pool().fetchval(sql, namespace, key)
        return loads(value)

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        sql = (
            "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value"
        )
        await self._open_pool().execute(sql, namespace, key, store_dumps(value))

    async def kv_delete(self, namespace: str, key: str) -> bool:
        sql = "DELETE FROM kv WHERE namespace = $1 AND key = $2"
        return str(await self._open_pool().execute(sql, namespace, key)) != "DELETE 0"

    async def kv_update(self, namespace: str, key: str, fn: Callable[[Any | None], Any]) -> Any:
        """One transaction: make sure the row exists, lock it (`SELECT ... FOR UPDATE`), write
        what `fn` makes of it. A concurrent update of the key waits for the lock, then reads
        the committed value; a new row is seen as None (and rolled back if `fn` raises)."""
        async with self._open_pool().acquire() as conn, conn.transaction():
            created = await conn.execute(
                "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, 'null') "
                "ON CONFLICT (namespace, key) DO NOTHING",
                namespace,
                key,
            )
            current = await conn.fetchval(
                "SELECT value FROM kv WHERE namespace = $1 AND key = $2 FOR UPDATE",
                namespace,
                key,
            )
            value = fn(None if created == "INSERT 0 1" else loads(current))
            await conn.execute(
                "UPDATE kv SET value = $3 WHERE namespace = $1 AND key = $2",
                namespace,
                key,
                store_dumps(value),
            )
        return value

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        sql = "SELECT key, value FROM kv WHERE namespace = $1 ORDER BY key"
        rows = await self._open_pool().fetch(sql, namespace)
        return {r["key"]: loads(r["value"]) for r in rows}

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
        epoch = await self._open_pool().fetchval(
            _CLAIM, run_id, owner, now + ttl, store_dumps(info), now, steal
        )
        if epoch is None:
            return None
        self._fences[run_id] = int(epoch)
        return Lease(run_id, owner, int(epoch), now + ttl, info)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease | None:
        until = self.clock.now() + ttl
        sql = "UPDATE leases SET until = $1 WHERE run_id = $2 AND owner = $3 AND epoch = $4"
        status = await self._open_pool().execute(sql, until, lease.run_id, lease.owner, lease.epoch)
        if str(status).endswith(" 0"):
            return None
        return Lease(lease.run_id, lease.owner, lease.epoch, until, lease.holder)

    async def release_lease(self, lease: Lease) -> None:
        if self._fences.get(lease.run_id) == lease.epoch:
            del self._fences[lease.run_id]
        sql = (
            "UPDATE leases SET owner = NULL, until = 0, holder = NULL "
            "WHERE run_id = $1 AND owner = $2 AND epoch = $3"
        )
        await self._open_pool().execute(sql, lease.run_id, lease.owner, lease.epoch)

    async def get_lease(self, run_id: str) -> Lease | None:
        sql = "SELECT run_id, owner, epoch, until, holder FROM leases "
        sql += "WHERE run_id = $1 AND owner IS NOT NULL"
        row = await self._open_pool().fetchrow(sql, run_id)
        return None if row is None else lease_from_row(row)

    # internals -----------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Wait until everything buffered so far was sent (or failed)."""
        self._check_open()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((fut, None))
        self._wake_soon()
        await fut

    async def _flush_pending(self) -> None:
        """Reads see this process's buffered writes; skip the round trip when none are."""
        if self._writer is not None and (self._steps or self._events):
            await self._drain()

    def _wake_soon(self) -> None:
        """Wake the writer on the loop's next turn. `Event.set` can fail half-way on a deep
        stack (a RecursionError once the event is set but before the writer is woken), which
        would leave the writer asleep for good; `call_soon` either schedules or raises."""
        if not self._wake_pending:
            assert self._writer is not None
            self._writer.get_loop().call_soon(self._wake_now)
            self._wake_pending = True

    def _wake_now(self) -> None:
        self._wake_pending = False
        self._wake.set()

    def _check_open(self) -> None:
        if self._writer is None:
            raise UsageError(f"store {_safe(self.url)} is not open")

    def _open_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise UsageError(f"store {_safe(self.url)} is not open")
        return self._pool

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            steps, events, waiters = self._steps, self._events, self._waiters
            audits = self._audits
            self._steps, self._events, self._waiters, self._audits = {}, [], [], {}
            outcome = _Outcome()
            if steps or events:
                outcome = await self._write(steps, events, audits)
            awaited = {key for _, key in waiters if key is not None}
            self._note_lost(steps, events, awaited, outcome)
            for fut, key in waiters:
                if fut.done():
                    continue
                error = outcome.whole
                if key is not None:
                    error = outcome.step_error(key, steps[key][1])
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
            if self._closing and not (self._steps or self._events or self._waiters):
                return

    def _note_lost(
        self, steps: dict[StepKey, Row], events: list[Row], awaited: set[StepKey], out: _Outcome
    ) -> None:
        """Keep, by run, the failures of rows nobody waits for: `flush` reports them. Fenced
        rows are dropped without a word: their run's next awaited write says so."""
        for key, (_, fence) in steps.items():
            error = None if key in awaited else out.step_error(key, fence)
            if error is not None and not isinstance(error, LeaseLost):
                self._lost[key[0]] = error
        for run_id, error in out.events:
            self._lost[run_id] = error
        if out.whole is not None:
            for row, _ in events:
                self._lost[row[0]] = out.whole

    async def _write(
        self, steps: dict[StepKey, Row], events: list[Row], audits: Audits
    ) -> _Outcome:
        """Send one batch. If it fails for what a row holds, send its rows one by one, so
        that only the bad rows fail; if the connection is gone, the whole batch fails."""
        outcome = _Outcome()
        try:
            outcome.fenced = await self._send(list(steps.values()), events, audits)
            return outcome
        except Exception as e:
            if self._conn is None or self._conn.is_closed():
                outcome.whole = e
                return outcome
        for key, row in steps.items():
            try:
                outcome.fenced |= await self._send([row], [])
            except Exception as e:
                outcome.steps[key] = e
        for row in events:
            try:
                outcome.fenced |= await self._send([], [row], audits)
            except Exception as e:
                outcome.events.append((row[0][0], e))
        return outcome

    async def _send(
        self, steps: list[Row], events: list[Row], audits: Audits | None = None
    ) -> set[tuple[str, int]]:
        """One statement; on a broken connection reconnect and send it again (the batch is
        idempotent: upserts and insert-if-absent). Returns the fences that no longer hold.
        A batch with audited events is one transaction with their audit records."""
        args = _batch_args(steps, events)
        audited = [(row, fence) for row, fence in events if (row[0], row[1]) in (audits or {})]
        conn = self._conn
        assert conn is not None
        try:
            rows = await _send_batch(conn, args, audited, audits or {})
        except Exception:
            if not conn.is_closed():
                raise
            self._conn = conn = await _import_asyncpg().connect(self.url)
            rows = await _send_batch(conn, args, audited, audits or {})
        return rows


async def _send_batch(
    conn: Any, args: list[Any], audited: list[Row], audits: Audits
) -> set[tuple[str, int]]:
    if not audited:
        return {(row[0], row[1]) for row in await conn.fetch(_BATCH, *args)}
    async with conn.transaction():
        runs = sorted({row[0] for row, _ in audited})
        for run_id in runs:  # one chain writer per run at a time, in a fixed order
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", "podium.audit:" + run_id
            )
        keys = list(dict.fromkeys((row[0], row[1]) for row, _ in audited))
        stored = await conn.fetch(  # an event stored before (a replay) is not chained again
            "SELECT run_id, seq FROM events WHERE (run_id, seq) IN "
            "(SELECT * FROM unnest($1::text[], $2::int[]))",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        seen = {(r[0], r[1]) for r in stored}
        fenced = {(row[0], row[1]) for row in await conn.fetch(_BATCH, *args)}
        drafts = []
        for row, fence in audited:
            key = (row[0], row[1])
            if key not in seen and (fence is None or (row[0], fence) not in fenced):
                seen.add(key)
                drafts.append(audits[key])
        if drafts:
            await _append_audit(conn, [d for d, _ in drafts], drafts[-1][1], locked=True)
    return fenced


async def _append_audit(
    conn: Any, drafts: list[AuditDraft], key: bytes | None, *, locked: bool = False
) -> list[AuditRecord]:
    """Chain `drafts` after each run's last stored record (inside the caller's transaction)."""
    by_run: dict[str, list[AuditDraft]] = {}
    for d in drafts:
        by_run.setdefault(d.run_id, []).append(d)
    out: list[AuditRecord] = []
    for run_id in sorted(by_run):
        if not locked:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", "podium.audit:" + run_id
            )
        last = await conn.fetchrow(
            "SELECT seq, hash FROM audit WHERE run_id = $1 ORDER BY seq DESC LIMIT 1", run_id
        )
        prev = None if last is None else AuditHead(run_id, int(last[0]), last[1])
        records = chain(by_run[run_id], prev)
        await conn.executemany(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [r.row() for r in records],
        )
        head = head_of(records[-1], key)
        await conn.execute(
            "INSERT INTO audit_heads (run_id, seq, hash, signature) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (run_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
            "signature = EXCLUDED.signature",
            head.run_id,
            head.seq,
            head.hash,
            head.signature,
        )
        out.extend(records)
    return out


async def _purge(
    conn: Any, run_id: str, at: float, actor: str, kv: list[tuple[str, str]], key: bytes | None
) -> AuditRecord | None:
    """See `podium.stores.sqlite_audit.purge_run`; Postgres keeps the old row versions
    until VACUUM reclaims them."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "podium.audit:" + run_id)
    row = await conn.fetchrow(
        "SELECT input::text, output::text, error FROM runs WHERE run_id = $1 FOR UPDATE", run_id
    )
    if row is None:
        raise UsageError(f"no run {run_id!r} in this store to purge")
    hashes: dict[str, str] = {}
    for name, text in zip(("run.input", "run.output", "run.error"), row, strict=True):
        if text is not None:
            hashes[name] = sha256(text)
    sql = "SELECT key, output::text, error FROM steps WHERE run_id = $1"
    for step, output, error in await conn.fetch(sql, run_id):
        if output is not None:
            hashes[f"step.{step}.output"] = sha256(output)
        if error is not None:
            hashes[f"step.{step}.error"] = sha256(error)
    sql = "SELECT seq, data::text FROM events WHERE run_id = $1 AND data IS NOT NULL"
    for seq, data in await conn.fetch(sql, run_id):
        hashes[f"event.{seq}.data"] = sha256(data)
    for namespace, k in kv:
        text = await conn.fetchval(
            "SELECT value::text FROM kv WHERE namespace = $1 AND key = $2", namespace, k
        )
        if text is not None:
            hashes[f"kv.{namespace}.{k}"] = sha256(text)
            await conn.execute(
                "UPDATE kv SET value = $3::json WHERE namespace = $1 AND key = $2",
                namespace,
                k,
                purged_kv_value(text),
            )
    await conn.execute(
        "UPDATE runs SET input = NULL, output = NULL, error = NULL WHERE run_id = $1", run_id
    )
    await conn.execute("UPDATE steps SET output = NULL, error = NULL WHERE run_id = $1", run_id)
    await conn.execute("UPDATE events SET data = NULL WHERE run_id = $1", run_id)
    status = await conn.execute(
        "UPDATE audit SET payload = NULL WHERE run_id = $1 AND payload IS NOT NULL "
        "AND kind NOT LIKE 'purge.%'",
        run_id,
    )
    cleared = int(str(status).rsplit(" ", 1)[-1])
    if not hashes and not cleared:
        return None
    payload = purge_payload(hashes, cleared)
    d = draft(run_id, "purge.done", at, actor, payload)
    (record,) = await _append_audit(conn, [d], key, locked=True)
    return record


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"
