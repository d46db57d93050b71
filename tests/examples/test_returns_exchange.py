"""The main example end to end: the returns-and-exchange workflow on a real SQLite store and a
real business database, both in a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from examples.returns_exchange import systems
from examples.returns_exchange.flow import SAMPLE_MESSAGE, build_flow
from examples.returns_exchange.understanding import SCRIPTED_LABEL
from forked import run_module
from podium import RunStatus, Runtime
from podium.models.scripted import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "business.db"
    monkeypatch.setenv("RETURNS_DB", str(path))
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    with systems.connect():  # created and seeded, so every test can read every table
        pass
    return path


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


async def run(rt: Runtime, message: str) -> dict[str, Any]:
    result = await rt.run(build_flow(), {"message": message})
    assert result.status == RunStatus.COMPLETED, result.error
    out: dict[str, Any] = result.to_dict()["output"]
    out["run_id"] = result.run_id
    return out


async def test_exchange_with_a_price_difference_writes_every_system(rt: Runtime, biz: Path) -> None:
    out = await run(
        rt, "Please exchange my jacket from order 1004 for JKT-SUMMITPRO-L, tags still on."
    )
    assert (out["route"], out["status"], out["case_id"]) == (
        "returns",
        "exchange_approved",
        "RMA-1004",
    )
    assert "$30.00" in out["reply"]
    assert rows(biz, "SELECT kind, amount_cents FROM payments") == [
        {"kind": "charge", "amount_cents": 3000}
    ]
    label = rows(biz, "SELECT case_id, tracking_number FROM labels")
    assert len(label) == 1 and label[0]["case_id"] == "RMA-1004"
    assert label[0]["tracking_number"] == out["details"]["label"]
    order = rows(biz, "SELECT status, case_id, replacement_sku FROM orders WHERE order_id = 1004")
    assert order == [
        {"status": "exchange_pending", "case_id": "RMA-1004", "replacement_sku": "JKT-SUMMITPRO-L"}
    ]
    assert rows(biz, "SELECT on_hand FROM inventory WHERE sku = 'JKT-SUMMITPRO-L'") == [
        {"on_hand": 1}
    ]
    notes = rows(biz, "SELECT address, body FROM notifications")
    assert len(notes) == 1 and notes[0]["address"] == "ada@example.com"
    assert label[0]["tracking_number"] in notes[0]["body"]
    assert rows(biz, "SELECT case_id, reason, wants_exchange FROM return_reasons") == [
        {"case_id": "RMA-1004", "reason": "other", "wants_exchange": 1}
    ]
    # the two checks ran as branches of the Parallel, every write as a journaled tool step
    keys = {s.key for s in await rt.steps(out["run_id"])}
    prefix = "/returns_exchange/returns#0"
    assert f"{prefix}/assess#0/check_inventory#0" in keys
    assert f"{prefix}/assess#0/price_difference#0" in keys
    assert f"{prefix}/fulfil#0/adjust_payment#0/record_payment#0" in keys


async def test_the_sample_message_is_an_even_exchange(rt: Runtime, biz: Path) -> None:
    out = await run(rt, SAMPLE_MESSAGE)
    assert out["status"] == "exchange_approved"
    assert out["details"]["replacement_sku"] == "SHOE-TRAIL-10"
    assert out["details"]["reason"] == "too_small"
    assert rows(biz, "SELECT kind, amount_cents FROM payments") == [
        {"kind": "even", "amount_cents": 0}
    ]


async def test_a_plain_return_refunds_what_was_paid(rt: Runtime, biz: Path) -> None:
    out = await run(rt, "I changed my mind about order 1005, I'd like to return it. Unworn.")
    assert out["status"] == "return_approved"
    assert rows(biz, "SELECT kind, amount_cents FROM payments") == [
        {"kind": "refund", "amount_cents": 7900}
    ]
    assert rows(biz, "SELECT status FROM orders WHERE order_id = 1005") == [
        {"status": "return_pending"}
    ]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("I want to return my swim shorts from order 1002, they are too big", "final sale"),
        ("I'd like to return the tent from order 1003, I don't need it", "within 30 days"),
        ("I wore my shoes from order 1001 on a hike, can I return them?", "when defective"),
    ],
)
async def test_an_ineligible_request_is_refused_cleanly(
    rt: Runtime, biz: Path, message: str, why: str
) -> None:
    out = await run(rt, message)
    assert out["status"] == "refused"
    assert out["reply"].startswith("Sorry, we cannot accept this return")
    assert why in out["reply"]
    assert rows(biz, "SELECT * FROM payments") == []
    assert rows(biz, "SELECT * FROM labels") == []
    assert rows(biz, "SELECT * FROM notifications") == []
    assert rows(biz, "SELECT status FROM orders WHERE status != 'delivered'") == []


async def test_a_request_without_an_order_number_asks_for_one(rt: Runtime, biz: Path) -> None:
    out = await run(rt, "I'd like to return my running shoes please")
    assert out["status"] == "needs_info"
    assert "no order number" in out["reply"]
    assert rows(biz, "SELECT * FROM payments") == []


async def test_an_out_of_stock_replacement_stops_before_any_write(rt: Runtime, biz: Path) -> None:
    out = await run(rt, "Can I exchange my running shoes from order 1001 for size 11?")
    assert out["status"] == "out_of_stock"
    assert rows(biz, "SELECT * FROM payments") == []


async def test_a_billing_question_goes_to_billing(rt: Runtime, biz: Path) -> None:
    out = await run(rt, "I was charged twice on my card for order 1004")
    assert (out["route"], out["status"]) == ("billing", "ticket_opened")
    assert out["model"] is None
    assert rows(biz, "SELECT ticket_id, queue FROM tickets") == [
        {"ticket_id": out["ticket_id"], "queue": "billing"}
    ]
    decisions = [e.data for e in await rt.events(out["run_id"]) if e.kind == "route.decision"]
    assert decisions and decisions[0] is not None
    assert (decisions[0]["route"], decisions[0]["outcome"]) == ("billing", "routed")


@pytest.mark.parametrize(
    ("message", "confidence"),
    [("zxqv blorp wibble", 0.0), ("Hello, where is my order 1001?", 0.4)],
)
async def test_gibberish_or_a_weak_guess_goes_to_the_fallback(
    rt: Runtime, biz: Path, message: str, confidence: float
) -> None:
    out = await run(rt, message)
    assert (out["route"], out["status"]) == ("triage", "ticket_opened")
    assert rows(biz, "SELECT queue FROM tickets") == [{"queue": "triage"}]
    decision = next(e.data for e in await rt.events(out["run_id"]) if e.kind == "route.decision")
    assert decision is not None
    assert (decision["outcome"], decision["confidence"]) == ("fallback", confidence)
    assert decision["target"] == "triage_desk"


async def test_running_twice_gives_two_runs_and_one_refund(rt: Runtime, biz: Path) -> None:
    first = await run(rt, SAMPLE_MESSAGE)
    second = await run(rt, SAMPLE_MESSAGE)
    runs = await rt.list_runs()
    assert {r.run_id for r in runs} == {first["run_id"], second["run_id"]}
    assert all(r.status == RunStatus.COMPLETED for r in runs)
    assert second["status"] == "already_open" and second["case_id"] == "RMA-1001"
    assert len(rows(biz, "SELECT * FROM payments")) == 1
    assert len(rows(biz, "SELECT * FROM labels")) == 1


async def test_the_output_says_which_model_read_the_request(
    rt: Runtime, biz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = await run(rt, SAMPLE_MESSAGE)
    assert out["model"] == SCRIPTED_LABEL == "scripted (no PODIUM_MODEL set)"

    monkeypatch.setenv("PODIUM_MODEL", "scripted")
    out = await run(rt, "Please return order 1005, I changed my mind")
    assert out["model"] == "scripted (PODIUM_MODEL=scripted)"

    # a model handed in is asked, and named in the output
    answer = {
        "order_id": 1004,
        "item": "jacket",
        "reason": "too_large",
        "reason_detail": "too big",
        "condition": "unused",
        "wants_exchange": False,
        "new_size": None,
        "new_sku": None,
    }
    model = ScriptedModel([answer], name="stand-in")
    result = await rt.run(build_flow(model), {"message": "send back the jacket please"})
    assert result.ok, result.error
    assert (result.output.model, result.output.status) == ("stand-in", "return_approved")
    model.assert_consumed()


async def test_a_failed_write_resumes_without_paying_twice(rt: Runtime, biz: Path) -> None:
    with systems.connect() as conn:  # the notification system is down
        conn.execute("ALTER TABLE notifications RENAME TO notifications_down")
    flow = build_flow()
    failed = await rt.run(flow, {"message": SAMPLE_MESSAGE})
    assert failed.status == RunStatus.FAILED
    assert "notify_customer" in (failed.error or "")
    assert len(rows(biz, "SELECT * FROM payments")) == 1

    with systems.connect() as conn:  # back up
        conn.execute("ALTER TABLE notifications_down RENAME TO notifications")
    resumed = await rt.resume(failed.run_id, flow)
    assert resumed.ok, resumed.error
    assert resumed.output.status == "exchange_approved"
    steps = {s.key: s for s in await rt.steps(failed.run_id)}
    # the payment step was done, so the resume replayed it from the journal; the
    # notification had failed, so it ran again
    fulfil = "/returns_exchange/returns#0/fulfil#0"
    replayed = {e.key for e in await rt.events(failed.run_id) if e.kind == "step.replayed"}
    assert f"{fulfil}/adjust_payment#0" in replayed
    assert f"{fulfil}/notify_customer#0" not in replayed
    assert steps[f"{fulfil}/notify_customer#0/send_email#0"].status == "completed"
    assert len(rows(biz, "SELECT * FROM payments")) == 1
    assert len(rows(biz, "SELECT * FROM notifications")) == 1


def test_python_dash_m_runs_the_example(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}",
        "RETURNS_DB": str(tmp_path / "business.db"),
    }
    env.pop("PODIUM_MODEL", None)
    proc = run_module("examples.returns_exchange", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    body, _, tail = proc.stdout.rpartition("}")
    out = json.loads(body + "}")
    assert (out["status"], out["model"]) == ("exchange_approved", SCRIPTED_LABEL)
    assert "completed" in tail
    assert len(rows(tmp_path / "podium.db", "SELECT run_id FROM runs")) == 1
    assert len(rows(tmp_path / "business.db", "SELECT * FROM labels")) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("podium.cli.app") is None, reason="the podium CLI is not there"
)
def test_podium_run_loads_the_flow_file(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}",
        "RETURNS_DB": str(tmp_path / "business.db"),
    }
    env.pop("PODIUM_MODEL", None)
    message = json.dumps({"message": "I was charged twice for order 1004"})
    for target in ("examples/returns_exchange/flow.py:flow", "examples.returns_exchange.flow:flow"):
        proc = run_module(
            "podium.cli.app", "run", target, "--input", message, "--json", cwd=ROOT, env=env
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert (result["status"], result["output"]["route"]) == ("completed", "billing")
    assert len(rows(tmp_path / "podium.db", "SELECT run_id FROM runs")) == 2
