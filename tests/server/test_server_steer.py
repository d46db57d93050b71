"""Steering runs over HTTP against a real `podium serve` on loopback: replay (the
determinism check) names the step where the code now decides otherwise, a fork runs on from
a step reusing the journal before it (the original untouched), and the topology comes as
Mermaid and as the same drawing's nodes and edges."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from served import FLOWS, Served
from test_server_api import sse, start, wait_status

from podium.core.records import RunRecord, RunStatus
from podium.runtime.audit import verify_store
from podium.stores import open_store

pytestmark = pytest.mark.xdist_group("server")


def in_store(served: Served, job: Any) -> Any:
    """Run `job(store)` on the server's store, opened here for the call."""

    async def go() -> Any:
        store = open_store(served.store)
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    return asyncio.run(go())


def audit_of(served: Served, run_id: str) -> list[tuple[str, str, str]]:
    async def job(store: Any) -> Any:
        report = await verify_store(store, run_id)
        assert report.ok, report.breaks
        return [(r.kind, r.actor, r.payload or "") for r in await store.load_audit(run_id)]

    return [a for a in in_store(served, job) if a[0].startswith("api.")]


def plain_run(served: Served, run_id: str, agent: str, target: str) -> None:
    """A finished run written straight into the store (as another process could have)."""
    now = time.time()
    record = RunRecord(run_id, agent, RunStatus.COMPLETED, "x", "x", None, target, now, now)

    async def job(store: Any) -> None:
        await store.create_run(record)

    in_store(served, job)


def test_replay_says_ok_then_names_the_step_that_differs(server: Served) -> None:
    c = server.client("operator")
    run_id = start(c, "moody", "x")
    assert wait_status(c, run_id, "completed")["output"] == "picnic(plan(x))"
    r = c.post(f"/api/runs/{run_id}/replay")
    assert r.status_code == 200, r.text
    verdict = r.json()
    assert verdict["ok"] is True and verdict["step"] is None and verdict["problem"] is None
    assert verdict["checked"] == 3 and verdict["rerun"] == ["/moody"]
    assert "replays" in verdict["message"]

    server.rainy.touch()  # the outside world changed: the code now goes to the museum
    try:
        verdict = c.post(f"/api/runs/{run_id}/replay").json()
    finally:
        server.rainy.unlink()
    assert verdict["ok"] is False
    assert verdict["step"] == "/moody/museum#0"
    assert "museum" in verdict["problem"] and "picnic#0" in verdict["problem"]
    assert "/moody/museum#0" in verdict["message"]
    # a replay writes nothing of the run: only the API's own record of the call
    assert wait_status(c, run_id, "completed")["output"] == "picnic(plan(x))"
    replayed = [a for a in audit_of(server, run_id) if a[0] == "api.run.replayed"]
    assert [(k, who) for k, who, _ in replayed] == [("api.run.replayed", "operator-1")] * 2
    assert '"ok":false' in replayed[1][2] and "museum" in replayed[1][2]


def test_replay_refuses_what_it_cannot_check(server: Served) -> None:
    c = server.client("operator")
    waiting = start(c, "claim", {"claim_id": "C-9", "amount": 1})
    wait_status(c, waiting, "waiting")
    r = c.post(f"/api/runs/{waiting}/replay")
    assert r.status_code == 409 and "waiting" in r.json()["detail"]
    assert c.post("/api/runs/no-such-run/replay").status_code == 404
    assert server.client("viewer").post(f"/api/runs/{waiting}/replay").status_code == 403

    plain_run(server, "from-elsewhere", "flow", "/elsewhere/evil.py:flow")
    r = c.post("/api/runs/from-elsewhere/replay")
    assert r.status_code == 409 and "outside the project" in r.json()["detail"]
    # a target the server trusts, but another agent than the run's: the replay itself fails
    plain_run(server, "renamed", "ghost", f"{FLOWS}:echo")
    r = c.post("/api/runs/renamed/replay")
    assert r.status_code == 409
    assert "cannot be replayed" in r.json()["detail"] and "ghost" in r.json()["detail"]
    assert not [a for a in audit_of(server, "renamed") if a[0] == "api.run.replayed"]


