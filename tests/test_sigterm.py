"""Graceful shutdown of a real worker process: SIGTERM parks runs at a step boundary, the
process exits cleanly, and another worker finishes every run from its journal."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from forked import run_module, spawn_module

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_sigterm_parks_runs_and_another_worker_finishes_them(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/runs.db"
    env = {**os.environ, "PODIUM_STORE": store, "SIGTERM_LOG": str(tmp_path / "log.db")}
    submitted = [
        run_module(
            "podium", "submit", "tests/sigterm_flow.py:flow", "--input", str(i), cwd=ROOT, env=env
        )
        for i in range(3)
    ]
    assert all(s.returncode == 0 for s in submitted), [s.stderr for s in submitted]
    ids = [s.stdout.strip() for s in submitted]
    worker = spawn_module(
        "podium", "worker", "--concurrency", "3", "--grace", "10", "--json", cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 30
    while _count(tmp_path, "slow started") < 3:  # every run is inside its slow step
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert json.loads(out)["parked"] == 3
    assert _count(tmp_path, "slow done") == 3  # running steps were allowed to finish
    assert _count(tmp_path, "last") == 0  # no new step started after SIGTERM
    for run_id in ids:
        shown = run_module("podium", "show", run_id, "--json", cwd=ROOT, env=env)
        assert json.loads(shown.stdout)["status"] == "running"  # parked, resumable
    done = run_module("podium", "worker", "--until-idle", "--json", cwd=ROOT, env=env)
    assert json.loads(done.stdout)["completed"] == 3, done.stderr
    assert _count(tmp_path, "slow started") == 3  # the finished slow steps were not re-run
    assert _count(tmp_path, "last") == 3


def _count(tmp_path: Path, what: str) -> int:
    path = tmp_path / "log.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as db:
        db.execute("CREATE TABLE IF NOT EXISTS log (what TEXT)")
        return int(db.execute("SELECT count(*) FROM log WHERE what = ?", (what,)).fetchone()[0])
