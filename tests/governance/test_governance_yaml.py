"""A workflow file pins an llm node's plan and names its guardrails."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium import GuardrailTrippedError, PinnedPlan, Runtime, SpecError, load_yaml

TOOLS = '''
from podium import tool


@tool
def read_invoice(invoice: int) -> str:
    """Untrusted."""
    return "an invoice"


@tool(effect=True)
def send_money(to: str, amount: int) -> str:
    """Send money."""
    return "sent"


def no_secrets(value) -> bool:
    return "secret" in str(value)
'''


def write(tmp_path: Path, node: str) -> Path:
    (tmp_path / "bank.py").write_text(TOOLS)
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(node))
    return path


def test_a_plan_and_guardrails_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        kind: llm
        name: payer
        model: scripted
        instructions: Pay.
        tools:
          - python: bank.py:read_invoice
          - python: bank.py:send_money
        plan:
          - tool: send_money
            args: {to: alice, amount: 20}
        input_guardrails:
          - python: bank.py:no_secrets
        """,
    )
    payer = load_yaml(path)
    assert isinstance(payer.plan, PinnedPlan)
    assert payer.plan.match("send_money", {"to": "alice", "amount": 20}) == 0
    assert payer.plan.match("send_money", {"to": "bob", "amount": 20}) is None
    assert [g.name for g in payer.input_guardrails] == ["no_secrets"]
    result = Runtime("memory://").run_sync(payer, "the secret is 42")
    assert result.status == "failed"
    assert isinstance(result.exception, GuardrailTrippedError)


def test_a_plan_must_name_an_effect_tool_of_the_node(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        kind: llm
        name: payer
        model: scripted
        instructions: Pay.
        tools:
          - python: bank.py:read_invoice
        plan:
          - tool: read_invoice
            args: {invoice: 1}
        """,
    )
    with pytest.raises(SpecError, match="not one of its side-effecting tools"):
        load_yaml(path)
