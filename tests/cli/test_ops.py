"""`podium dlq ...`, `podium submit` and `podium worker`, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from forked import run_module

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def podium(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module("podium", *args, cwd=ROOT, env=env)


def test_dead_letter_queue_from_the_command_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path}/ops.db", "OPS_BROKEN": str(broken)}
    run = podium("run", "tests/ops_flow.py:flow", "--input", "1", "--json", env=env)
    assert run.returncode == 1
    run_id = json.loads(run.stdout)["run_id"]
    (entry,) = json.loads(podium("dlq", "list", "--json", env=env).stdout)
    assert entry["run_id"] == run_id and "carrier rejected" in entry["error"]
    shown = json.loads(podium("dlq", "show", run_id, "--json", env=env).stdout)
    assert shown["dead_letter"]["agent"] == "ship" and shown["status"] == "failed"
    statuses = {s["key"]: s["status"] for s in shown["steps"]}
    assert statuses["/ship/prepare#0"] == "completed"
    assert statuses["/ship/deliver#0"] == "failed"
    broken.unlink()  # the fix
    requeued = podium("dlq", "requeue", run_id, "--json", env=env)
    assert requeued.returncode == 0, requeued.stderr
    assert json.loads(requeued.stdout)["output"] == "delivered 2"
    assert json.loads(podium("dlq", "list", "--json", env=env).stdout) == []
    again = podium("dlq", "discard", run_id, env=env)
    assert again.returncode == 2 and "not in the dead-letter queue" in again.stderr


def test_submit_then_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path}/ops.db"}
    ids = [
        podium("submit", "tests/ops_flow.py:flow", "--input", str(i), env=env).stdout.strip()
        for i in range(3)
    ]
    assert all(len(i) == 16 for i in ids)
    done = podium("worker", "--until-idle", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["completed"] == 3
    for i, run_id in enumerate(ids):
        shown = json.loads(podium("show", run_id, "--json", env=env).stdout)
        assert shown["status"] == "completed" and shown["output"] == f"delivered {i + 1}"
