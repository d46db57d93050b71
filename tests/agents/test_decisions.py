"""A person's decision is explicit and checked before it is recorded: an ambiguous decision,
one that does not fit the request, or an edit or answer of the wrong type is refused with
nothing written, and the run still waits for a proper one."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from podium import (
    NO_RETRY,
    Decision,
    HumanAgent,
    HumanApproval,
    Router,
    RunStatus,
    Runtime,
    Sequential,
    SweepError,
    UsageError,
    agent,
)
from podium.cli.app import app
from podium.core.targets import load_target

ROOT = Path(__file__).resolve().parents[2]
FLOWS = "tests/human_flow.py"
OS_USER = pwd.getpwuid(os.getuid()).pw_name


class Payment(BaseModel):
    to: str
    amount: int


def payment_flow() -> tuple[Sequential, list[Payment]]:
    paid: list[Payment] = []

    @agent
    def propose(to: str) -> Payment:
        return Payment(to=to, amount=120)

    @agent
    def pay(p: Payment) -> str:
        paid.append(p)
        return f"paid {p.amount} to {p.to}"

    gate = HumanApproval("approve", prompt="Pay?", input_type=Payment)
    return Sequential("payout", [propose, gate, pay]), paid


def size_flow() -> tuple[Sequential, list[int]]:
    shipped: list[int] = []

    @agent
    def ship(size: int) -> str:
        shipped.append(size)
        return f"size {size} shipped"

    ask = HumanAgent("size", question="Which size?", answer_type=int)
    return Sequential("exchange", [ask, ship]), shipped


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    return Runtime(f"sqlite:///{tmp_path / 'runs.db'}", retry=NO_RETRY)


async def snapshot(rt: Runtime, run_id: str) -> tuple[Any, ...]:
    """Everything a decision could write: the run's status, its journal and its events."""
    run = await rt.get_run(run_id)
    steps = [(s.key, str(s.status), s.output, s.error) for s in await rt.steps(run_id)]
    return str(run.status), steps, len(await rt.events(run_id))


AMBIGUOUS = [{}, "no", False, 0, "yes", {"comment": "fine"}, {"approved": "no"}, {"by": "bob"}]


@pytest.mark.parametrize("decision", AMBIGUOUS, ids=[repr(d) for d in AMBIGUOUS])
async def test_an_ambiguous_decision_is_refused_with_nothing_written(
    rt: Runtime, decision: Any
) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    before = await snapshot(rt, first.run_id)
    with pytest.raises(UsageError, match="say what was decided"):
        await rt.resume(first.run_id, flow, decision=decision)
    assert await snapshot(rt, first.run_id) == before
    assert before[0] == "waiting" and paid == []
    done = await rt.resume(first.run_id, flow, decision=Decision.approve())
    assert done.output == "paid 120 to ada"


async def test_an_answer_does_not_approve(rt: Runtime) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    before = await snapshot(rt, first.run_id)
    for decision in ({"answer": "no"}, Decision.answer(False)):
        with pytest.raises(UsageError, match=r"waits for an approval.*podium approve"):
            await rt.resume(first.run_id, flow, decision=decision)
    assert await snapshot(rt, first.run_id) == before and paid == []


async def test_approving_a_question_is_refused(rt: Runtime) -> None:
    flow, shipped = size_flow()
    first = await rt.run(flow, {"order": 7})
    before = await snapshot(rt, first.run_id)
    for decision in ({"approved": True}, Decision.approve(edited=3)):
        with pytest.raises(UsageError, match=r"asks a question.*podium answer"):
            await rt.resume(first.run_id, flow, decision=decision)
    assert await snapshot(rt, first.run_id) == before and shipped == []
    rejected = await rt.resume(first.run_id, flow, decision=Decision.reject("out of stock"))
    assert rejected.status == RunStatus.FAILED and "out of stock" in (rejected.error or "")


