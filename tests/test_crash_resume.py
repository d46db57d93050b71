"""A real crash: a worker process is SIGKILLed in the middle of a run, and another process
resumes it. Completed steps must not run again; the run must complete.

The worker is tests/crash_worker.py; it hangs in step 3 after steps 0-2 completed (their
side effects are rows in a separate SQLite file), the test kills it, checks the run is still
`running`, then resumes it from a new process that loads the flow from its stored target.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from podium import RunStatus, StepStatus
from podium.core.records import RunRecord, StepRecord
from podium.stores import open_store

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
HANG_AT = 3
STEPS = 6


def worker(mode: str, url: str, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crash_worker", mode, url, run_id],
        cwd=TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"worker exited with {proc.returncode} before step {HANG_AT}:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"worker did not reach step {HANG_AT} within {timeout}s")
        time.sleep(0.01)


def effects(side_db: Path, run_id: str) -> dict[int, int]:
    conn = sqlite3.connect(side_db)
    try:
        rows = conn.execute(
            "SELECT step, COUNT(*) FROM effects WHERE run_id = ? GROUP BY step", (run_id,)
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


async def read_run(url: str, run_id: str) -> tuple[RunRecord | None, list[StepRecord]]:
    store = open_store(url)
    await store.open()
    try:
        return await store.get_run(run_id), await store.load_steps(run_id)
    finally:
        await store.close()


def test_sigkill_mid_run_then_resume_in_another_process(
    persistent_url: str, tmp_path: Path
) -> None:
    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    side_db = tmp_path / "effects.db"
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_CRASH_SIDE_DB": str(side_db),
        "PODIUM_CRASH_READY": str(ready),
    }

    proc = worker("run", persistent_url, run_id, {**env, "PODIUM_CRASH_HANG_AT": str(HANG_AT)})
    wait_for_file(ready, proc)
    proc.kill()  # SIGKILL: no cleanup, no flush, no finally blocks
    proc.communicate()
    assert proc.returncode == -9

    record, steps = asyncio.run(read_run(persistent_url, run_id))
    assert record is not None and record.status == RunStatus.RUNNING
    assert record.target == "crash_worker:flow"
    done = {s.key for s in steps if s.status == StepStatus.COMPLETED}
    assert done == {f"/crashy/step{n}#0" for n in range(HANG_AT)}
    assert effects(side_db, run_id) == {n: 1 for n in range(HANG_AT)}

    resumer = worker("resume", persistent_url, run_id, env)
    out, err = resumer.communicate(timeout=30)
    assert resumer.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["status"], result["output"]) == ("completed", STEPS)

    assert effects(side_db, run_id) == {n: 1 for n in range(STEPS)}
    record, steps = asyncio.run(read_run(persistent_url, run_id))
    assert record is not None and record.status == RunStatus.COMPLETED
    assert record.output == STEPS
    assert len(steps) == STEPS + 1
    assert all(s.status == StepStatus.COMPLETED for s in steps)
