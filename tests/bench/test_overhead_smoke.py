"""`bench/overhead.py --quick` runs end to end and reports every figure.

No timing is asserted (the machine is shared and noisy); what must hold is that every
scenario ran on every store, podium's runs completed (the benchmark checks their outputs and
fails otherwise), and each figure is a positive number.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # a whole benchmark run in a subprocess
SCRIPT = ROOT / "bench" / "overhead.py"

EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "chain": {
        "memory": ("us_per_run", "us_per_step", "overhead_us_per_hop", "floor_us_per_run"),
        "sqlite": ("us_per_run", "us_per_step", "overhead_us_per_hop", "floor_us_per_run"),
        "asyncio": ("us_per_run", "us_per_step"),
    },
    "fanout": {
        "memory": ("ms_per_run", "floor_ms_per_run", "ratio_to_floor"),
        "sqlite": ("ms_per_run", "floor_ms_per_run", "ratio_to_floor"),
        "asyncio": ("ms_per_run",),
    },
    "concurrent": {
        impl: ("wall_s", "runs_per_s", "peak_rss_mb", "ratio_to_floor")
        for impl in ("asyncio", "memory", "sqlite")
    },
    "import": {"podium": ("median_s", "min_s")},
}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_run_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-peers", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "per-hop overhead" in proc.stdout  # the table was printed
    report = json.loads(out.read_text())
    results = report["results"]
    for scenario, columns in EXPECTED.items():
        for column, metrics in columns.items():
            figures = results[scenario][column]
            assert "skipped" not in figures, (scenario, column, figures)
            for metric in metrics:
                assert _positive(figures.get(metric)), (scenario, column, metric, figures)
    assert results["concurrent"]["memory"]["n"] == 1000
    assert {t["scenario"] for t in report["targets"]} == {"chain", "fanout", "concurrent", "import"}
    assert all(t["value"] is not None for t in report["targets"])
    assert "--no-peers" in results["chain"]["langgraph"]["skipped"]