def test_decision_constructors_and_the_documented_dicts_say_what_was_decided() -> None:
    assert Decision.approve().action == "approve" and Decision.approve().approved
    edit = Decision.approve(edited={"amount": 1}, comment="less")
    assert (edit.action, edit.edited, edit.comment) == ("approve", {"amount": 1}, "less")
    no = Decision.reject("duplicate", by="bob")
    assert (no.action, no.approved, no.comment, no.by) == ("reject", False, "duplicate", "bob")
    assert Decision.answer(0).action == "answer" and Decision.answer(0).answer == 0
    assert Decision.model_validate({"approved": True}).action == "approve"
    assert Decision.model_validate({"approved": False, "comment": "x"}).action == "reject"
    assert Decision.model_validate({"answer": "refund"}).action == "answer"
    assert Decision(approved=True, edited={"a": 1}).action == "approve"
    journaled = json.loads(Decision.reject("late").model_dump_json())
    assert Decision.model_validate(journaled) == Decision.reject("late", at=journaled["at"])
    for bad in ({}, {"approved": 1}, {"approved": False, "answer": 3}, {"action": "maybe"}):
        with pytest.raises(ValueError, match="decid"):
            Decision.model_validate(bad)


async def test_an_edit_that_does_not_fit_is_refused_before_it_is_recorded(rt: Runtime) -> None:
    flow, paid = payment_flow()
    first = await rt.run(flow, "ada")
    before = await snapshot(rt, first.run_id)
    bad = {"approved": True, "edited": {"to": "ada", "amount": "lots"}}
    with pytest.raises(UsageError, match=r"'approve'.*edited value.*amount"):
        await rt.resume(first.run_id, flow, decision=bad)
    assert await snapshot(rt, first.run_id) == before and paid == []
    good = Decision.approve(edited={"to": "ada", "amount": 100})
    done = await rt.resume(first.run_id, flow, decision=good)
    assert done.output == "paid 100 to ada" and paid == [Payment(to="ada", amount=100)]


async def test_a_mistyped_answer_is_refused_before_it_is_recorded(rt: Runtime) -> None:
    flow, shipped = size_flow()
    first = await rt.run(flow, {"order": 7})
    before = await snapshot(rt, first.run_id)
    with pytest.raises(UsageError, match=r"'size'.*answer.*integer"):
        await rt.resume(first.run_id, flow, decision={"answer": "three"})
    assert await snapshot(rt, first.run_id) == before and shipped == []
    done = await rt.resume(first.run_id, flow, decision=Decision.answer(3))
    assert done.output == "size 3 shipped" and shipped == [3]


async def test_an_edit_inside_a_parallel_branch_is_checked_too(rt: Runtime) -> None:
    from podium import Parallel

    @agent
    def quote(x: str) -> Payment:
        return Payment(to=x, amount=5)

    gate = HumanApproval("ok", input_type=Payment)
    flow = Parallel("both", [Sequential("left", [quote, gate]), HumanAgent("note", question="?")])
    first = await rt.run(flow, "ada")
    steps = [w.step for w in await rt.inbox()]
    assert len(steps) == 2
    approval = next(s for s in steps if "/ok#0/" in s)
    before = await snapshot(rt, first.run_id)
    with pytest.raises(UsageError, match="amount"):
        bad = Decision.approve({"amount": "x"})
        await rt.resume(first.run_id, flow, step=approval, decision=bad)
    assert await snapshot(rt, first.run_id) == before
    again = await rt.resume(first.run_id, flow, step=approval, decision=Decision.approve())
    assert again.status == RunStatus.WAITING  # the other branch still waits for its answer


async def test_a_triage_pick_of_no_route_is_refused(rt: Runtime) -> None:
    @agent
    def billing(text: str) -> str:
        return f"billing: {text}"

    router = Router(
        "front", {"billing": billing}, classifier=lambda t: ("billing", 0.1), threshold=0.5
    )
    first = await rt.run(router, "hmm")
    before = await snapshot(rt, first.run_id)
    with pytest.raises(UsageError, match="unknown route 'sales'"):
        await rt.resume(first.run_id, router, decision=Decision.answer("sales"))
    assert await snapshot(rt, first.run_id) == before
    done = await rt.resume(first.run_id, router, decision=Decision.answer("billing"))
    assert done.output == "billing: hmm"


