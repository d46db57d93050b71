"""The due-diligence example: five analysts in parallel, a synthesis memo, and gaps named
when an analyst fails or hangs; on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from examples.due_diligence.flow import build_flow
from podium import RunStatus, Runtime

ROOT = Path(__file__).resolve().parents[2]

DEAL = "DD-NWR-2025"
TEAM = "/due_diligence/analysts#0"


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "deals.db"
    monkeypatch.setenv("DILIGENCE_DB", str(path))
    return path


def rows(path: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


async def test_five_reviews_make_a_memo_with_conditions(rt: Runtime, biz: Path) -> None:
    result = await rt.run(build_flow(), DEAL)
    assert result.status == RunStatus.COMPLETED, result.error
    memo = result.output
    assert (memo.deal_id, memo.recommendation, memo.gaps) == (
        DEAL,
        "proceed_with_conditions",
        {},
    )
    ratings = {f.area: (f.rating, f.score) for f in memo.findings}
    assert ratings == {
        "financial": ("amber", 70),
        "legal": ("amber", 65),
        "market": ("green", 80),
        "technology": ("amber", 60),
        "esg": ("green", 75),
    }
    assert "net debt is 2.9x EBITDA" in memo.conditions
    assert "5 of 5 reviews" in memo.text and memo.model.startswith("scripted")
    keys = {s.key for s in await rt.steps(result.run_id)}
    for area in ("financial", "legal", "market", "technology", "esg"):
        assert f"{TEAM}/{area}_analyst#0/model#0" in keys
    assert f"{TEAM}/synthesis#0/model#0" in keys
    assert rows(biz, "SELECT deal_id, recommendation, gaps FROM memos") == [
        {"deal_id": DEAL, "recommendation": "proceed_with_conditions", "gaps": "{}"}
    ]
    assert len(rows(biz, "SELECT * FROM findings")) == 5


async def test_a_hanging_analyst_is_cut_off_and_named_in_the_memo(rt: Runtime, biz: Path) -> None:
    started = time.perf_counter()
    result = await rt.run(build_flow(hang="legal", branch_timeout=0.3), DEAL)
    assert time.perf_counter() - started < 3.0  # the slowest branch is the timeout
    assert result.status == RunStatus.COMPLETED, result.error
    memo = result.output
    assert memo.gaps == {"legal": "TimeoutError: no result within 0.3s"}
    assert "legal" not in {f.area for f in memo.findings}
    assert "complete the legal review before signing" in memo.conditions
    assert "4 of 5 reviews" in memo.text
    assert "no legal review (TimeoutError: no result within 0.3s)" in memo.text
    gaps = [e.data for e in await rt.events(result.run_id) if e.kind == "parallel.gap"]
    assert gaps == [{"branch": "legal_analyst", "reason": "TimeoutError: no result within 0.3s"}]
    assert {r["area"] for r in rows(biz, "SELECT area FROM findings")} == {
        "financial",
        "market",
        "technology",
        "esg",
    }
    assert json.loads(rows(biz, "SELECT gaps FROM memos")[0]["gaps"]) == memo.gaps


async def test_a_failing_analyst_is_a_gap_too(rt: Runtime, biz: Path) -> None:
    result = await rt.run(build_flow(fail="market"), DEAL)
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output.gaps == {"market": "RuntimeError: the market data room is unavailable"}


async def test_two_missing_reviews_are_below_the_quorum(rt: Runtime, biz: Path) -> None:
    result = await rt.run(build_flow(fail="esg", hang="legal", branch_timeout=0.2), DEAL)
    assert result.status == RunStatus.FAILED
    assert "3 of 5 branches succeeded, 4 needed" in (result.error or "")
    assert not biz.exists() or rows(biz, "SELECT * FROM memos") == []


async def test_reviewing_again_keeps_one_memo_per_deal(rt: Runtime, biz: Path) -> None:
    first = await rt.run(build_flow(hang="legal", branch_timeout=0.2), DEAL)
    second = await rt.run(build_flow(), DEAL)
    assert first.ok and second.ok
    assert rows(biz, "SELECT run_id, gaps FROM memos") == [{"run_id": second.run_id, "gaps": "{}"}]
    assert len(rows(biz, "SELECT * FROM findings")) == 5


async def test_resume_after_a_failed_filing_does_not_ask_the_analysts_again(
    rt: Runtime, biz: Path
) -> None:
    biz.mkdir()  # the deal records cannot be opened: filing the memo fails
    flow = build_flow()
    failed = await rt.run(flow, DEAL)
    assert failed.status == RunStatus.FAILED and "file_memo" in (failed.error or "")
    biz.rmdir()
    done = await rt.resume(failed.run_id, flow)
    assert done.status == RunStatus.COMPLETED, done.error
    replayed = {e.key for e in await rt.events(failed.run_id) if e.kind == "step.replayed"}
    assert f"{TEAM}" in replayed  # the whole fan-out and synthesis came from the journal
    assert len(rows(biz, "SELECT * FROM memos")) == 1


def test_python_dash_m_runs_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}"}
    env.pop("DILIGENCE_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "examples.due_diligence", "--fail", "legal"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Recommendation: proceed with conditions" in proc.stdout
    assert "no legal review (RuntimeError: the legal data room is unavailable)" in proc.stdout
    assert "model: scripted" in proc.stdout and "completed" in proc.stdout
    assert len(rows(tmp_path / "diligence_business.db", "SELECT * FROM memos")) == 1
