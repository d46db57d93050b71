"""`bench/live_models.py` runs against the session's server and reports every figure (no
timing is asserted: the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from podium.testing.llama_server import LlamaServer

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(240)]

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "live_models.py"


def test_the_live_benchmark_reports_checks_and_overhead(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    out = tmp_path / "live.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--base-url",
            llama_server.base_url,
            "--checks",
            "text,stream,reuse",
            "--calls",
            "3",
            "--stream-runs",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"text", "stream", "reuse_run_sync"}
    for c in checks.values():
        assert c["passed"] and c["wall_s"] > 0 and c["tokens_in"] > 0 and c["tokens_out"] > 0
    assert checks["text"]["ttft_s"] is None and checks["reuse_run_sync"]["ttft_s"] is None
    streamed = checks["stream"]
    assert streamed["requests"] == 2 and streamed["extra"]["runs"] == 2
    assert 0 < streamed["ttft_s"] <= streamed["extra"]["podium_full_s"]
    assert 0 < streamed["extra"]["bare_sdk_ttft_s"] <= streamed["extra"]["bare_sdk_full_s"]
    assert "streamed answer, median of 2: first token" in proc.stdout
    over = report["overhead"]
    assert over["calls"] == 3
    assert set(over["median_ms"]) == {"bare_sdk", "bare_sdk_raw", "podium_memory", "podium_sqlite"}
    assert all(v > 0 for v in over["median_ms"].values())
    assert over["ratio_memory"] > 0 and over["ratio_sqlite"] > 0
    assert "one-token call" in proc.stdout


def test_an_unknown_check_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--checks", "nope", "--base-url", "http://127.0.0.1:9/v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown check(s) ['nope']")
