"""Usage carries prompt-cache tokens, adds them up, and still reads rows written without them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from podium import LLMAgent, Runtime, ScriptedModel, Usage
from podium.core.serde import dumps
from podium.stores import open_store

OLD_ROW = {"input_tokens": 3, "output_tokens": 4, "requests": 1}


def test_cache_tokens_add_up_and_round_trip() -> None:
    a = Usage(100, 10, 1, cache_read_tokens=80, cache_write_tokens=15)
    b = Usage(50, 5, 1, cache_read_tokens=40)
    total = a + b
    assert total == Usage(150, 15, 2, cache_read_tokens=120, cache_write_tokens=15)
    assert total.total_tokens == 165
    assert Usage.from_dict(total.to_dict()) == total


def test_rows_without_cache_fields_look_and_load_as_before() -> None:
    assert Usage.from_dict(OLD_ROW) == Usage(3, 4, 1)
    assert Usage(3, 4, 1).to_dict() == OLD_ROW  # no new keys while the cache was not used


async def test_cache_tokens_survive_the_sqlite_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    cached = Usage(1200, 30, 1, cache_read_tokens=1000, cache_write_tokens=150)
    agent = LLMAgent(
        "summary", model=ScriptedModel(["short"], usage=[cached]), instructions="Summarise."
    )
    async with Runtime(url) as rt:
        result = await rt.run(agent, "a long document", run_id="r1")
    assert result.usage == cached

    store = open_store(url)  # read back from the file by a fresh store
    await store.open()
    try:
        run = await store.get_run("r1")
        (step,) = [s for s in await store.load_steps("r1") if s.kind == "model"]
    finally:
        await store.close()
    assert run is not None and run.usage == cached
    assert step.usage == cached

    # a row written before the cache fields existed still loads
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("UPDATE runs SET usage = ? WHERE run_id = 'r1'", (dumps(OLD_ROW),))
    store = open_store(url)
    await store.open()
    try:
        old = await store.get_run("r1")
    finally:
        await store.close()
    assert old is not None and old.usage == Usage(3, 4, 1)
