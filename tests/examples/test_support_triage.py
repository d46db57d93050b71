"""The support triage example: a model router with a threshold and a person for the doubtful
cases, on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from examples.support_triage.flow import SAMPLE_MESSAGE, build_flow, score
from forked import run_module
from podium import RunStatus, Runtime, ScriptedModel

ROOT = Path(__file__).resolve().parents[2]

MIXED = "I was charged twice and now I can't log in"


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "support.db"
    monkeypatch.setenv("SUPPORT_DB", str(path))
    return path


def rows(path: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


async def decision(rt: Runtime, run_id: str) -> dict[str, Any]:
    found = [e.data for e in await rt.events(run_id) if e.kind == "route.decision"]
    assert found and found[0] is not None
    return found[0]


def test_confidence_follows_the_evidence() -> None:
    assert (score("refund my invoice").route, score("refund my invoice").confidence) == (
        "billing",
        0.95,
    )
    assert score("the app crashes").confidence == 0.75
    assert score(MIXED).confidence == 0.38  # one billing word, one account word
    assert score("hello there").route == ""


@pytest.mark.parametrize(
    ("message", "desk", "priority"),
    [
        (SAMPLE_MESSAGE, "billing", "high"),
        ("The API returns error 500 since this morning", "technical", "normal"),
        ("My account is locked after too many password attempts", "account", "high"),
    ],
)
async def test_a_clear_message_goes_straight_to_its_desk(
    rt: Runtime, biz: Path, message: str, desk: str, priority: str
) -> None:
    result = await rt.run(build_flow(), {"customer_id": "C-7", "message": message})
    assert result.status == RunStatus.COMPLETED, result.error
    assert (result.output.desk, result.output.priority) == (desk, priority)
    assert result.output.model.startswith("scripted")
    assert rows(biz, "SELECT ticket_id, desk, customer_id FROM tickets") == [
        {"ticket_id": result.output.ticket_id, "desk": desk, "customer_id": "C-7"}
    ]
    d = await decision(rt, result.run_id)
    assert (d["route"], d["outcome"], d["threshold"]) == (desk, "routed", 0.7)
    assert d["confidence"] >= 0.7


async def test_a_doubtful_message_waits_for_a_person_who_picks_the_desk(
    rt: Runtime, biz: Path
) -> None:
    model = ScriptedModel(lambda m, t, s: score(MIXED).model_dump(), name="counting")
    flow = build_flow(model)
    waiting = await rt.run(flow, MIXED)
    assert waiting.status == RunStatus.WAITING
    d = await decision(rt, waiting.run_id)
    assert (d["outcome"], d["confidence"]) == ("triage", 0.38)
    (item,) = await rt.inbox()
    assert item.step == ("/support_triage/support_triage.triage#0/support_triage.triage.decision#0")
    assert item.request["context"]["candidates"] == ["billing", "technical", "account"]
    assert "below threshold 0.7" in item.request["prompt"]
    assert not biz.exists() or rows(biz, "SELECT * FROM tickets") == []  # no desk yet

    done = await rt.resume(waiting.run_id, flow, decision={"answer": "billing"})
    assert done.status == RunStatus.COMPLETED, done.error
    assert (done.output.desk, done.output.priority) == ("billing", "high")
    assert rows(biz, "SELECT desk FROM tickets") == [{"desk": "billing"}]
    assert len(model.calls) == 1  # the classification was replayed, not asked again
    decisions = [e.data for e in await rt.events(waiting.run_id) if e.kind == "route.decision"]
    assert decisions[-1] is not None and decisions[-1]["note"] == "chosen in triage"
    assert await rt.inbox() == []


async def test_no_keywords_at_all_also_goes_to_a_person(rt: Runtime, biz: Path) -> None:
    waiting = await rt.run(build_flow(), "hello, is anyone there?")
    assert waiting.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.request["context"]["note"] == "no route chosen"
    done = await rt.resume(waiting.run_id, build_flow(), decision={"answer": "account"})
    assert done.output.desk == "account"


async def test_the_same_message_twice_is_one_ticket(rt: Runtime, biz: Path) -> None:
    first = await rt.run(build_flow(), SAMPLE_MESSAGE)
    second = await rt.run(build_flow(), SAMPLE_MESSAGE)
    assert (first.output.status, second.output.status) == ("ticket_opened", "ticket_exists")
    assert first.output.ticket_id == second.output.ticket_id
    assert len(rows(biz, "SELECT * FROM tickets")) == 1


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_module(*args, cwd=ROOT, env=env)


def test_python_dash_m_and_podium_answer_across_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}"}
    env.pop("SUPPORT_DB", None)
    sample = _run("examples.support_triage", env=env)
    assert sample.returncode == 0, sample.stderr
    assert '"desk": "billing"' in sample.stdout and "completed" in sample.stdout
    assert "model: scripted" in sample.stdout

    doubtful = _run("examples.support_triage", MIXED, env=env)
    assert doubtful.returncode == 0, doubtful.stderr
    assert "waiting" in doubtful.stdout
    inbox = json.loads(_run("podium", "inbox", "--json", env=env).stdout)
    (item,) = inbox
    answered = _run("podium", "answer", item["run_id"], "technical", "--json", env=env)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["status"] == "completed"
    desks = rows(tmp_path / "support_business.db", "SELECT desk FROM tickets ORDER BY desk")
    assert desks == [{"desk": "billing"}, {"desk": "technical"}]