def test_fork_at_a_step_reuses_the_steps_before_it(server: Served) -> None:
    c = server.client("operator")
    original = start(c, "moody", "y")
    before = wait_status(c, original, "completed")
    server.rainy.touch()
    try:
        r = c.post(f"/api/runs/{original}/fork", json={"at": "/moody/picnic#0"})
        assert r.status_code == 202, r.text
        forked = r.json()
        assert forked["forked_from"] == original and forked["at"] == "/moody/picnic#0"
        assert forked["agent"] == "moody" and forked["run_id"] != original
        run = wait_status(c, forked["run_id"], "completed", "failed")
    finally:
        server.rainy.unlink()
    assert run["output"] == "museum(plan(y))", run
    assert run["forked_from"] == original and run["forked_at"] == "/moody/picnic#0"
    assert before["forked_from"] is None
    # the plan step is the original's row, copied (same times), and replayed, not run again
    rows = {s["key"]: s for s in run["steps"]}
    was = {s["key"]: s for s in before["steps"]}
    assert rows["/moody/plan#0"]["started_at"] == was["/moody/plan#0"]["started_at"]
    assert rows["/moody/plan#0"]["output"] == "plan(y)"
    assert "/moody/picnic#0" not in rows and "/moody/museum#0" in rows
    kinds = [(k, d.get("key")) for _, k, d in sse(server, forked["run_id"])]
    assert ("step.replayed", "/moody/plan#0") in kinds
    assert ("step.started", "/moody/plan#0") not in kinds
    # the original is as it was
    after = c.get(f"/api/runs/{original}").json()
    assert after["output"] == before["output"] and after["steps"] == before["steps"]
    assert after["updated_at"] == before["updated_at"]
    audited = audit_of(server, forked["run_id"])
    assert [(k, who) for k, who, _ in audited] == [("api.run.forked", "operator-1")]
    assert original in audited[0][2]

    # a new input, from the first step: nothing reused
    r = c.post(f"/api/runs/{original}/fork", json={"at": "/moody/plan#0", "input": "z"})
    assert r.status_code == 202, r.text
    assert wait_status(c, r.json()["run_id"], "completed")["output"] == "picnic(plan(z))"


def test_fork_refusals(server: Served) -> None:
    c = server.client("operator")
    done = start(c, "moody", "w")
    steps = [s["key"] for s in wait_status(c, done, "completed")["steps"]]
    r = c.post(f"/api/runs/{done}/fork", json={"at": "/moody/nowhere#0"})
    assert r.status_code == 422
    assert "nowhere" in r.json()["detail"] and r.json()["steps"] == steps
    r = c.post(f"/api/runs/{done}/fork", json={"at": "/moody/plan#0", "input": 5})
    assert r.status_code == 422 and "moody" in r.json()["detail"]  # the agent's input type
    assert c.post(f"/api/runs/{done}/fork", json={}).status_code == 422
    assert c.post(f"/api/runs/{done}/fork", json={"at": "/moody", "x": 1}).status_code == 422
    assert c.post("/api/runs/no-such-run/fork", json={"at": "/a"}).status_code == 404
    viewer = server.client("viewer")
    assert viewer.post(f"/api/runs/{done}/fork", json={"at": "/moody"}).status_code == 403
    waiting = start(c, "claim", {"claim_id": "C-8", "amount": 1})
    wait_status(c, waiting, "waiting")
    r = c.post(f"/api/runs/{waiting}/fork", json={"at": "/claim/assess#0"})
    assert r.status_code == 409 and "waiting" in r.json()["detail"]
    before = len(c.get("/api/runs", params={"agent": "moody", "limit": 1000}).json()["runs"])
    plain_run(server, "elsewhere-fork", "flow", "/elsewhere/evil.py:flow")

    async def row(store: Any) -> None:
        from podium.core.records import CallKind, StepRecord, StepStatus

        step = StepRecord(
            "elsewhere-fork",
            "/flow",
            "flow",
            CallKind.AGENT,
            StepStatus.COMPLETED,
            1,
            "x",
            None,
            1.0,
            2.0,
        )
        await store.record_finished(step)
        await store.flush("elsewhere-fork")

    in_store(server, row)
    r = c.post("/api/runs/elsewhere-fork/fork", json={"at": "/flow"})
    assert r.status_code == 409 and "outside the project" in r.json()["detail"]
    after = len(c.get("/api/runs", params={"agent": "moody", "limit": 1000}).json()["runs"])
    assert after == before  # nothing was started by the refusals


def test_graph_gives_the_drawing_as_data(server: Served) -> None:
    c = server.client("viewer")
    run_id = start(server.client("operator"), "review", "draft")
    graph = c.get(f"/api/runs/{run_id}/graph").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["n_review"]["shape"] == "group" and nodes["n_review"]["parent"] is None
    assert nodes["n_review__checks"]["parent"] == "n_review"
    assert nodes["n_review__checks__legal"]["label"].startswith("legal (")
    assert nodes["n_review__checks__fan_out"]["shape"] == "circle"
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert ("n_review__writer", "n_review__checks") in edges
    assert ("n_review__checks__fan_out", "n_review__checks__legal") in edges
    for node_id in nodes:  # the same drawing as the Mermaid text
        assert node_id in graph["mermaid"]
    assert len(graph["edges"]) == graph["mermaid"].count("-->")
    r = c.post(f"/api/runs/{run_id}/replay")
    assert r.status_code == 403
