"""The content moderation example: five policy checks at once, a coordinator decides, a
person reviews escalations; on real SQLite files."""

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

from examples.content_moderation.flow import SAMPLE_TEXT, build_flow, post_for
from podium import RunStatus, Runtime

ROOT = Path(__file__).resolve().parents[2]

POLICIES = "/content_moderation/policies#0"


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "posts.db"
    monkeypatch.setenv("MODERATION_DB", str(path))
    return path


def rows(path: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


async def test_a_clean_post_is_published_by_the_coordinator(rt: Runtime, biz: Path) -> None:
    post = post_for(SAMPLE_TEXT)
    result = await rt.run(build_flow(), post)
    assert result.status == RunStatus.COMPLETED, result.error
    out = result.output
    assert (out.status, out.decided_by, out.reasons) == (
        "published",
        "coordinator",
        ["no policy concerns"],
    )
    assert out.model.startswith("scripted")
    assert set(out.scores) == {"hate", "violence", "spam", "privacy", "self_harm"}
    keys = {s.key for s in await rt.steps(result.run_id)}
    for check in ("hate", "violence", "self_harm"):
        assert f"{POLICIES}/{check}_check#0/model#0" in keys  # a (scripted) model step
    assert f"{POLICIES}/spam_check#0" in keys and f"{POLICIES}/privacy_check#0" in keys
    assert f"{POLICIES}/coordinator#0/model#0" in keys
    assert rows(biz, "SELECT post_id, status, decided_by FROM posts") == [
        {"post_id": post["post_id"], "status": "published", "decided_by": "coordinator"}
    ]
    events = [e.data for e in await rt.events(result.run_id) if e.kind == "moderation.decision"]
    assert events == [{"action": "allow", "reasons": ["no policy concerns"]}]


@pytest.mark.parametrize(
    ("text", "policy", "evidence"),
    [
        ("BUY NOW!!! free money at http://a.example and http://b.example", "spam", "2 links"),
        ("Call John at 555-123-4567 or mail john.doe@example.com", "privacy", "phone: "),
        ("I will kill you if you post that again", "violence", "'kill you'"),
    ],
)
async def test_a_clear_violation_is_blocked_without_a_person(
    rt: Runtime, biz: Path, text: str, policy: str, evidence: str
) -> None:
    result = await rt.run(build_flow(), post_for(text))
    assert result.status == RunStatus.COMPLETED, result.error
    out = result.output
    assert (out.status, out.decided_by) == ("blocked", "coordinator")
    assert out.scores[policy] >= 0.8
    assert out.reasons[0].startswith(policy) and evidence in out.reasons[0]
    assert rows(biz, "SELECT status FROM posts") == [{"status": "blocked"}]
    assert await rt.inbox() == []


async def test_self_harm_goes_to_a_person_who_may_publish(rt: Runtime, biz: Path) -> None:
    flow = build_flow()
    waiting = await rt.run(flow, post_for("I feel hopeless and want to die"))
    assert waiting.status == RunStatus.WAITING
    (item,) = await rt.inbox()
    assert item.request["assignee"] == "trust_and_safety"
    assert item.request["proposed"]["reasons"] == [
        "possible self-harm: self_harm 0.95 ('want to die', 'hopeless')"
    ]
    assert not biz.exists()  # nothing is published or blocked while a person decides
    done = await rt.resume(waiting.run_id, flow, decision={"approved": True, "comment": "ok"})
    assert done.status == RunStatus.COMPLETED, done.error
    assert (done.output.status, done.output.decided_by) == ("published", "reviewer")
    assert rows(biz, "SELECT status, decided_by FROM posts") == [
        {"status": "published", "decided_by": "reviewer"}
    ]


async def test_a_borderline_post_rejected_by_the_reviewer_is_blocked(
    rt: Runtime, biz: Path
) -> None:
    flow = build_flow()
    waiting = await rt.run(flow, post_for("Come at me, fight me"))
    assert waiting.status == RunStatus.WAITING
    done = await rt.resume(
        waiting.run_id, flow, decision={"approved": False, "comment": "targeted harassment"}
    )
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.output.status == "blocked"
    assert done.output.reasons == ["violence 0.5 ('fight me')", "reviewer: targeted harassment"]
    (row,) = rows(biz, "SELECT status, reasons FROM posts")
    assert row["status"] == "blocked" and "targeted harassment" in json.loads(row["reasons"])[1]


async def test_a_check_that_hangs_is_cut_off_and_the_post_escalated(rt: Runtime, biz: Path) -> None:
    started = time.perf_counter()
    waiting = await rt.run(build_flow(hang="privacy", branch_timeout=0.2), post_for("nice day"))
    assert time.perf_counter() - started < 3.0
    assert waiting.status == RunStatus.WAITING
    gaps = [e.data for e in await rt.events(waiting.run_id) if e.kind == "parallel.gap"]
    assert gaps == [{"branch": "privacy_check", "reason": "TimeoutError: no result within 0.2s"}]
    (item,) = await rt.inbox()
    assert item.request["proposed"]["reasons"] == [
        "the privacy check did not finish: TimeoutError: no result within 0.2s"
    ]
    # the decision is replayed on resume: the flow without the hang finishes the run
    done = await rt.resume(waiting.run_id, build_flow(), decision={"approved": True})
    assert done.output.status == "published"


async def test_moderating_the_same_post_twice_keeps_one_row(rt: Runtime, biz: Path) -> None:
    post = post_for(SAMPLE_TEXT, author="ada")
    for _ in range(2):
        assert (await rt.run(build_flow(), post)).ok
    assert len(rows(biz, "SELECT * FROM posts")) == 1


def test_python_dash_m_runs_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}"}
    env.pop("MODERATION_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "examples.content_moderation"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    body, _, tail = proc.stdout.partition("\nmodel: ")
    assert json.loads(body)["status"] == "published"
    assert tail.startswith("scripted") and "completed" in tail
    assert rows(tmp_path / "moderation_business.db", "SELECT status FROM posts") == [
        {"status": "published"}
    ]
