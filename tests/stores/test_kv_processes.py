"""Two processes record outcomes on the same store at once, and none is lost.

Each worker (tests/kv_worker.py) records its outcomes through `StoreOutcomes`, the path
Adaptive's record step takes: one atomic `kv_update` per outcome. The workers start their
updates together (each waits for a line on stdin after opening the store), so their
read-modify-writes overlap; a read-then-write without the store's transaction loses some.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.patterns import StoreOutcomes
from podium.stores import open_store

WORKER = Path(__file__).resolve().parent.parent / "kv_worker.py"
PROCESSES = 2
EACH = 150


def _run_workers(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, "shared", str(EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:  # all open: go at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "done"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def _load(url: str, run: bool) -> dict[str, Any]:
    store = open_store(url)
    await store.open()  # the first open creates the schema before the workers race for it
    try:
        return {} if run else await StoreOutcomes(store).load("shared")
    finally:
        await store.close()


def test_no_outcome_is_lost_between_processes(shared_url: str) -> None:
    asyncio.run(_load(shared_url, True))
    _run_workers(shared_url)
    table = asyncio.run(_load(shared_url, False))
    stats = table["kind"]
    assert stats["a"].trials + stats["b"].trials == PROCESSES * EACH
    assert stats["a"].trials == stats["b"].trials == PROCESSES * EACH // 2
    assert stats["a"].cost == 10.0 * stats["a"].trials
    assert sum(s.successes for s in stats.values()) == PROCESSES * ((EACH + 2) // 3)