async def test_the_os_user_is_recorded_beside_by_and_cannot_be_claimed(rt: Runtime) -> None:
    flow, _ = payment_flow()
    first = await rt.run(flow, "ada")
    claimed = Decision(action="approve", by="the CFO", user="root", identity="forged")
    await rt.resume(first.run_id, flow, decision=claimed)
    (row,) = [s for s in await rt.steps(first.run_id) if s.key.endswith("approve.decision#0")]
    assert row.output["by"] == "the CFO"
    assert row.output["user"] == OS_USER and row.output["identity"] is None
    (event,) = [e for e in await rt.events(first.run_id) if e.kind == "human.decision"]
    assert event.data is not None
    assert event.data["by"] == "the CFO" and event.data["user"] == OS_USER


async def _overdue_pair(rt: Runtime) -> tuple[str, str]:
    """Two runs past their deadline, oldest first: one no process can load again (its flow
    was built in the test), then one whose target loads (the `due` flow of human_flow.py)."""
    lost = Sequential("lost", [HumanApproval("ok", deadline=0.05, on_timeout="approve")])
    first = await rt.run(lost, 1)
    second = await rt.run(load_target(f"{ROOT}/{FLOWS}:due"), 7, target=f"{ROOT}/{FLOWS}:due")
    assert first.status == second.status == RunStatus.WAITING
    while not all(w.overdue for w in await rt.inbox()):
        await asyncio.sleep(0.01)
    return first.run_id, second.run_id


async def test_sweep_goes_on_past_a_run_it_cannot_resume_and_reports_it(rt: Runtime) -> None:
    lost, due = await _overdue_pair(rt)
    with pytest.raises(SweepError) as failed:
        await rt.sweep()
    assert [r.run_id for r in failed.value.results] == [due]
    assert failed.value.results[0].output == "size 7 shipped"
    assert list(failed.value.failures) == [lost]
    assert "no stored target" in failed.value.failures[lost]
    assert lost in str(failed.value)
    assert (await rt.get_run(lost)).status == RunStatus.WAITING


def test_cli_sweep_reports_each_failure_and_exits_1(project: str) -> None:
    async def go() -> tuple[str, str]:
        async with Runtime(project, retry=NO_RETRY) as rt:
            return await _overdue_pair(rt)

    lost, due = asyncio.run(go())
    swept = cli("sweep", "--store", project, "--json")
    assert swept.exit_code == 1, swept.output
    rows = {r["run_id"]: r for r in json.loads(swept.stdout)}
    assert rows[due]["status"] == "completed" and rows[due]["resumed"] is True
    assert rows[lost]["resumed"] is False and "no stored target" in rows[lost]["error"]
    table = cli("sweep", "--store", project)  # the lost one is still overdue
    assert table.exit_code == 1
    assert lost in table.stdout and "not resumed" in table.stdout


# from the command line ------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The repository as the working directory (the flows are in tests/human_flow.py); the
    store and the flows' side effects under `tmp_path`. Returns the store URL."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CLAIM_EFFECTS_DB", str(tmp_path / "effects.db"))
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    return f"sqlite:///{tmp_path / 'runs.db'}"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def start(store: str, target: str, value: Any) -> str:
    started = cli("run", f"{FLOWS}:{target}", "-i", json.dumps(value), "--store", store, "--json")
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["status"] == "waiting"
    return str(json.loads(started.stdout)["run_id"])


def state(store: str, run_id: str) -> tuple[Any, ...]:
    async def go() -> tuple[Any, ...]:
        async with Runtime(store) as rt:
            return await snapshot(rt, run_id)

    return asyncio.run(go())


