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
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from podium.errors import UsageError
from podium.runtime.records import Event, RunRecord, RunStatus, StepRecord, Usage
from podium.runtime.serde import dumps, loads
from podium.stores.sqlite import (
    event_from_row,
    event_row,
    run_from_row,
    run_row,
    run_updates,
    step_from_row,
    step_row,
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
"""

_RUN_COLUMNS = "run_id, agent, status, input, output, error, target, created_at, updated_at, usage"
_STEP_COLUMNS = (
    "run_id, key, agent, kind, status, attempt, output, error, started_at, ended_at, usage"
)
_EVENT_COLUMNS = "run_id, seq, ts, kind, key, agent, attempt, duration, usage, data"

# One statement, one round trip, one transaction: every buffered step row and event.
_BATCH = """
WITH s AS (
    INSERT INTO steps (run_id, key, agent, kind, status, attempt, output, error, started_at,
                       ended_at, usage)
    SELECT r, k, a, kd, st, at, o::json, er, sa, ea, u::json
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                $7::text[], $8::text[], $9::float8[], $10::float8[], $11::text[])
         AS x(r, k, a, kd, st, at, o, er, sa, ea, u)
    ON CONFLICT (run_id, key) DO UPDATE SET
        agent = excluded.agent, kind = excluded.kind, status = excluded.status,
        attempt = excluded.attempt, output = excluded.output, error = excluded.error,
        started_at = excluded.started_at, ended_at = excluded.ended_at, usage = excluded.usage
), e AS (
    INSERT INTO events (run_id, seq, ts, kind, key, agent, attempt, duration, usage, data)
    SELECT r, sq, ts, kd, k, a, at, d, u::json, dt::json
    FROM unnest($12::text[], $13::int[], $14::float8[], $15::text[], $16::text[], $17::text[],
                $18::int[], $19::float8[], $20::text[], $21::text[])
         AS y(r, sq, ts, kd, k, a, at, d, u, dt)
    ON CONFLICT (run_id, seq) DO NOTHING
)
SELECT 1
"""
_STEP_FIELDS = 11
_EVENT_FIELDS = 10


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one array per column, as `unnest` wants them."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


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

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("postgres", "postgresql"):
            raise UsageError(f"Postgres store URL {url!r} must start with postgresql://")
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._closing = False
        # buffered rows, keyed so a step's later row replaces its earlier one in a batch
        self._steps: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._events: list[tuple[Any, ...]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._lost: BaseException | None = None

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
            await self._open_pool().execute(sql, *run_row(run))
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
        updates = run_updates(status, output, error, usage, time.time())
        sets = ", ".join(
            f"{col} = ${i}{'::json' if col in ('output', 'usage') else ''}"
            for i, (col, _) in enumerate(updates, start=2)
        )
        values = [value for _, value in updates]
        await self._open_pool().execute(
            f"UPDATE runs SET {sets} WHERE run_id = $1", run_id, *values
        )

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
            rows = await pool.fetch(f"SELECT {_RUN_COLUMNS} FROM runs {order}", limit)
        else:
            sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = $2 {order}"
            rows = await pool.fetch(sql, limit, str(status))
        return [run_from_row(r) for r in rows]

    # journal and events --------------------------------------------------------------------
    def record_started(self, step: StepRecord) -> None:
        self._check_open()
        self._steps[(step.run_id, step.key)] = step_row(step)
        self._wake_soon()

    async def record_finished(self, step: StepRecord) -> None:
        self._check_open()
        self._steps[(step.run_id, step.key)] = step_row(step)
        await self.flush()

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        await self._flush_pending()
        sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY started_at, id"
        rows = await self._open_pool().fetch(sql, run_id)
        return [step_from_row(r) for r in rows]

    def record_event(self, event: Event) -> None:
        self._check_open()
        self._events.append(event_row(event))
        self._wake_soon()

    async def list_events(self, run_id: str) -> list[Event]:
        await self._flush_pending()
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = $1 ORDER BY seq"
        rows = await self._open_pool().fetch(sql, run_id)
        return [event_from_row(r) for r in rows]

    async def flush(self) -> None:
        self._check_open()
        if self._lost is not None:
            lost, self._lost = self._lost, None
            raise lost
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake_soon()
        await fut

    async def kv_get(self, namespace: str, key: str) -> Any | None:
        sql = "SELECT value FROM kv WHERE namespace = $1 AND key = $2"
        value = await self._open_pool().fetchval(sql, namespace, key)
        return loads(value)

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        sql = (
            "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value"
        )
        await self._open_pool().execute(sql, namespace, key, dumps(value))

    async def kv_delete(self, namespace: str, key: str) -> bool:
        sql = "DELETE FROM kv WHERE namespace = $1 AND key = $2"
        return str(await self._open_pool().execute(sql, namespace, key)) != "DELETE 0"

    async def kv_claim(
        self, namespace: str, key: str, owner: str, ttl: float, *, steal_from: str | None = None
    ) -> bool:
        now = time.time()
        sql = (
            "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value "
            "WHERE (kv.value->>'owner') IN ($4, $5) OR (kv.value->>'until')::float8 < $6"
        )
        value = dumps({"owner": owner, "until": now + ttl})
        pool = self._open_pool()
        status = await pool.execute(sql, namespace, key, value, owner, steal_from or owner, now)
        return str(status).endswith(" 1")

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        sql = "SELECT key, value FROM kv WHERE namespace = $1 ORDER BY key"
        rows = await self._open_pool().fetch(sql, namespace)
        return {r["key"]: loads(r["value"]) for r in rows}

    # internals -----------------------------------------------------------------------------
    async def _flush_pending(self) -> None:
        """Reads see this process's buffered writes; skip the round trip when none are."""
        if self._writer is not None and (self._steps or self._events):
            await self.flush()

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
            steps, events, waiters = list(self._steps.values()), self._events, self._waiters
            self._steps, self._events, self._waiters = {}, [], []
            error: BaseException | None = None
            if steps or events:
                try:
                    await self._write(steps, events)
                except Exception as e:
                    error = e
            for fut in waiters:
                if not fut.done():
                    if error is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(error)
            if error is not None and not waiters:
                self._lost = error  # nobody waited: the next flush reports it
            if self._closing and not (self._steps or self._events or self._waiters):
                return

    async def _write(self, steps: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
        """Send one batch; on a broken connection reconnect and send it again (the batch is
        idempotent: upserts and insert-if-absent)."""
        args = [*_columns(steps, _STEP_FIELDS), *_columns(events, _EVENT_FIELDS)]
        conn = self._conn
        assert conn is not None
        try:
            await conn.execute(_BATCH, *args)
        except Exception:
            if not conn.is_closed():
                raise
            self._conn = conn = await _import_asyncpg().connect(self.url)
            await conn.execute(_BATCH, *args)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"
