"""The door's cache slot: a model's answer, or a tool's result, reused for the same request.

    LLMAgent("triage", model=..., cache=True)            # its model calls, kept forever
    LLMAgent("triage", model=..., cache=Cache(ttl=3600))  # ... for an hour
    @tool(cache=Cache(ttl=60))                            # a tool's results, by arguments
    Runtime(cache="sqlite:///cache.db")                   # where: memory (default), SQLite, Redis

Caching is opt-in per agent (its model calls), per model (`model.cache = Cache(...)`) or per
tool. The key is a hash of everything that decides the answer: for a model call the model (and
its endpoint), the settings, the messages, the tool schemas and the output schema; for a tool
its name, its argument schema and the arguments. A tool that changes the world (`effect=True`)
is never cached: asking for it is a `UsageError` when the tool is built.

A hit costs nothing: the model is not asked, so the step has no usage and is journaled with
attempt 0 (budgets count no call, a resume seeds nothing from it). Its output is journaled
like any other, so a resumed run replays it from the journal, not from the cache. A
`cache.hit` event says what the hit saved (`saved_usd`, `saved_tokens`, priced at the run's
prices); `podium trace` shows the step as cached, `podium cost` adds up the savings. Hits
are served even when a budget is exhausted (the slot sits before the budget's): they spend
nothing.

Single flight: identical calls that arrive while the first is still being answered wait for
it and share its answer (one request, the rest are hits), in one runtime. If the first fails,
one of those waiting asks next, and the others wait for that one. A cache that cannot be read
or written (Redis down) is logged and treated as a miss: a cache must never fail a run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import ValidationError

from podium.core.clock import Clock, clock_or_default
from podium.core.records import Usage
from podium.core.serde import to_plain
from podium.errors import UsageError
from podium.runtime.privacy import scrub_secrets

if TYPE_CHECKING:
    from podium.runtime.door import Call, Handler, Middleware

ENV = "PODIUM_CACHE"
HIT = "cache.hit"
_VERSION = "podium-cache-1"  # part of every key: a new layout of entries gets new keys

logger = logging.getLogger("podium")


@dataclass(frozen=True, slots=True)
class Cache:
    """Cache a model's answers or a tool's results; `ttl` is how long an entry lives, in
    seconds (`None`: until the cache store drops it)."""

    ttl: float | None = None

    def __post_init__(self) -> None:
        ttl = self.ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)):
            raise UsageError(f"Cache(ttl=...) must be a number of seconds, got {ttl!r}")
        if ttl is not None and not ttl > 0:
            raise UsageError(f"Cache(ttl=...) must be positive, got {ttl!r}")


def as_cache(value: Any, owner: str) -> Cache | None:
    """`cache=` as given to an agent, model or tool: `True`, a `Cache`, or `False`/`None`."""
    if value is None or value is False:
        return None
    if value is True:
        return Cache()
    if isinstance(value, Cache):
        return value
    raise UsageError(f"{owner}: cache must be True, False or a podium.Cache, got {value!r}")


# where entries live ------------------------------------------------------------------------
@runtime_checkable
class CacheStore(Protocol):
    """Where cached entries live. Values are small JSON objects; `ttl` is in seconds."""

    url: str

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any], ttl: float | None) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """Entries in this process, the least recently used dropped past `max_entries`."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float | None, dict[str, Any]]] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires is not None and expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: dict[str, Any], ttl: float | None) -> None:
        expires = None if ttl is None else self._clock() + ttl
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._entries)


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS podium_cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires REAL
)
"""


class SQLiteCache:
    """Entries in a SQLite file, shared by every process that opens it. Queries run on one
    thread of their own, so the event loop never waits on the file."""

    PURGE_EVERY = 256  # writes between sweeps of expired entries

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.path = _sqlite_path(url)
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # no fsync per entry: losing one is harmless
            conn.execute(_SQLITE_SCHEMA)
            conn.commit()
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="podium-cache")

        def job() -> Any:
            with self._lock:
                return fn(self._connect())

        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    async def get(self, key: str) -> dict[str, Any] | None:
        now = self._clock()

        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT value FROM podium_cache WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, now),
            ).fetchone()
            return None if row is None else str(row[0])

        text = await self._run(read)
        return None if text is None else dict(json.loads(text))

    async def put(self, key: str, value: dict[str, Any], ttl: float | None) -> None:
        now = self._clock()
        expires = None if ttl is None else now + ttl
        text = json.dumps(value, separators=(",", ":"))
        self._writes += 1
        purge = self._writes % self.PURGE_EVERY == 0

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO podium_cache (key, value, expires) VALUES (?, ?, ?)",
                (key, text, expires),
            )
            if purge:
                conn.execute("DELETE FROM podium_cache WHERE expires <= ?", (now,))
            conn.commit()

        await self._run(write)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._close_conn)
            pool.shutdown(wait=True)
        else:
            self._close_conn()

    def _close_conn(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisCache:
    """Entries in Redis (`redis://host:port/db`), shared by every process and machine that
    names it; Redis expires them itself. Needs `pip install 'podium[redis]'`."""

    def __init__(self, url: str, *, prefix: str = "podium:cache:") -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the install
            raise UsageError(f"cache {url!r} needs redis: pip install 'podium[redis]'") from None
        self.url = url
        self.prefix = prefix
        self._redis: Any = None

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.url, decode_responses=True)
        return self._redis

    async def get(self, key: str) -> dict[str, Any] | None:
        text = await self._client().get(self.prefix + key)
        return None if text is None else dict(json.loads(text))

    async def put(self, key: str, value: dict[str, Any], ttl: float | None) -> None:
        text = json.dumps(value, separators=(",", ":"))
        px = None if ttl is None else max(1, round(ttl * 1000))
        await self._client().set(self.prefix + key, text, px=px)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()


def _sqlite_path(url: str) -> str:
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise UsageError(f"cache URL {url!r}: write sqlite:///relative/path.db or sqlite:////abs")
    path = rest[3:].split("?", 1)[0]
    if not path:
        raise UsageError(f"cache URL {url!r} names no file")
    return path


def open_cache(spec: str | CacheStore | None = None, clock: Clock | None = None) -> CacheStore:
    """The cache store a runtime uses: the one given, or the one a URL names (`memory://`,
    `sqlite:///path.db`, `redis://host:port/db`); by default `PODIUM_CACHE`, else memory.
    Memory and SQLite entries expire by `clock` (default: the real one); Redis's by Redis."""
    now = clock_or_default(clock).now
    if spec is not None and not isinstance(spec, str):
        if isinstance(spec, CacheStore):
            return spec
        raise UsageError(f"cache must be a URL or a cache store, got {spec!r}")
    url = spec or os.environ.get(ENV) or "memory://"
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryCache(url, clock=now)
    if scheme == "sqlite":
        return SQLiteCache(url, clock=now)
    if scheme in ("redis", "rediss"):
        return RedisCache(url)
    raise UsageError(
        f"unknown cache URL {url!r}: use memory://, sqlite:///path.db or redis://host:port/db"
    )