def refused(result: Any, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def paid(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "effects.db") as db:
        return sorted(db.execute("SELECT step, claim FROM effects").fetchall())


CLAIM = {"claim_id": "C-1", "amount": 500}


def test_cli_answer_on_an_approval_exits_2_and_writes_nothing(project: str, tmp_path: Path) -> None:
    run_id = start(project, "flow", CLAIM)
    before = state(project, run_id)
    for value in ('"no"', "false", "{}"):
        refused(cli("answer", run_id, value, "--store", project), "podium approve", "reject")
    assert state(project, run_id) == before and before[0] == "waiting"
    assert paid(tmp_path) == [("assess", "C-1")]


def test_cli_approve_on_a_question_exits_2_and_points_to_answer(project: str) -> None:
    run_id = start(project, "question", {"order": 7})
    before = state(project, run_id)
    refused(cli("approve", run_id, "--store", project), f"podium answer {run_id}")
    assert state(project, run_id) == before and before[0] == "waiting"
    done = cli("answer", run_id, "3", "--store", project, "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["output"] == "size 3 shipped"


def test_cli_edit_that_does_not_fit_exits_2_and_writes_nothing(
    project: str, tmp_path: Path
) -> None:
    run_id = start(project, "flow", CLAIM)
    before = state(project, run_id)
    bad = json.dumps({"claim_id": "C-1", "amount": "lots"})
    refused(cli("approve", run_id, "--edit", bad, "--store", project), "'amount'")
    assert state(project, run_id) == before
    good = json.dumps({"claim_id": "C-1", "amount": 300})
    done = cli("approve", run_id, "--edit", good, "--by", "the CFO", "--store", project)
    assert done.exit_code == 0, done.output
    assert paid(tmp_path) == [("assess", "C-1"), ("pay", "C-1")]
    shown = json.loads(cli("show", run_id, "--store", project, "--json").stdout)
    assert shown["output"] == "paid 300 on C-1"
    (row,) = [s for s in shown["steps"] if s["key"].endswith(".decision#0")]
    assert row["output"]["by"] == "the CFO" and row["output"]["user"] == OS_USER


def test_cli_mistyped_answer_exits_2_and_writes_nothing(project: str) -> None:
    run_id = start(project, "question", {"order": 7})
    before = state(project, run_id)
    refused(cli("answer", run_id, '"three"', "--store", project), "'size'", "integer")
    assert state(project, run_id) == before


def test_cli_edit_json_error_names_edit(project: str, tmp_path: Path) -> None:
    run_id = start(project, "flow", CLAIM)
    line = refused(cli("approve", run_id, "--edit", "{bad", "--store", project), "--edit")
    assert "--input" not in line
    (tmp_path / "edit.json").write_text("{bad")
    edit = f"@{tmp_path / 'edit.json'}"
    line = refused(cli("approve", run_id, "--edit", edit, "--store", project), "--edit")
    assert "--input" not in line
    (tmp_path / "answer.json").write_text("{bad")
    answer = f"@{tmp_path / 'answer.json'}"
    line = refused(cli("answer", run_id, answer, "--store", project), "answer")
    assert "--input" not in line


def test_cli_waiting_run_says_how_to_decide(project: str) -> None:
    shown = cli("run", f"{FLOWS}:flow", "-i", json.dumps(CLAIM), "--store", project)
    assert shown.exit_code == 0
    text = " ".join(shown.stdout.split())
    assert "podium approve " in text and "podium reject " in text and "podium inbox" in text
    assert "podium resume" not in text and "podium answer" not in text
    asked = cli("run", f"{FLOWS}:question", "-i", "{}", "--store", project)
    text = " ".join(asked.stdout.split())
    assert "podium answer " in text and "podium approve" not in text


async def test_two_decisions_at_once_in_one_runtime_record_one(tmp_path: Path) -> None:
    """The run's lease is the runtime's for both callers: without its own guard, two resumes
    started together both passed the checks, and both recorded a decision."""
    flow, paid = payment_flow()
    async with Runtime(f"sqlite:///{tmp_path}/twice.db", retry=NO_RETRY) as rt:
        waiting = await rt.run(flow, "acme")
        assert waiting.status == RunStatus.WAITING
        got = await asyncio.gather(
            *(rt.resume(waiting.run_id, flow, decision=Decision.approve()) for _ in range(3)),
            return_exceptions=True,
        )
        done = [r for r in got if not isinstance(r, BaseException)]
        refused = [r for r in got if isinstance(r, UsageError)]
        assert len(done) == 1 and len(refused) == 2, got
        assert done[0].status == RunStatus.COMPLETED and len(paid) == 1
        assert "already being resumed" in str(refused[0])
        kinds = [e.kind for e in await rt.events(waiting.run_id)]
        assert kinds.count("decision.recorded") == 1
