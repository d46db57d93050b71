"""Shared fixtures.

Stores: `store_url` is parametrised over memory, SQLite (a file under `tmp_path`) and
Postgres; `store` is that store, opened, on the test's `clock` (a `FakeClock`). Postgres tests
use the server at 127.0.0.1:5432, database `test` (override with `PODIUM_TEST_PG`), each in a
schema of its own that is dropped afterwards. An unreachable server fails those tests with a
message rather than skipping them: CI starts the server, and a silent skip would hide a broken
store.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from podium.stores import Store, open_store
from podium.testing import FakeClock

# pytest caches its assertion-rewritten test modules as bytecode, unless writing bytecode is
# off (PYTHONDONTWRITEBYTECODE, set on some machines): then every run, and every xdist
# worker, rewrites and compiles all ~100 test modules again, several seconds each time. The
# cache lives in __pycache__ folders, which git ignores (so do modules imported from here on).
sys.dont_write_bytecode = False

PG_BASE = os.environ.get("PODIUM_TEST_PG", "")
PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    f"postgresql://{getpass.getuser()}@127.0.0.1:5432/test",
)

STORE_KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]
PERSISTENT_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _pg_execute(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _find_pg() -> str:
    errors = []
    for url in (PG_BASE,) if PG_BASE else PG_CANDIDATES:
        try:
            asyncio.run(_pg_execute(url, "SELECT 1"))
        except Exception as e:
            errors.append(f"{url}: {type(e).__name__}: {e}")
        else:
            return url
    pytest.fail(
        "PostgreSQL is not reachable for tests marked `postgres` (start it, or set "
        "PODIUM_TEST_PG, or deselect with -m 'not postgres'):\n  " + "\n  ".join(errors),
        pytrace=False,
    )


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """A URL of the test database that answers; fails the test if none does."""
    return _find_pg()


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A Postgres store URL whose tables live in a fresh schema, dropped after the test."""
    schema = f"podium_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(pg_base_url, f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_base_url else "?"
    try:
        yield f"{pg_base_url}{sep}search_path={schema}"
    finally:
        asyncio.run(_pg_execute(pg_base_url, f"DROP SCHEMA {schema} CASCADE"))


def _url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{(tmp_path / 'podium.db').resolve()}"  # absolute: four slashes
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store_url(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each kind: memory, SQLite file, Postgres schema."""
    return _url_for(store_kind, request, tmp_path)


@pytest.fixture(params=PERSISTENT_KINDS)
def persistent_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each kind that outlives the process: SQLite file, Postgres schema."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the test advances it (`store` reads it too)."""
    return FakeClock()


@pytest.fixture
async def store(store_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    s = open_store(store_url, clock=clock)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy tests first: run last, the longest of them (a crash test, a live model) would
    keep one xdist worker busy long after the other ran out of work. The order is otherwise
    the collection order, the same in every worker. Tests of a real model all go to one
    worker (`--dist loadgroup`): one llama.cpp server and one model in memory, not one per
    worker fighting for the same cores."""
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(pytest.mark.xdist_group("llama"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
