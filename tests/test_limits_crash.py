"""A run's step limit across a real crash: a worker is SIGKILLed in the middle of a run, another
process resumes it, and the limit holds over both: the resumed process counts on from the
journal (and keeps the limit the run was started with) rather than starting from zero.

The worker is tests/limits_worker.py: one step for the agent, one per tool call, 12 at most.
It is killed in its fourth tool call; the resumed process runs that call again (its row is
counted once) and only the calls that keep the run within 12 steps."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from podium import RunStatus, StepStatus
from test_budget_crash import read_run, wait_for_file

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent


def worker(mode: str, url: str, run_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "limits_worker", mode, url, run_id],
        cwd=TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_step_limit_holds_across_sigkill_and_resume(
    persistent_url: str, tmp_path: Path
) -> None:
    run_id = f"limits-{uuid.uuid4().hex[:8]}"
    calls = tmp_path / "calls.txt"
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_LIMITS_CALLS": str(calls),
        "PODIUM_LIMITS_READY": str(ready),
    }
    proc = worker("run", persistent_url, run_id, {**env, "PODIUM_LIMITS_HANG_AT": "4"})
    wait_for_file(ready, proc)
    proc.kill()  # SIGKILL: no cleanup, no flush, no finally blocks
    proc.communicate()
    assert proc.returncode == -9
    first = str(proc.pid)
    assert calls.read_text().split() == [first] * 4

    resumer = worker("resume", persistent_url, run_id, env)
    out, err = resumer.communicate(timeout=60)
    assert resumer.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["status"], result["error_type"], result["limit"]) == (
        "failed",
        "RunLimitExceededError",
        "max_steps",
    )
    assert result["used"] == 13 and result["step"] == "/grinder/step#11"

    _, steps = asyncio.run(read_run(persistent_url, run_id))
    assert len(steps) == 12  # the journal holds 12 steps: never more, across both processes
    done = [s.key for s in steps if s.status == StepStatus.COMPLETED and s.kind == "tool"]
    assert done == [f"/grinder/step#{i}" for i in range(11)]  # #3 again, then on to #10
    made = calls.read_text().split()
    # 11 tool calls in all fit in 12 steps: the killed one (#3) runs again on resume
    assert len(made) == 12 and made[:4] == [first] * 4 and first not in made[4:]
    record, _ = asyncio.run(read_run(persistent_url, run_id))
    assert record is not None and record.status == RunStatus.FAILED
