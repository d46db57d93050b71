"""`bench/otel.py --quick` runs end to end and writes its table: tracing on costs more than
off (spans are made), by a sane factor, and the lean spans were used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_otel_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "otel.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "otel.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OpenTelemetry off vs on" in proc.stdout
    rows = {r["store"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"memory", "sqlite"}
    for row in rows.values():
        assert row["lean_spans"] is True
        assert row["off_us_min"] > 0 and row["on_us_min"] > 0
        assert row["otlp_us_min"] > 0
        for mode in ("on", "otlp"):  # a sanity bound on a shared machine, not the goal
            assert 0.5 < row[f"{mode}_ratio_min"] < 20