# keys and entries --------------------------------------------------------------------------
def cache_key(call: Call) -> str:
    """A hash of what decides the step's answer, as its target describes it."""
    identity = call.target.cache_identity(call.input)
    text = json.dumps(
        [_VERSION, call.kind, to_plain(identity)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _entry(call: Call, output: Any) -> dict[str, Any]:
    """What is kept: the output as JSON, and what one answer costs (for what a hit saves)."""
    usage = getattr(output, "usage", None)
    if not isinstance(usage, Usage):
        usage = None
    # secrets masked, as everywhere a run keeps values (a hit then serves them masked)
    kept = scrub_secrets(to_plain(output))
    entry: dict[str, Any] = {"output": kept, "at": call.run.clock.now()}
    if usage is not None:
        entry["usage"] = usage.to_dict()
    model = getattr(call.target, "model_name", None)
    if model:
        entry["model"] = model
    return entry


def _hit(call: Call, entry: dict[str, Any], source: str) -> Any:
    """Serve a hit: no call is made, so none is counted (attempt 0) and nothing is spent."""
    output = entry.get("output")
    check = call.check_output
    if check is not None and output is not None:
        output = check(output)
    call.attempt = 0
    run = call.run
    usage = Usage.from_dict(entry.get("usage"))
    model = entry.get("model")
    saved = 0.0
    if model and run.prices is not None:
        saved = run.prices.cost(str(model), usage)
    data: dict[str, Any] = {"source": source, "saved_usd": round(saved, 10)}
    if usage.total_tokens:
        data["saved_tokens"] = usage.total_tokens
    if model:
        data["model"] = model
    run.emit(HIT, call.key, call.name, 0, data=data)
    text = getattr(output, "text", None)
    if run.live is not None and isinstance(text, str) and text:
        run.emit_delta(call.key, call.name, 0, text)  # a streamed run sees the answer too
    return output


# the middleware ----------------------------------------------------------------------------
def cache_middleware() -> Middleware:
    """The door's cache slot, with this runtime's calls in flight (single flight)."""
    flights: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    async def cache(call: Call, nxt: Handler) -> Any:
        if call.kind == "agent":
            return await nxt(call)
        policy: Cache | None = getattr(call.target, "cache", None)
        store = call.run.cache
        if policy is None or store is None or getattr(call.target, "effect", False):
            return await nxt(call)
        return await _cached(call, nxt, policy, store, flights)

    return cache


async def _cached(
    call: Call,
    nxt: Handler,
    policy: Cache,
    store: CacheStore,
    flights: dict[str, asyncio.Future[dict[str, Any] | None]],
) -> Any:
    key = cache_key(call)
    flight = flights.get(key)
    while flight is not None:  # the same call is being answered: wait, and share its answer
        entry = await asyncio.shield(flight)
        if entry is not None:
            served = _serve(call, entry, "in-flight")
            if served is not _MISS:
                return served
            break
        flight = flights.get(key)  # it failed: the first to wake up asks, the others wait
    flight = flights[key] = asyncio.get_running_loop().create_future()
    try:
        entry = await _get(store, key)
        if entry is not None:
            served = _serve(call, entry, "cache")
            if served is not _MISS:
                flight.set_result(entry)
                return served
        output = await nxt(call)
        entry = _entry(call, output)
        flight.set_result(entry)
    finally:
        if not flight.done():
            flight.set_result(None)  # failed or cancelled: the waiting calls ask on their own
        if flights.get(key) is flight:
            del flights[key]
    await _put(store, key, entry, policy.ttl)
    return output


_MISS: Any = object()


def _serve(call: Call, entry: dict[str, Any], source: str) -> Any:
    """The hit, or `_MISS` when the entry no longer fits the step's type (it changed)."""
    try:
        return _hit(call, entry, source)
    except (ValidationError, TypeError, ValueError):
        return _MISS


async def _get(store: CacheStore, key: str) -> dict[str, Any] | None:
    try:
        return await store.get(key)
    except Exception as e:
        logger.warning(
            "cache %s: cannot read (%s: %s); asking instead", store.url, type(e).__name__, e
        )
        return None


async def _put(store: CacheStore, key: str, entry: dict[str, Any], ttl: float | None) -> None:
    try:
        await store.put(key, entry, ttl)
    except Exception as e:
        logger.warning("cache %s: cannot write (%s: %s)", store.url, type(e).__name__, e)
