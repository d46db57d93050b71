"""`podium audit verify / show` and `podium purge`, in real subprocesses: an approval made
at the command line is chained with the OS user, tampering exits 1 naming the record, a
purge keeps `verify` at 0 and removes the values from the file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from forked import run_module
from podium.runtime.waiting import os_user

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
CANARY = "CANARY-claim-8843"


def podium(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module("podium", *args, cwd=ROOT, env=env)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PODIUM_STORE": f"sqlite:///{tmp_path}/audit.db",
        "CLAIM_EFFECTS_DB": str(tmp_path / "effects.db"),
        "PODIUM_AUDIT_KEY": "cli-key",
    }


def approved_run(env: dict[str, str]) -> str:
    claim = json.dumps({"claim_id": CANARY, "amount": 120})
    started = podium("run", "tests/human_flow.py:flow", "--input", claim, "--json", env=env)
    assert started.returncode == 0, started.stderr
    run_id: str = json.loads(started.stdout)["run_id"]
    done = podium("approve", run_id, "--by", "alice", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    return run_id


def test_verify_show_tamper_and_purge(env: dict[str, str], tmp_path: Path) -> None:
    run_id = approved_run(env)
    ok = podium("audit", "verify", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit intact" in ok.stdout
    shown = json.loads(podium("audit", "show", run_id, "--json", env=env).stdout)
    (decision,) = [r for r in shown if r["kind"] == "decision.recorded"]
    assert decision["actor"] == os_user()
    assert decision["payload"]["data"]["by"] == "alice"
    assert decision["payload"]["data"]["user"] == os_user()
    report = json.loads(podium("audit", "verify", run_id, "--signed", "--json", env=env).stdout)
    assert report["ok"] and report["signatures"] == {run_id: "signed"}

    wrong_key = {**env, "PODIUM_AUDIT_KEY": "another"}
    bad = podium("audit", "verify", env=wrong_key)
    assert bad.returncode == 1 and "signature does not match" in bad.stdout

    purged = podium("purge", run_id, env=env)
    assert purged.returncode == 0, purged.stderr
    assert f"purged {run_id}" in purged.stdout
    assert podium("audit", "verify", run_id, env=env).returncode == 0
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    assert CANARY.encode() not in raw
    again = podium("purge", "--before", "2999-01-01", env=env)
    assert again.returncode == 0 and "nothing to purge" in again.stdout

    db = sqlite3.connect(tmp_path / "audit.db")
    with db:  # an attacker rewrites who decided
        db.execute(
            "UPDATE audit SET actor = 'mallory' WHERE run_id = ? AND kind = 'decision.recorded'",
            (run_id,),
        )
    db.close()
    broken = podium("audit", "verify", env=env)
    assert broken.returncode == 1
    assert f"run {run_id} audit record {decision['seq']}:" in broken.stdout
    assert "do not match its hash" in broken.stdout


def test_bad_input_is_a_clear_error(env: dict[str, str]) -> None:
    bad_date = podium("purge", "--before", "last tuesday", env=env)
    assert bad_date.returncode == 2
    assert "--before 'last tuesday' is not a date" in bad_date.stderr
    neither = podium("purge", env=env)
    assert neither.returncode == 2 and "run ids or --before" in neither.stderr
    unknown = podium("audit", "verify", "nosuchrun", env=env)
    assert unknown.returncode == 2 and "nosuchrun" in unknown.stderr
    claim = json.dumps({"claim_id": "c1", "amount": 120})
    waiting = podium("run", "tests/human_flow.py:flow", "--input", claim, "--json", env=env)
    run_id = json.loads(waiting.stdout)["run_id"]
    refused = podium("purge", run_id, env=env)
    assert (
        refused.returncode == 2 and "is waiting" in refused.stderr and "--force" in refused.stderr
    )
    forced = podium("purge", run_id, "--force", "--json", env=env)
    assert forced.returncode == 0 and json.loads(forced.stdout)[0]["kind"] == "purge.done"
