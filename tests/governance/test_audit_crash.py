"""A SIGKILL in the middle of audit writes leaves a chain that verifies: every record is
committed with its event in one transaction, so what survives is a whole prefix."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from forked import spawn_module
from podium.runtime.audit import verify_store
from podium.stores import open_store

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent.parent


async def _verify(url: str) -> tuple[bool, str, int]:
    store = open_store(url)
    await store.open()
    try:
        report = await verify_store(store)
        return report.ok, str(report), report.records
    finally:
        await store.close()


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_sigkill_mid_write_leaves_a_verifiable_chain(
    persistent_url: str, tmp_path: Path, delay: float
) -> None:
    ready = tmp_path / "ready"
    env = dict(os.environ)
    proc = spawn_module("audit_worker", persistent_url, str(ready), cwd=TESTS, env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"worker exited with {proc.returncode}:\n{err}")
        assert time.monotonic() < deadline, "the worker made no runs"
        time.sleep(0.01)
    time.sleep(delay)  # well inside a stream of writes
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    ok, report, records = asyncio.run(_verify(persistent_url))
    assert ok, report
    assert records > 16 * 6
