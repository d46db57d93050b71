"""A budget across a real crash: a worker process is SIGKILLed in the middle of a runaway
run, another process resumes it, and the budget holds over both: the resumed process counts
on from what the journal says was spent, rather than starting from zero.

The worker is tests/budget_worker.py: every model call costs $0.01 and the budget is $0.055.
It is killed in its third tool call, after three model calls ($0.03); the resumed process
may make three more (to $0.06: the last one started at $0.05, under the limit), not six.
"""

from __future__ import annotations

import asyncio
import json
import os
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


def worker(mode: str, url: str, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "budget_worker", mode, url, run_id],
        cwd=TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"worker exited with {proc.returncode} before hanging:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"worker did not hang within {timeout}s")
        time.sleep(0.01)


async def read_run(url: str, run_id: str) -> tuple[RunRecord | None, list[StepRecord]]:
    store = open_store(url)
    await store.open()
    try:
        return await store.get_run(run_id), await store.load_steps(run_id)
    finally:
        await store.close()


def test_a_budget_holds_across_sigkill_and_resume(persistent_url: str, tmp_path: Path) -> None:
    run_id = f"budget-{uuid.uuid4().hex[:8]}"
    calls = tmp_path / "calls.txt"
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_BUDGET_CALLS": str(calls),
        "PODIUM_BUDGET_READY": str(ready),
    }

    proc = worker("run", persistent_url, run_id, {**env, "PODIUM_BUDGET_HANG_AT": "3"})
    wait_for_file(ready, proc)
    proc.kill()  # SIGKILL: no cleanup, no flush, no finally blocks
    proc.communicate()
    assert proc.returncode == -9
    first_pid = str(proc.pid)
    assert calls.read_text().split() == [first_pid] * 3

    record, steps = asyncio.run(read_run(persistent_url, run_id))
    assert record is not None and record.status == RunStatus.RUNNING
    spent = [s for s in steps if s.kind == "model" and s.status == StepStatus.COMPLETED]
    assert len(spent) == 3

    resumer = worker("resume", persistent_url, run_id, env)
    out, err = resumer.communicate(timeout=60)
    assert resumer.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["status"], result["error_type"], result["limit"]) == (
        "failed",
        "BudgetExceededError",
        "usd",
    )
    assert result["spent"] == pytest.approx(0.06)
    assert "run budget exhausted: usd $0.0600 of $0.0550 spent" in result["error"]
    # three calls in the resumed process, not six: it counted on from the journal
    made = calls.read_text().split()
    assert len(made) == 6 and made[:3] == [first_pid] * 3 and first_pid not in made[3:]
    assert result["usage"]["usd"] == pytest.approx(0.06)
    assert result["alerts"] == ["usd"]  # 70% ($0.0385) was passed in the resumed process

    record, steps = asyncio.run(read_run(persistent_url, run_id))
    assert record is not None and record.status == RunStatus.FAILED
    assert record.usage.usd == pytest.approx(0.06)
    models = [s for s in steps if s.kind == "model"]
    assert [s.status for s in models] == [StepStatus.COMPLETED] * 6
    (refused,) = [s for s in steps if s.status == StepStatus.FAILED and s.kind == "tool"]
    assert refused.attempt == 0 and "BudgetExceededError" in (refused.error or "")
