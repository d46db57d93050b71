"""Containment holds across a real crash: the worker is SIGKILLed after the reader read the
poisoned invoice; another process resumes the run, the reader is replayed from the journal
(not run again), and the payer's injected payment still waits for a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent.parent


def worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taint_worker", *args],
        cwd=TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_sigkill_after_reading_then_resume_still_escalates(
    persistent_url: str, tmp_path: Path
) -> None:
    run_id = f"taint-{uuid.uuid4().hex[:8]}"
    paid, ready = tmp_path / "paid.txt", tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PODIUM_TAINT_PAID": str(paid),
        "PODIUM_TAINT_READY": str(ready),
    }
    proc = worker({**env, "PODIUM_TAINT_HANG": "1"}, "run", persistent_url, run_id)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited before the pause: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, "the worker never reached the pause"
        time.sleep(0.01)
    proc.kill()  # SIGKILL: no cleanup, no flush
    proc.communicate()
    assert proc.returncode == -9

    waiting = finish(worker(env, "resume", persistent_url, run_id))
    assert waiting["status"] == "waiting"
    assert not paid.exists()  # the injected payment did not run

    done = finish(worker(env, "resume", persistent_url, run_id, "approve"))
    assert done["status"] == "completed", done
    assert paid.read_text() == "attacker 5000\n"  # a person approved it: it ran, once
