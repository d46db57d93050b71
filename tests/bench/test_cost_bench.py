"""`bench/cost.py` runs end to end: the runaway loop stops within its budget plus one call,
the support workload's figures are positive and deterministic (the same on every run), the
cache answers the repeated tickets, batching saves at least half the triage's tokens, and
tiering sends the easy tickets to the cheap model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "cost.py"


def run_bench(out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--tickets",
            "24",
            "--latency-scale",
            "0",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=out.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "runaway loop under Budget(usd=0.10)" in proc.stdout
    assert "no optimisation" in proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_cost_bench_figures_hold_and_repeat(tmp_path: Path) -> None:
    first = run_bench(tmp_path / "a.json")
    loop = first["runaway"]
    assert loop["within_one_call"] is True
    assert loop["spent_before_last_usd"] < 0.10 <= loop["spent_usd"]
    assert loop["spent_usd"] <= 0.10 + loop["last_call_usd"]
    assert "run budget exhausted: usd" in loop["stopped_by"]
    assert loop["alert_at_call"] is not None and loop["alert_at_call"] < loop["calls"]
    base = first["support"]["no optimisation"]
    assert base["tickets"] == base["completed"] == 24
    assert base["model_calls"] == 48  # triage and reply per ticket
    assert base["tokens"] > 0 and base["usd"] > 0 and base["wall_s"] > 0
    assert first["meta"]["smart_model"]["name"] == "gpt-4o"
    repeats = first["meta"]["repeated_tickets"]
    cached = first["support"]["caching (30% of tickets repeat)"]
    assert repeats > 0 and cached["extra"]["cache_hits"] == 2 * repeats  # triage and reply
    assert cached["model_calls"] == base["model_calls"] - 2 * repeats
    assert cached["usd"] + cached["extra"]["saved_usd"] == pytest.approx(base["usd"], rel=1e-9)
    batched = first["support"]["item batching of 8"]
    assert batched["completed"] == 24 and batched["tokens"] < base["tokens"]
    assert batched["extra"]["items_per_request"] > 1
    part = first["batchable_part"]
    assert part["goal_met"] is True and part["tokens_saving_pct"] >= 50
    tiered = first["support"]["tiering (80% to the cheap tier)"]
    assert tiered["tokens"] == base["tokens"] and tiered["usd"] < 0.5 * base["usd"]
    share = tiered["extra"]["cheap_share"]
    calls = tiered["extra"]["model_calls_by_model"]
    assert calls["gpt-4o-mini"] == round(2 * 24 * share) and 0.6 < share < 0.95
    second = run_bench(tmp_path / "b.json")
    for row in (
        "no optimisation",
        "caching (30% of tickets repeat)",
        "tiering (80% to the cheap tier)",
    ):
        again = second["support"][row]
        ours = first["support"][row]
        assert (again["tokens"], again["usd"]) == (ours["tokens"], ours["usd"]), row
    assert second["runaway"]["spent_usd"] == loop["spent_usd"]
