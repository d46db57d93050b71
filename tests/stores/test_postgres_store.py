"""What only the Postgres store has: URLs, connection errors, a writer that reconnects."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from podium.core.records import RunRecord, RunStatus, StepRecord, StepStatus
from podium.errors import UsageError
from podium.stores import open_store
from podium.stores.postgres import PostgresStore, _safe

pytestmark = pytest.mark.postgres


def test_url_checks_and_password_never_shown() -> None:
    assert isinstance(open_store("postgres://u@h/db"), PostgresStore)
    with pytest.raises(UsageError):
        PostgresStore("mysql://u@h/db")
    assert _safe("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert _safe("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_unreachable_server_is_a_clear_error() -> None:
    store = PostgresStore("postgresql://u:secret@127.0.0.1:1/db")
    with pytest.raises(UsageError, match=r"cannot connect to Postgres store .*u:\*\*\*@") as info:
        await store.open()
    assert "secret" not in str(info.value)


async def test_two_stores_create_tables_at_once(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
        assert all([await s.get_run("r") is not None for s in stores])
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_writer_reconnects_after_losing_its_connection(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        await store.create_run(RunRecord("r", "flow", RunStatus.RUNNING, created_at=1.0))
        writer_pid = store._conn.get_server_pid()  # type: ignore[union-attr]
        admin = await asyncpg.connect(pg_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", writer_pid)
        finally:
            await admin.close()
        step = StepRecord("r", "/flow", "flow", "agent", StepStatus.COMPLETED, output=[1])
        await store.record_finished(step)
        [row] = await store.load_steps("r")
        assert row.output == [1]
    finally:
        await store.close()


def test_survives_a_new_event_loop_per_call(pg_url: str) -> None:
    """`run_sync` opens and closes the store (pool, writer task) on a fresh loop each time."""
    from podium import Runtime, Sequential, agent

    @agent
    def inc(x: int) -> int:
        return x + 1

    rt = Runtime(pg_url)
    flow = Sequential("twice", [inc, inc])
    assert rt.run_sync(flow, 1).output == 3
    assert rt.run_sync(flow, 10).output == 12
