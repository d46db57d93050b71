"""The HTTP API against a real `podium serve` on loopback (a subprocess, a SQLite file)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import FLOWS, KEYS, ROOT, Served, serve

from podium.runtime.audit import verify_store
from podium.stores import open_store

pytestmark = pytest.mark.xdist_group("server")


def wait_status(
    c: httpx.Client, run_id: str, *statuses: str, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = c.get(f"/api/runs/{run_id}")
        if r.status_code == 200 and r.json()["status"] in statuses:
            return dict(r.json())
        time.sleep(0.1)
    raise AssertionError(
        f"run {run_id} never became {statuses}: {c.get(f'/api/runs/{run_id}').text}"
    )


def start(c: httpx.Client, target: str, value: Any) -> str:
    r = c.post("/api/runs", json={"target": f"{FLOWS}:{target}", "input": value})
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


def sse(
    served: Served, run_id: str, last: int | None = None
) -> list[tuple[int, str, dict[str, Any]]]:
    """Every event the stream sends until it closes: (id, kind, data)."""
    headers = {"Authorization": f"Bearer {KEYS['viewer']}"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    out = []
    with httpx.stream(
        "GET", f"{served.url}/api/runs/{run_id}/events", headers=headers, timeout=30
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in r.iter_lines():
            if line == "":
                if "id" in block:
                    out.append((int(block["id"]), block["event"], json.loads(block["data"])))
                block = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                block[name] = value
    return out


def test_health_and_metrics_need_no_key(server: Served) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    text = httpx.get(server.url + "/metrics").text
    assert 'podium_stored_runs{status="completed"}' in text  # podium.Metrics, on the store
    assert "podium_dlq_size" in text and "podium_runs_waiting" in text
    assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "podium"
    assert "podium" in httpx.get(server.url + "/").text  # the UI's place


def test_no_key_is_401_and_a_role_without_the_right_is_403(server: Served) -> None:
    r = server.client(None).get("/api/runs")
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert server.client(key="not-a-key-at-all-nope").get("/api/runs").status_code == 401
    viewer = server.client("viewer")
    assert viewer.get("/api/runs").status_code == 200
    r = viewer.post("/api/runs", json={"target": f"{FLOWS}:echo", "input": "x"})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert viewer.post("/api/runs/whatever/approve", json={}).status_code == 403
    approver = server.client("approver")
    r = approver.post("/api/runs", json={"target": f"{FLOWS}:echo", "input": "x"})
    assert r.status_code == 403  # an approver decides, it does not start runs
    operator = server.client("operator")
    assert operator.post("/api/runs/whatever/approve", json={}).status_code == 403


def test_start_list_get(server: Served) -> None:
    c = server.client("operator")
    run_id = start(c, "echo", "hello")
    run = wait_status(c, run_id, "completed")
    assert run["output"] == "echo: hello" and run["input"] == "hello"
    assert run["agent"] == "echo" and run["steps"][0]["status"] == "completed"
    listed = c.get("/api/runs", params={"status": "completed", "agent": "echo"}).json()
    assert run_id in [r["run_id"] for r in listed["runs"]]
    assert all("output" not in r and "input" not in r for r in listed["runs"])
    for _ in range(3):
        start(c, "echo", "more")
    page = c.get("/api/runs", params={"limit": 2}).json()
    assert len(page["runs"]) == 2 and page["next_offset"] == 2
    rest = c.get("/api/runs", params={"limit": 2, "offset": 2}).json()
    assert not {r["run_id"] for r in rest["runs"]} & {r["run_id"] for r in page["runs"]}


def test_bad_requests_are_4xx_naming_the_problem(server: Served) -> None:
    c = server.client("admin")
    r = c.get("/api/runs/no-such-run")
    assert r.status_code == 404 and "no-such-run" in r.json()["detail"]
    r = c.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = c.post("/api/runs", json={"target": f"{FLOWS}:echo", "input": 5})
    assert r.status_code == 422 and "echo" in r.json()["detail"]
    r = c.post("/api/runs", json={"target": "/elsewhere/evil.py:flow"})
    assert r.status_code == 403 and "outside the project" in r.json()["detail"]
    r = c.post("/api/runs", json={"target": "no_such_module_anywhere:flow"})
    assert r.status_code == 403 and "no module" in r.json()["detail"]
    r = c.get("/api/runs", params={"status": "exploded"})
    assert r.status_code == 422
    r = c.post("/api/runs/no-such-run/approve", json={})
    assert r.status_code == 404
    r = c.get("/api/runs/no-such-run/events", headers={"Last-Event-ID": "x"})
    assert r.status_code == 404


def test_approve_a_waiting_run_and_watch_it_complete_live(server: Served) -> None:
    operator = server.client("operator")
    run_id = start(operator, "claim", {"claim_id": "C-1", "amount": 120})
    wait_status(operator, run_id, "waiting")
    (item,) = [w for w in operator.get("/api/inbox").json() if w["run_id"] == run_id]
    assert item["request"]["kind"] == "approval"
    approver = server.client("approver")
    r = approver.post(f"/api/runs/{run_id}/answer", json={"answer": 3})
    assert r.status_code == 409 and "approv" in r.json()["detail"]  # an approval is not answered
    r = approver.post(f"/api/runs/{run_id}/reject", json={"comment": ""})
    assert r.status_code == 422

    seen: list[tuple[int, str, dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: seen.extend(sse(server, run_id)))
    reader.start()
    time.sleep(0.5)  # the stream is open on a waiting run: it stays open
    assert reader.is_alive()
    edited = {"claim_id": "C-1", "amount": 100}
    r = approver.post(f"/api/runs/{run_id}/approve", json={"edited": edited, "comment": "cap"})
    assert r.status_code == 202, r.text
    reader.join(30)
    assert not reader.is_alive(), "the stream did not end with the run"
    kinds = [k for _, k, _ in seen]
    assert kinds[-1] == "run.completed"
    (decided,) = [d for _, k, d in seen if k == "decision.recorded"]
    assert decided["data"]["identity"] == "approver-1" and decided["data"]["by"] == "approver-1"
    run = wait_status(operator, run_id, "completed")
    assert run["output"] == "paid 100 on C-1"
    decision = next(s for s in run["steps"] if "approve_payment" in s["key"])["output"]
    assert decision["identity"] == "approver-1" and decision["edited"] == edited
    r = approver.post(f"/api/runs/{run_id}/approve", json={})
    assert r.status_code == 409 and "not waiting" in r.json()["detail"]
    (root,) = operator.get(f"/api/runs/{run_id}/trace").json()["steps"]
    assert root["agent"] == "claim" and root["status"] == "completed"
    assert [c["agent"] for c in root["children"]] == ["assess", "approve_payment", "pay"]
    graph = operator.get(f"/api/runs/{run_id}/graph", params={"direction": "LR"}).json()
    assert graph["mermaid"].startswith("flowchart LR") and "approve_payment" in graph["mermaid"]
    assert operator.get(f"/api/runs/{run_id}/graph", params={"direction": "up"}).status_code == 422

    # resumable: from a seq on, only what came after it
    ids = [i for i, _, _ in seen]
    assert ids == sorted(ids) and ids[0] == 1
    tail = sse(server, run_id, last=ids[2])
    assert [i for i, _, _ in tail] == ids[3:]


def test_dead_letter_requeue_and_discard(server: Served) -> None:
    c = server.client("operator")
    server.broken.touch()
    try:
        first = start(c, "ship", 1)
        second = start(c, "ship", 2)
        wait_status(c, first, "failed")
        wait_status(c, second, "failed")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            dead = {e["run_id"]: e for e in c.get("/api/dlq").json()}
            if first in dead and second in dead:
                break
            time.sleep(0.1)
        assert "carrier rejected" in dead[first]["error"]
    finally:
        server.broken.unlink()
    r = c.post(f"/api/dlq/{first}/requeue")
    assert r.status_code == 202, r.text
    run = wait_status(c, first, "completed")
    assert run["output"] == "delivered 2"
    assert c.post(f"/api/dlq/{first}/requeue").status_code == 404
    assert c.post(f"/api/dlq/{second}/discard").json()["message"] == "discarded"
    assert c.post(f"/api/dlq/{second}/discard").status_code == 404
    left = {e["run_id"] for e in c.get("/api/dlq").json()}
    assert first not in left and second not in left


def test_mutations_are_audited_with_the_keys_identity(server: Served) -> None:
    c = server.client("operator")
    run_id = start(c, "claim", {"claim_id": "C-2", "amount": 5})
    wait_status(c, run_id, "waiting")
    r = c.post(f"/api/runs/{run_id}/resume")
    assert r.status_code == 202, r.text  # a waiting run resumed without a decision waits on
    wait_status(c, run_id, "waiting")
    assert c.post(f"/api/runs/{run_id}/cancel").status_code == 200
    wait_status(c, run_id, "cancelled")
    assert c.post(f"/api/runs/{run_id}/cancel").status_code == 409
    assert c.post(f"/api/runs/{run_id}/resume").status_code == 409

    async def records() -> tuple[list[Any], Any]:
        store = open_store(server.store)
        await store.open()
        try:
            return await store.load_audit(run_id), await verify_store(store, run_id)
        finally:
            await store.close()

    chain, report = asyncio.run(records())
    assert report.ok, report.breaks  # the API's records are links of the run's chain
    api = [(r.kind, r.actor) for r in chain if r.kind.startswith("api.")]
    assert api == [
        ("api.run.started", "operator-1"),
        ("api.run.resumed", "operator-1"),
        ("api.run.cancelled", "operator-1"),
    ]
    assert not any(KEYS["operator"] in (r.payload or "") for r in chain)


def test_first_start_makes_an_admin_key_and_prints_it_once(tmp_path: Path) -> None:
    served = serve(tmp_path, keys=False)
    try:
        text = served.log.read_text()
        (key,) = re.findall(r"shown this once:\s+(\S+)", text)
        assert served.client(key=key).get("/api/runs").status_code == 200
        assert served.client(None).get("/api/runs").status_code == 401
    finally:
        served.stop()
    again = serve(tmp_path, keys=False)
    try:
        assert "shown this once" not in again.log.read_text()
        assert again.client(key=key).get("/api/runs").status_code == 200
    finally:
        again.stop()
    assert key not in (tmp_path / "server.db").read_bytes().decode("latin-1")


def test_beside_a_separate_worker_on_the_same_store(tmp_path: Path) -> None:
    """`--workers 0`: the server only queues; a `podium worker` process drives the run."""
    served = serve(tmp_path, extra=("--workers", "0"))
    worker = None
    try:
        c = served.client("operator")
        run_id = start(c, "echo", "queued")
        time.sleep(1.0)
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "running"  # nobody drives it
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        worker = subprocess.Popen(
            [sys.executable, "-m", "podium", "worker", "--until-idle", "--store", served.store],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_status(c, run_id, "completed")["output"] == "echo: queued"
        assert worker.wait(30) == 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        served.stop()


def test_a_run_holding_nan_and_infinity_is_still_served_as_json(server: Served) -> None:
    c = server.client("operator")
    body = b'{"target": "tests/server/flows.py:half", "input": Infinity}'
    r = c.post("/api/runs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    wait_status(c, run_id, "completed")

    def strict(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    run = json.loads(c.get(f"/api/runs/{run_id}").text, parse_constant=strict)
    assert run["output"] == "Infinity" and run["input"] == "Infinity"
    assert [k for _, k, _ in sse(server, run_id)][-1] == "run.completed"


def test_a_yaml_workflow_starts_over_http(server: Served) -> None:
    c = server.client("operator")
    r = c.post("/api/runs", json={"target": "examples/yaml/sequential.yaml", "input": " a  b "})
    assert r.status_code == 202, r.text
    assert r.json()["agent"] == "tidy"
    assert wait_status(c, r.json()["run_id"], "completed")["output"] == "A B"


def test_two_approvals_at_once_record_one_decision(server: Served) -> None:
    operator = server.client("operator")
    run_id = start(operator, "claim", {"claim_id": "C-3", "amount": 7})
    wait_status(operator, run_id, "waiting")
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def approve(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            headers = {"Authorization": f"Bearer {KEYS['approver']}"}
            barrier.wait()
            r = c.post(f"/api/runs/{run_id}/approve", json={"comment": str(n)}, headers=headers)
            codes.append(r.status_code)

    threads = [threading.Thread(target=approve, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [202, 409, 409, 409], codes
    wait_status(operator, run_id, "completed")
    kinds = [k for _, k, _ in sse(server, run_id)]
    assert kinds.count("decision.recorded") == 1
