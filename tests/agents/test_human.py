"""People in the loop: suspend, decide from anywhere, deadlines; across two real processes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from forked import run_module
from podium import (
    NO_RETRY,
    HumanAgent,
    HumanApproval,
    RejectedError,
    RunStatus,
    Runtime,
    Sequential,
    UsageError,
    agent,
)
from podium.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class Payment(BaseModel):
    to: str
    amount: int


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rt(clock: FakeClock) -> Runtime:
    return Runtime("memory://", retry=NO_RETRY, clock=clock)


def payment_flow(**approval: Any) -> tuple[Sequential, list[Payment]]:
    paid: list[Payment] = []

    @agent
    def propose(to: str) -> Payment:
        return Payment(to=to, amount=120)

    @agent
    def pay(p: Payment) -> str:
        paid.append(p)
        return f"paid {p.amount} to {p.to}"

    gate = HumanApproval("approve", prompt="Pay?", input_type=Payment, **approval)
    return Sequential("payout", [propose, gate, pay]), paid


async def test_no_decision_suspends_and_inbox_shows_the_proposal(rt: Runtime) -> None:
    flow, paid = payment_flow(assignee="finance")
    result = await rt.run(flow, "ada")
    assert result.status == RunStatus.WAITING and paid == []
    (item,) = await rt.inbox()
    assert item.run_id == result.run_id
    assert item.step == "/payout/approve#0/approve.decision#0"
    assert item.request["proposed"] == {"to": "ada", "amount": 120}
    assert item.request["assignee"] == "finance"
    assert "Pay?" in item.reason


async def test_approval_resumes_and_passes_the_input_on(rt: Runtime) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    done = await rt.resume(first.run_id, flow, decision={"approved": True, "by": "bob"})
    assert done.status == RunStatus.COMPLETED and done.output == "paid 120 to ada"
    assert paid == [Payment(to="ada", amount=120)]
    kinds = [e.kind for e in await rt.events(first.run_id)]
    assert kinds.count("step.replayed") >= 1 and "human.decision" in kinds
    assert await rt.inbox() == []


async def test_an_edited_approval_replaces_the_value_and_is_validated(rt: Runtime) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    edit = {"approved": True, "edited": {"to": "ada", "amount": 100}}
    done = await rt.resume(first.run_id, flow, decision=edit)
    assert done.output == "paid 100 to ada" and paid[0].amount == 100


async def test_rejection_stops_the_flow_with_the_reason(rt: Runtime) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    done = await rt.resume(
        first.run_id, flow, decision={"approved": False, "comment": "duplicate claim"}
    )
    assert done.status == RunStatus.FAILED and paid == []
    assert isinstance(done.exception, RejectedError)
    assert "duplicate claim" in (done.error or "")


async def test_a_decision_for_a_run_that_does_not_wait_is_misuse(rt: Runtime) -> None:
    @agent
    def noop(x: int) -> int:
        raise ValueError("boom")

    failed = await rt.run(noop, 1)
    with pytest.raises(UsageError, match="not waiting"):
        await rt.resume(failed.run_id, noop, decision={"approved": True})


async def test_human_agent_answers_a_question(rt: Runtime) -> None:
    ask = HumanAgent("size", question="Which size should we send?", answer_type=int)

    @agent
    def ship(size: int) -> str:
        return f"size {size} shipped"

    flow = Sequential("exchange", [ask, ship])
    first = await rt.run(flow, {"order": 7})
    (item,) = await rt.inbox()
    assert item.request["kind"] == "question" and item.request["context"] == {"order": 7}
    done = await rt.resume(first.run_id, flow, decision={"answer": "10"})
    assert done.output == "size 10 shipped"


@pytest.mark.parametrize(("rule", "status"), [("reject", "failed"), ("approve", "completed")])
async def test_deadline_applies_the_timeout_rule(
    rt: Runtime, clock: FakeClock, rule: str, status: str
) -> None:
    flow, paid = payment_flow(deadline=3600, on_timeout=rule)
    first = await rt.run(flow, "ada")
    assert first.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.deadline_at == clock.now() + 3600 and not item.overdue
    assert await rt.sweep() == []  # not yet due: nothing happens
    await clock.advance(3599)
    assert await _sweep_with(rt, flow) == []  # a second before: still not due
    await clock.advance(1)
    (swept,) = await _sweep_with(rt, flow)
    assert swept.status == status
    if rule == "reject":
        assert "deadline passed" in (swept.error or "") and paid == []
    else:
        assert len(paid) == 1


async def test_escalation_asks_someone_else_then_rejects(rt: Runtime, clock: FakeClock) -> None:
    flow, paid = payment_flow(deadline=3600, on_timeout="escalate", escalate_to="manager")
    first = await rt.run(flow, "ada")
    await clock.advance(3600)
    (escalated,) = await _sweep_with(rt, flow)
    assert escalated.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.request["assignee"] == "manager" and item.request["escalated"] is True
    assert item.deadline_at == clock.now() + 3600  # a fresh deadline for the manager
    await clock.advance(3599)
    assert await _sweep_with(rt, flow) == []
    await clock.advance(1)
    (final,) = await _sweep_with(rt, flow)
    assert final.status == RunStatus.FAILED and "deadline" in (final.error or "")
    assert paid == [] and first.run_id == final.run_id


async def _sweep_with(rt: Runtime, flow: Any) -> list[Any]:
    """Like `rt.sweep()` for flows defined in a test (no importable target)."""
    return [await rt.resume(w.run_id, flow) for w in await rt.inbox() if w.overdue]


def test_construction_errors() -> None:
    with pytest.raises(UsageError, match="escalate_to"):
        HumanApproval("a", on_timeout="escalate")
    with pytest.raises(UsageError, match="deadline must be positive"):
        HumanApproval("a", deadline=0)


def _podium(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module("podium", *args, cwd=ROOT, env=env)


@pytest.mark.slow
def test_approval_from_another_process(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/runs.db"
    effects = tmp_path / "effects.db"
    env = {**os.environ, "CLAIM_EFFECTS_DB": str(effects), "PODIUM_STORE": store}
    target = "tests/human_flow.py:flow"
    rows = []
    for claim, verdict in (("C-1", "approve"), ("C-2", "reject")):
        started = _podium(
            "run",
            target,
            "--input",
            json.dumps({"claim_id": claim, "amount": 500}),
            "--json",
            env=env,
        )
        assert started.returncode == 0, started.stderr
        run_id = json.loads(started.stdout)["run_id"]
        assert json.loads(started.stdout)["status"] == "waiting"
        inbox = json.loads(_podium("inbox", "--json", env=env).stdout)
        assert [w["run_id"] for w in inbox] == [run_id]
        assert inbox[0]["request"]["proposed"] == {"claim_id": claim, "amount": 500}
        extra = ["--comment", "looks fine"] if verdict == "approve" else ["--comment", "fraud"]
        decided = _podium(verdict, run_id, *extra, "--json", env=env)
        assert decided.returncode == 0, decided.stderr
        shown = json.loads(_podium("show", run_id, "--json", env=env).stdout)
        rows.append((claim, shown["status"], shown["output"], shown["error"]))
    assert rows[0] == ("C-1", "completed", "paid 500 on C-1", None)
    assert rows[1][1] == "failed" and "fraud" in rows[1][3]
    with sqlite3.connect(effects) as db:
        done = sorted(db.execute("SELECT step, claim FROM effects").fetchall())
    # each step ran once: assess for both claims, pay only for the approved one
    assert done == [("assess", "C-1"), ("assess", "C-2"), ("pay", "C-1")]
    again = _podium("approve", "nonexistent", env=env)
    assert again.returncode == 2 and again.stderr.startswith("error:")


async def test_router_triage_is_answered_like_any_waiting_step(rt: Runtime) -> None:
    from podium import Router

    @agent
    def billing(text: str) -> str:
        return f"billing handles {text!r}"

    @agent
    def tech(text: str) -> str:
        return "tech"

    router = Router(
        "front",
        {"billing": billing, "tech": tech},
        classifier=lambda t: ("tech", 0.2),
        threshold=0.5,
    )
    first = await rt.run(router, "hmm")
    (item,) = await rt.inbox()
    assert item.request["context"]["candidates"] == ["billing", "tech"]
    done = await rt.resume(first.run_id, router, decision={"approved": True, "answer": "billing"})
    assert done.output == "billing handles 'hmm'"


async def test_usage_after_a_resume_counts_every_completed_model_step(rt: Runtime) -> None:
    from podium import LLMAgent, ScriptedModel, Usage

    model = ScriptedModel(["a summary"], usage=Usage(input_tokens=7, output_tokens=3, requests=1))
    summarize = LLMAgent("summarize", model=model, instructions="Summarize.")
    flow = Sequential("review", [summarize, HumanApproval("ok")])
    waiting = await rt.run(flow, "text")
    assert waiting.usage.total_tokens == 10
    done = await rt.resume(waiting.run_id, flow, decision={"approved": True})
    # `summarize` is replayed whole (its model step is not visited): still counted once
    assert done.usage == Usage(input_tokens=7, output_tokens=3, requests=1)
    assert (await rt.get_run(waiting.run_id)).usage.total_tokens == 10
