"""A support desk as a Handoff: a model at the front hands customers to billing or tech.

    support
    ├── triage     LLMAgent with transfer_to_billing (payload: RefundRequest) and
    │              transfer_to_tech (receives the whole context)
    ├── billing    Python: refunds small amounts itself, hands big ones to a supervisor
    ├── tech       LLMAgent: answers from the handoff context
    └── supervisor Python: approves big refunds, or sends the case back to billing

With no provider configured, triage and tech run on `ScriptedModel`s that answer from the
message; set `PODIUM_MODEL` to use a real model.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from podium import (
    Handoff,
    HandoffInput,
    HandoffTo,
    LLMAgent,
    Message,
    Model,
    Runtime,
    ScriptedModel,
    agent,
    tool_call,
)
from podium.core.tools import ToolSpec
from podium.models.base import OutputSchema, ToolCall

TARGET = "examples.support_handoff.desk:desk"

REFUND_LIMIT = 100.0


class RefundRequest(BaseModel):
    order_id: int
    amount: float
    reason: str


class Resolution(BaseModel):
    resolved_by: str
    reply: str


def scripted_triage() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], _: OutputSchema | None
    ) -> str | ToolCall:
        text = messages[-1].content.lower()
        if "refund" in text or "charged" in text:
            amount = 250.0 if "twice" in text else 40.0
            payload = {"order_id": 1001, "amount": amount, "reason": messages[-1].content}
            return tool_call("transfer_to_billing", payload=payload, note="a refund request")
        if "crash" in text or "error" in text:
            return tool_call("transfer_to_tech", note="the app is failing")
        return "Thanks for writing! Anything else I can help with?"

    return ScriptedModel(answer, name="scripted-triage")


def scripted_tech() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], _: OutputSchema | None
    ) -> str:
        handed = HandoffInput.model_validate_json(messages[-1].content)
        return f"Tech here ({handed.note}): please update to 2.4.1, which fixes that crash."

    return ScriptedModel(answer, name="scripted-tech")


@agent
def billing(req: RefundRequest) -> Resolution | HandoffTo:
    """Refunds up to the limit; anything bigger needs a supervisor."""
    if req.amount > REFUND_LIMIT:
        return HandoffTo("supervisor", payload=req, note=f"{req.amount:g} is over the limit")
    return Resolution(
        resolved_by="billing", reply=f"Refunded {req.amount:g} on order {req.order_id}."
    )


@agent
def supervisor(req: RefundRequest) -> Resolution:
    """Approves a big refund."""
    return Resolution(
        resolved_by="supervisor",
        reply=f"Approved: {req.amount:g} refunded on order {req.order_id}.",
    )


def _model(given: Model | str | None, scripted: ScriptedModel) -> Model | str:
    return given if given is not None else (os.environ.get("PODIUM_MODEL") or scripted)


def build_desk(model: Model | str | None = None) -> Handoff:
    triage = LLMAgent(
        "triage",
        model=_model(model, scripted_triage()),
        instructions="You are the front desk of a shop. Answer simple questions; hand refunds "
        "to billing and technical problems to tech.",
        description="the front desk",
    )
    tech = LLMAgent(
        "tech",
        model=_model(model, scripted_tech()),
        instructions="You are technical support. Solve the customer's problem.",
        description="technical problems with the app or the website",
    )
    return Handoff(
        "support",
        agents=[triage, billing, tech, supervisor],
        start=triage,
        routes={"triage": ["billing", "tech"], "billing": ["supervisor"]},
        max_turns=6,
    )


desk = build_desk()


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.support_handoff [MESSAGE] [--store URL]`: prints the run as JSON."""
    parser = argparse.ArgumentParser(prog="python -m examples.support_handoff")
    parser.add_argument("message", nargs="?", default="I was charged twice for order 1001")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = Runtime(args.store).run_sync(desk, args.message, target=TARGET)
    out: Any = None if result.output is None else result.output.model_dump()
    shown = {"run_id": result.run_id, "status": str(result.status), "output": out}
    print(json.dumps({**shown, "error": result.error}, indent=2))
    return 0 if result.ok else 1
