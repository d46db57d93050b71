"""The returns-and-exchange workflow: a router in front, the returns pipeline behind it.

    returns_exchange (Router, keyword rules, threshold 0.6, fallback: triage_desk)
    ├── returns (the pipeline)
    │   ├── read_request      LLMAgent -> ReturnRequest (PODIUM_MODEL, else scripted)
    │   ├── check_policy      30 days, not final sale, unworn unless defective
    │   ├── assess            Parallel: check_inventory | price_difference
    │   └── fulfil            Sequential: adjust_payment -> create_return_label
    │                           -> update_order -> notify_customer -> log_return_reason
    ├── billing               billing_desk: a ticket in the billing queue
    └── technical             technical_desk: a ticket in the technical queue

Run it: `python -m examples.returns_exchange "message"` or
`podium run examples/returns_exchange/flow.py:flow --input '{"message": "..."}'`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

if not __package__:  # loaded as a file (`podium run .../flow.py:flow`): make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.returns_exchange import systems
from examples.returns_exchange.agents import (
    approval_reply,
    assess,
    billing_desk,
    check_policy,
    fulfil,
    refusal_reply,
    technical_desk,
    triage_desk,
)
from examples.returns_exchange.schemas import (
    Assessment,
    CustomerMessage,
    Outcome,
    ReturnRequest,
    Settlement,
    Verdict,
)
from examples.returns_exchange.understanding import INSTRUCTIONS, choose_model
from podium import RunContext, RunResult, Runtime
from podium.agents.base import AgentBase
from podium.agents.llm import LLMAgent
from podium.core.serde import validator_for
from podium.models.base import Model
from podium.patterns.router import Router, Rule
from podium.stores import default_store_url

TARGET = "examples.returns_exchange.flow:flow"
SAMPLE_MESSAGE = (
    "Hi, I'd like to exchange my running shoes from order 1001 for size 10, they're too small"
)

RULES = [
    Rule(
        "returns",
        keywords=[
            "return",
            "exchange",
            "swap",
            "send back",
            "send it back",
            "too small",
            "too big",
            "too large",
            "doesn't fit",
            "does not fit",
            "wrong size",
        ],
        confidence=0.9,
    ),
    Rule(
        "billing",
        keywords=[
            "invoice",
            "charged",
            "charge",
            "billing",
            "bill",
            "receipt",
            "payment",
            "card",
            "refund",
            "overcharged",
        ],
        confidence=0.9,
    ),
    Rule(
        "technical",
        keywords=[
            "login",
            "log in",
            "password",
            "app",
            "website",
            "error",
            "crash",
            "crashes",
            "bug",
            "checkout",
        ],
        confidence=0.9,
    ),
    # Mentions an order but says nothing about what they want: a guess, below the threshold.
    Rule("returns", keywords=["order", "item", "parcel", "package"], confidence=0.4),
]
THRESHOLD = 0.6


class ReturnsDesk(AgentBase[CustomerMessage, Outcome]):
    """The returns pipeline. Its branches are plain Python on step results, so a resumed run
    takes the same path (every step below is journaled)."""

    def __init__(self, reader: LLMAgent, model_label: str) -> None:
        self.reader = reader
        self.model_label = model_label
        self._setup(
            "returns",
            input_type=CustomerMessage,
            output_type=Outcome,
            description="Returns and exchanges of delivered orders.",
        )

    async def run(self, msg: CustomerMessage, ctx: RunContext) -> Outcome:
        label = self.model_label
        request = await ctx.call(self.reader, msg.message)
        verdict: Verdict = await ctx.call(check_policy, request, sender=self.reader.name)
        ctx.emit("returns.verdict", status=verdict.status, reasons=verdict.reasons)
        if verdict.status != "eligible" or verdict.case is None:
            return _unresolved(verdict, label)
        case = verdict.case
        checks = await ctx.call(assess, case)
        assessment = Assessment.model_validate(checks.value)
        if not assessment.stock.available:
            return Outcome(
                route="returns",
                status="out_of_stock",
                reply=f"Sorry, {case.replacement_sku} is out of stock. Reply 'refund' and we "
                f"will refund {case.product_name} instead.",
                case_id=case.case_id,
                details={"stock": assessment.stock.model_dump()},
                model=label,
            )
        done: Settlement = await ctx.call(fulfil, Settlement(case=case, assessment=assessment))
        return _approved(done, label)

    async def aclose(self) -> None:
        """Close the reader's model connections (a real provider's HTTP client)."""
        close = getattr(self.reader.model, "aclose", None)
        if close is not None:
            await close()


def _unresolved(verdict: Verdict, model_label: str) -> Outcome:
    case = verdict.case
    return Outcome(
        route="returns",
        status=verdict.status,
        reply=refusal_reply(verdict),
        case_id=None if case is None else case.case_id,
        details={
            "reasons": verdict.reasons,
            "request": None if case is None else case.request.model_dump(),
        },
        model=model_label,
    )


def _approved(s: Settlement, model_label: str) -> Outcome:
    assert s.payment is not None and s.label is not None and s.notification is not None
    exchange = s.case.replacement_sku is not None
    details: dict[str, Any] = {
        "order_id": s.case.order_id,
        "returned_sku": s.case.sku,
        "replacement_sku": s.case.replacement_sku,
        "reason": s.case.request.reason,
        "payment": {"kind": s.payment.kind, "amount_cents": s.payment.amount_cents},
        "label": s.label.tracking_number,
        "order_status": s.order_status,
        "notified": s.notification.address,
        "reason_logged": s.reason_logged,
    }
    return Outcome(
        route="returns",
        status="exchange_approved" if exchange else "return_approved",
        reply=approval_reply(s),
        case_id=s.case.case_id,
        details=details,
        model=model_label,
    )


def build_flow(model: Model | str | None = None) -> Router:
    """The whole workflow; `model` (or `PODIUM_MODEL`) picks who reads the messages."""
    reader_model, label = choose_model(model)
    reader = LLMAgent(
        "read_request",
        model=reader_model,
        instructions=INSTRUCTIONS,
        output_type=ReturnRequest,
        description="Turns the customer's words into a structured return request.",
    )
    router = Router(
        "returns_exchange",
        {
            "returns": ReturnsDesk(reader, label),
            "billing": billing_desk,
            "technical": technical_desk,
        },
        classifier=RULES,
        threshold=THRESHOLD,
        fallback=triage_desk,
        description="Customer service front door: returns, billing, technical.",
    )
    # Check the input once at the front door, so a malformed one is refused before a run
    # starts (every route takes a CustomerMessage).
    router.input_type = CustomerMessage
    router.check_input = validator_for(CustomerMessage)
    return router


flow = build_flow()


async def run_once(message: str, store: str | None = None) -> RunResult:
    """One run of `flow` on `message`; the store is `PODIUM_STORE` or `./.podium/podium.db`."""
    async with Runtime(store) as rt:
        try:
            return await rt.run(flow, {"message": message}, target=TARGET)
        finally:
            await flow.routes["returns"].aclose()


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.returns_exchange [MESSAGE] [--reset] [--store URL]`: one run."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.returns_exchange",
        description="Run the returns-and-exchange workflow on one customer message.",
    )
    parser.add_argument(
        "message", nargs="?", default=SAMPLE_MESSAGE, help="what the customer wrote"
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete and re-seed the business database first"
    )
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    if args.reset:
        systems.reset()
    result = asyncio.run(run_once(args.message, args.store))
    if result.ok:
        print(json.dumps(result.to_dict()["output"], indent=2))
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"run {result.run_id} {result.status}")
    print(f"store: {args.store or default_store_url()}   business db: {systems.db_path()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
