"""The support-handoff example on a real SQLite store: model transfers with typed payloads,
a Python handoff to a supervisor, and context for the tech agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from examples.support_handoff.desk import build_desk
from podium import NO_RETRY, Runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    async with Runtime(f"sqlite:///{tmp_path / 'desk.db'}", retry=NO_RETRY) as runtime:
        yield runtime


@pytest.mark.parametrize(
    ("message", "path", "answered_by"),
    [
        ("I was charged twice for order 1001", ["billing", "supervisor"], "supervisor"),
        ("Please refund order 1001, it arrived broken", ["billing"], "billing"),
        ("the app shows an error", ["tech"], "tech"),
        ("what are your opening hours?", [], "triage"),
    ],
)
async def test_messages_take_their_path(
    rt: Runtime, message: str, path: list[str], answered_by: str
) -> None:
    result = await rt.run(build_desk(), message)
    assert result.ok, result.error
    assert [h.receiver for h in result.output.hops] == path
    assert result.output.agent == answered_by
    kinds = [e.kind for e in await rt.events(result.run_id) if e.kind.startswith("handoff.")]
    assert kinds == ["handoff.transfer"] * len(path) + ["handoff.stop"]


async def test_refund_payload_is_typed_and_the_answer_is_stored(
    rt: Runtime,
) -> None:
    desk = build_desk()
    result = await rt.run(desk, "I was charged twice for order 1001")
    assert result.output.output.reply == "Approved: 250 refunded on order 1001."
    assert result.output.hops[0].payload["amount"] == 250.0
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert "/support/triage#0/transfer_to_billing#0" in keys
    assert keys[-1] == "/support/supervisor#0"
    again = await rt.resume(result.run_id, desk)  # completed: returns the stored answer
    assert again.output == result.output.model_dump()
