"""`bench/security.py --quick` runs end to end, and its figures say what the issue asks: no
injected side effect executed under podium while the baselines execute some, no raw canary
anywhere, every tampered audit record detected, no approval accepted for another call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_security_bench_meets_its_goals(tmp_path: Path) -> None:
    out = tmp_path / "security.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "security.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    configs = data["injection"]["configs"]
    assert configs["podium"]["injected_executed"] == 0
    assert configs["none"]["injected_executed"] == data["injection"]["cases"]
    assert (
        0 < configs["constraints"]["injected_executed"] < configs["allowlist"]["injected_executed"]
    )
    assert configs["podium"]["legit_with_person"] == data["injection"]["cases"]
    assert not any(data["pii"]["raw_occurrences"].values())
    assert data["pii"]["allowed_cards_seen_by_billing"] == data["pii"]["cards"] > 0
    assert data["audit"]["detected"] == data["audit"]["trials"] > 0
    assert data["approvals"]["accepted"] == 0 and data["approvals"]["attempts"] > 0
    assert data["goals_met"] is True
