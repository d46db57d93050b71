"""The insurance claim example: approve, reject, edit, deadline escalation, and approval from
another process, on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from examples.insurance_claim.flow import SAMPLE_CLAIM, build_flow
from forked import run_module
from podium import RunStatus, Runtime
from podium.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]

DECISION = "/insurance_claim/approve_payment#0/approve_payment.decision#0"


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "claims.db"
    monkeypatch.setenv("CLAIMS_DB", str(path))
    return path


def rows(path: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


async def test_approved_claim_is_paid_once_and_notified(rt: Runtime, biz: Path) -> None:
    flow = build_flow()
    waiting = await rt.run(flow, SAMPLE_CLAIM)
    assert waiting.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert (item.run_id, item.step) == (waiting.run_id, DECISION)
    assert item.request["assignee"] == "adjuster"
    assert item.request["proposed"]["amount_cents"] == 370_000  # 4,200 less 500 deductible
    assert rows(biz, "SELECT * FROM payments") == []

    done = await rt.resume(waiting.run_id, flow, decision={"approved": True, "comment": "ok"})
    assert done.status == RunStatus.COMPLETED, done.error
    assert (done.output.status, done.output.amount_cents) == ("paid", 370_000)
    assert done.output.model.startswith("scripted")
    assert rows(biz, "SELECT claim_id, amount_cents FROM payments") == [
        {"claim_id": "C-2025-001", "amount_cents": 370_000}
    ]
    assert rows(biz, "SELECT status FROM claims WHERE claim_id = 'C-2025-001'") == [
        {"status": "paid"}
    ]
    (notice,) = rows(biz, "SELECT address, body FROM notices")
    assert notice["address"] == "ada@example.com" and "$3,700.00" in notice["body"]
    kinds = [e.kind for e in await rt.events(waiting.run_id)]
    assert "claim.fraud" in kinds and "human.decision" in kinds
    # the fraud checks ran side by side as steps; resuming replayed them, not re-ran them
    keys = {s.key for s in await rt.steps(waiting.run_id)}
    assert "/insurance_claim/fraud_score#0/fraud_model#0/model#0" in keys
    replayed = {e.key for e in await rt.events(waiting.run_id) if e.kind == "step.replayed"}
    assert "/insurance_claim/fraud_score#0" in replayed
    # a second resume of a completed run pays nothing more
    again = await rt.resume(waiting.run_id, flow)
    assert again.status == RunStatus.COMPLETED
    assert len(rows(biz, "SELECT * FROM payments")) == 1


async def test_rejected_claim_pays_nothing_and_fails_with_the_comment(
    rt: Runtime, biz: Path
) -> None:
    flow = build_flow()
    waiting = await rt.run(flow, SAMPLE_CLAIM)
    done = await rt.resume(
        waiting.run_id, flow, decision={"approved": False, "comment": "duplicate of C-2024-9"}
    )
    assert done.status == RunStatus.FAILED
    assert "duplicate of C-2024-9" in (done.error or "")
    assert rows(biz, "SELECT * FROM payments") == []
    assert rows(biz, "SELECT * FROM notices") == []


async def test_an_edited_amount_is_what_gets_paid(rt: Runtime, biz: Path) -> None:
    flow = build_flow()
    waiting = await rt.run(flow, SAMPLE_CLAIM)
    (item,) = await rt.inbox()
    edited = {**item.request["proposed"], "amount_cents": 300_000, "note": "depreciation"}
    done = await rt.resume(waiting.run_id, flow, decision={"approved": True, "edited": edited})
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.output.amount_cents == 300_000
    assert rows(biz, "SELECT amount_cents FROM payments") == [{"amount_cents": 300_000}]
    (notice,) = rows(biz, "SELECT body FROM notices")
    assert "$3,000.00 (as adjusted)" in notice["body"]


async def test_deadline_escalates_then_rejects(rt: Runtime, biz: Path, clock: FakeClock) -> None:
    flow = build_flow(deadline=86_400)
    waiting = await rt.run(flow, SAMPLE_CLAIM)
    assert waiting.status == RunStatus.WAITING
    await clock.advance(86_399)
    assert (await rt.resume(waiting.run_id, flow)).status == RunStatus.WAITING  # not yet
    assert "human.escalated" not in [e.kind for e in await rt.events(waiting.run_id)]
    await clock.advance(1)  # the adjuster's day passes
    escalated = await rt.resume(waiting.run_id, flow)
    assert escalated.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.request["assignee"] == "claims_manager"
    assert "human.escalated" in [e.kind for e in await rt.events(waiting.run_id)]
    await clock.advance(86_400)  # and the manager's
    done = await rt.resume(waiting.run_id, flow)
    assert done.status == RunStatus.FAILED
    assert "deadline passed" in (done.error or "")
    assert rows(biz, "SELECT * FROM payments") == []


async def test_uncovered_claim_is_denied_without_asking_anyone(rt: Runtime, biz: Path) -> None:
    lapsed = {**SAMPLE_CLAIM, "claim_id": "C-2025-009", "policy_number": "HOME-3003"}
    done = await rt.run(build_flow(), lapsed)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.output.status == "denied"
    assert "not in force" in done.output.reasons[0]
    assert await rt.inbox() == []
    assert rows(biz, "SELECT subject FROM notices") == [{"subject": "Claim denied"}]


async def test_red_flags_raise_the_fraud_score_and_the_note(rt: Runtime, biz: Path) -> None:
    risky = {
        "claim_id": "C-2025-010",
        "policy_number": "RENT-2002",
        "peril": "theft",
        "incident_date": "2025-03-01",
        "amount_claimed_cents": 480_000,
        "description": "Stolen camera, paid cash, lost the receipt. Need it paid urgently.",
    }
    waiting = await rt.run(build_flow(), risky)
    (item,) = await rt.inbox()
    proposed = item.request["proposed"]
    assert proposed["fraud_score"] >= 0.5
    assert proposed["note"] == "refer to the special investigations unit"
    assert "2 earlier claims on this policy" in proposed["fraud_flags"]
    assert "paid in cash" in proposed["fraud_flags"]
    assert waiting.status == RunStatus.WAITING


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module("podium", *args, cwd=ROOT, env=env)


def test_approval_from_another_process(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {**os.environ, "CLAIMS_DB": str(tmp_path / "claims.db")}
    env.pop("PODIUM_STORE", None)
    started = _cli(
        "run",
        "examples.insurance_claim.flow:flow",
        "--input",
        json.dumps(SAMPLE_CLAIM),
        "--store",
        store,
        "--json",
        env=env,
    )
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["status"] == "waiting"
    assert rows(tmp_path / "claims.db", "SELECT * FROM payments") == []
    approved = _cli("approve", run["run_id"], "--comment", "ok", "--store", store, env=env)
    assert approved.returncode == 0, approved.stderr
    shown = json.loads(_cli("show", run["run_id"], "--store", store, "--json", env=env).stdout)
    assert shown["status"] == "completed"
    assert shown["output"]["amount_cents"] == 370_000
    assert rows(tmp_path / "claims.db", "SELECT amount_cents FROM payments") == [
        {"amount_cents": 370_000}
    ]


def test_python_dash_m_runs_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}"}
    env.pop("CLAIMS_DB", None)
    proc = run_module("examples.insurance_claim", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "waiting for a person (adjuster)" in proc.stdout
    assert "model: scripted" in proc.stdout
    assert (tmp_path / "claims_business.db").exists()
