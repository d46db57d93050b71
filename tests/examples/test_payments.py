"""The payments example on a real SQLite store: payments above 1,000 wait for a person at
the `pay` call, an injected payment is refused by the policy, and an approval given from
another process pays exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples.payments import desk as payments
from podium import Decision, Runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def biz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("PAYMENTS_LEDGER", str(path))
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    return path


def store_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'payments.db'}"


async def test_a_small_invoice_is_paid_without_a_person(tmp_path: Path, biz: Path) -> None:
    async with payments.runtime(store_of(tmp_path)) as rt:
        result = await rt.run(payments.desk, "Pay invoice 1.", target=payments.TARGET)
        assert result.ok, result.error
        assert await rt.inbox() == []
    assert [(p["vendor"], p["amount"]) for p in payments.payments()] == [("acme", 420.0)]


async def test_the_injected_payment_is_refused_and_the_real_one_made(
    tmp_path: Path, biz: Path
) -> None:
    async with payments.runtime(store_of(tmp_path)) as rt:
        result = await rt.run(payments.desk, "Pay invoice 3.", target=payments.TARGET)
        assert result.ok, result.error
        denied = [e.data for e in await rt.events(result.run_id) if e.kind == "policy.denied"]
    assert [(p["vendor"], p["amount"]) for p in payments.payments()] == [("initech", 300.0)]
    assert len(denied) == 1 and denied[0]["tool"] == "pay"
    assert "'mallory' is not one of" in denied[0]["reason"]


async def test_a_large_invoice_waits_at_the_call_and_a_rejection_pays_nothing(
    tmp_path: Path, biz: Path
) -> None:
    async with payments.runtime(store_of(tmp_path)) as rt:
        result = await rt.run(payments.desk, "Pay invoice 2.", target=payments.TARGET)
        assert result.status == "waiting"
        (request,) = await rt.inbox()
        assert request.request["tool"] == "pay"
        assert request.request["args"]["amount"] == 12500.0
        assert "above 1000" in request.request["reason"]
        done = await rt.resume(
            result.run_id, payments.desk, decision=Decision.reject("not budgeted", by="cfo")
        )
        assert done.ok and "rejected by cfo: not budgeted" in str(done.output)
    assert payments.payments() == []


def test_another_process_approves_and_the_payment_is_made_once(tmp_path: Path, biz: Path) -> None:
    env = {
        **os.environ,
        "PODIUM_STORE": store_of(tmp_path),
        "PAYMENTS_LEDGER": str(biz),
        "PYTHONPATH": str(ROOT),
    }

    def shell(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    started = shell(sys.executable, "-m", "examples.payments", "--invoice", "2")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout.split("\na person")[0])["run_id"]
    inbox = shell(sys.executable, "-m", "podium", "inbox")
    assert "args_hash:" in inbox.stdout and '"amount": 12500.0' in inbox.stdout
    approved = shell(sys.executable, "-m", "podium", "approve", run_id, "--by", "cfo")
    assert approved.returncode == 0, approved.stderr
    again = shell(sys.executable, "-m", "podium", "approve", run_id)
    assert again.returncode == 2 and "not waiting" in again.stderr
    assert [(p["vendor"], p["amount"]) for p in payments.payments()] == [("globex", 12500.0)]


def test_the_policy_file_is_valid() -> None:
    policy = payments.POLICY
    assert policy.check(
        "clerk", (), "pay", {"vendor": "acme", "iban": "DE89370400440532013000", "amount": 5.0}
    ).allowed
    assert not policy.check("clerk", (), "send_money", {}).allowed
    assert isinstance(
        Runtime("memory://", policy=payments.HERE / "policies.yaml").policy, type(policy)
    )
