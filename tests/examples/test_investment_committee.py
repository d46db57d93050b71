"""The investment-committee example on a real SQLite store: weighted consensus, the memo
debate, a pass, and a deadlock that waits for the chair and resumes without re-asking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from examples.investment_committee.committee import SAMPLE, build_flow
from podium import NO_RETRY, Decision, RunStatus, Runtime, StepStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    async with Runtime(f"sqlite:///{tmp_path / 'committee.db'}", retry=NO_RETRY) as runtime:
        yield runtime


async def test_acme_reaches_weighted_consensus_and_an_approved_memo(rt: Runtime) -> None:
    result = await rt.run(build_flow(), SAMPLE)
    assert result.ok, result.error
    out = result.output
    assert out.decision == "buy" and out.vote_status == "completed"
    assert out.tally == {"buy": 3.0, "pass": 2.0}
    assert out.memo_status == "completed" and out.memo_turns == 4
    assert out.memo is not None and "stop-loss" in out.memo
    events = [e for e in await rt.events(result.run_id) if e.kind.startswith("groupchat.")]
    stops = [e.data for e in events if e.kind == "groupchat.stop"]
    assert [(s or {}).get("status") for s in stops] == ["completed", "completed"]
    assert [(s or {}).get("reason") for s in stops] == [
        "consensus on 'buy'",
        "approved by 'chief_risk_officer'",
    ]
    votes = [e for e in events if e.kind == "groupchat.vote"]
    assert len(votes) == 5 and votes[-1].key == "/investment_committee/vote#0"


async def test_globx_is_a_pass_without_a_memo(rt: Runtime) -> None:
    result = await rt.run(build_flow(), SAMPLE.model_copy(update={"ticker": "GLOBX"}))
    assert result.output.decision == "pass" and result.output.memo is None
    keys = {s.key for s in await rt.steps(result.run_id)}
    assert not any("/memo#" in k for k in keys)


async def test_split_vote_waits_for_the_chair_and_resumes(rt: Runtime) -> None:
    flow = build_flow()
    first = await rt.run(flow, SAMPLE.model_copy(update={"ticker": "SPLIT"}))
    assert first.status == RunStatus.WAITING
    step = "/investment_committee/vote#0/vote.escalation#0/vote.escalation.decision#0"
    [waiting] = [s for s in await rt.steps(first.run_id) if s.status == StepStatus.SUSPENDED]
    assert waiting.key == step
    model_calls = sum(1 for s in await rt.steps(first.run_id) if s.kind == "model")
    chair = {"decision": "buy", "answer": "The chair votes buy, with a small position."}
    done = await rt.resume(first.run_id, flow, decision=Decision.answer(chair))
    assert done.ok, done.error
    assert done.output.vote_status == "escalated" and done.output.decision == "buy"
    assert done.output.memo_status == "completed"
    steps = await rt.steps(first.run_id)
    vote_models = [s for s in steps if s.kind == "model" and "/memo#" not in s.key]
    assert len(vote_models) == model_calls  # the analysts were replayed, not asked again


async def test_the_chairs_answer_with_a_note_and_a_refusal_to_decide(rt: Runtime) -> None:
    flow = build_flow()
    split = SAMPLE.model_copy(update={"ticker": "SPLIT"})
    first, second = await rt.run(flow, split), await rt.run(flow, split)
    note = {"decision": "hold", "answer": "Hold until Q3 results."}
    held = await rt.resume(first.run_id, flow, decision=Decision.answer(note, by="chair"))
    assert held.ok, held.error
    assert (held.output.decision, held.output.vote_status) == ("hold", "escalated")
    refused = await rt.resume(second.run_id, flow, decision=Decision.reject("not today"))
    assert refused.status == RunStatus.FAILED and "not today" in (refused.error or "")


def test_module_runs_from_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "examples.investment_committee", "GLOBX"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["status"] == "completed" and printed["output"]["decision"] == "pass"
