"""Support triage: `Router.llm` with a confidence threshold and no fallback.

support_triage (Router.llm, threshold 0.7, no fallback)
├── support_triage.classify   LLMAgent -> RouteDecision (scripted: keyword scoring)
├── billing                   billing_desk   -> a ticket in the billing queue
├── technical                 technical_desk -> a ticket in the technical queue
├── account                   account_desk   -> a ticket in the account queue
└── support_triage.triage     below 0.7: the run waits until a person picks a desk
                              (`podium answer RUN billing`)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from examples.support_triage import tables
from podium import RouteDecision, Router, RunContext, RunResult, Runtime, ScriptedModel, agent, tool
from podium.core.tools import ToolSpec
from podium.models.base import Message, OutputSchema
from podium.stores import default_store_url

TARGET = "examples.support_triage.flow:flow"
THRESHOLD = 0.7
MODEL_LABEL = "scripted (offline: ScriptedModel scoring keywords)"
SAMPLE_MESSAGE = "I was charged twice for my subscription this month, please refund one invoice."


class SupportMessage(BaseModel):
    """What the customer wrote. A bare string is accepted too."""

    customer_id: str = "anonymous"
    message: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"message": value} if isinstance(value, str) else value


class Ticket(BaseModel):
    ticket_id: str
    desk: Literal["billing", "technical", "account"]
    priority: Literal["normal", "high", "urgent"]
    status: Literal["ticket_opened", "ticket_exists"]
    reply: str
    model: str = MODEL_LABEL


# the scripted classifier: keyword scoring, so confidence varies with the evidence -------------

KEYWORDS: dict[str, tuple[str, ...]] = {
    "billing": (
        "invoice",
        "charged",
        "charge",
        "refund",
        "payment",
        "bill",
        "billed",
        "subscription",
        "receipt",
        "price",
        "overcharged",
        "card",
    ),
    "technical": (
        "error",
        "crash",
        "crashes",
        "bug",
        "slow",
        "api",
        "timeout",
        "install",
        "sync",
        "not working",
        "broken",
        "outage",
        "down",
    ),
    "account": (
        "password",
        "log in",
        "login",
        "sign in",
        "username",
        "2fa",
        "locked",
        "email address",
        "profile",
        "delete my account",
    ),
}
_PATTERNS = {
    desk: re.compile(r"(?<!\w)(" + "|".join(map(re.escape, words)) + r")(?!\w)", re.I)
    for desk, words in KEYWORDS.items()
}


def score(text: str) -> RouteDecision:
    """The share of keyword hits the best desk has, times how much evidence there is: one
    clear keyword is 0.75, two are 0.95; a message split between desks scores low."""
    hits = {desk: len(p.findall(text)) for desk, p in _PATTERNS.items()}
    best = max(hits, key=lambda d: hits[d])
    total = sum(hits.values())
    if total == 0:
        return RouteDecision(route="", confidence=0.0, reason="no desk's keywords found")
    strength = min(1.0, 0.55 + 0.2 * hits[best])
    confidence = round(hits[best] / total * strength, 2)
    found = ", ".join(f"{d} {n}" for d, n in hits.items() if n)
    return RouteDecision(route=best, confidence=confidence, reason=f"keyword hits: {found}")


def classify(
    messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
) -> dict[str, Any]:
    text = next((m.content for m in reversed(messages) if m.role == "user"), "")
    with contextlib.suppress(ValueError, KeyError, TypeError):  # a bare string stays as is
        text = json.loads(text)["message"]
    return score(text).model_dump()


# the desks ------------------------------------------------------------------------------------


@tool(effect=True)
def open_ticket(desk: str, customer_id: str, message: str, priority: str) -> dict[str, Any]:
    """Open a ticket on a desk's queue, once per desk, customer and message.

    Args:
        desk: billing, technical or account.
        customer_id: Who wrote.
        message: What they wrote.
        priority: normal, high or urgent.
    """
    return tables.open_ticket(desk, customer_id, message, priority)


async def _file(desk: str, msg: SupportMessage, ctx: RunContext, urgent: str, reply: str) -> Ticket:
    priority = "high" if re.search(urgent, msg.message, re.I) else "normal"
    args = {"desk": desk, "customer_id": msg.customer_id, "message": msg.message}
    ticket = await ctx.use(open_ticket, {**args, "priority": priority})
    return Ticket.model_validate(
        {
            "ticket_id": ticket["ticket_id"],
            "desk": desk,
            "priority": priority,
            "status": "ticket_opened" if ticket["new"] else "ticket_exists",
            "reply": reply.format(ticket=ticket["ticket_id"]),
        }
    )


@agent(description="Charges, invoices, refunds, subscriptions, cards.")
async def billing_desk(msg: SupportMessage, ctx: RunContext) -> Ticket:
    reply = "Our billing team has your question as {ticket} and replies within a day."
    return await _file("billing", msg, ctx, r"twice|overcharged|fraud", reply)


@agent(description="Errors, crashes, outages, the app and the API.")
async def technical_desk(msg: SupportMessage, ctx: RunContext) -> Ticket:
    reply = "Our engineers are looking into it as {ticket}."
    return await _file("technical", msg, ctx, r"outage|down|all users|production", reply)


@agent(description="Logging in, passwords, two-factor, profile and account closure.")
async def account_desk(msg: SupportMessage, ctx: RunContext) -> Ticket:
    reply = "Our account team has {ticket}; we never ask for your password by email."
    return await _file("account", msg, ctx, r"locked|hacked|stolen", reply)


def build_flow(model: Any = None) -> Router:
    """`model` is any `Model`; by default the offline keyword-scoring `ScriptedModel`."""
    router = Router.llm(
        "support_triage",
        {"billing": billing_desk, "technical": technical_desk, "account": account_desk},
        model=model or ScriptedModel(classify, name="scripted-triage"),
        threshold=THRESHOLD,
        description="The helpdesk's front door.",
    )
    return router


flow = build_flow()


async def triage(message: str, store: str | None = None) -> RunResult:
    async with Runtime(store) as rt:
        return await rt.run(flow, {"message": message}, target=TARGET)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.support_triage [MESSAGE] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.support_triage")
    parser.add_argument("message", nargs="?", default=SAMPLE_MESSAGE)
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = asyncio.run(triage(args.message, args.store))
    store = args.store or default_store_url()
    if result.ok:
        print(json.dumps(result.to_dict()["output"], indent=2))
    elif result.status == "waiting":
        print(f"waiting: {result.error}")
        print(f"  see it:    podium inbox --store {store}")
        print(f"  route it:  podium answer {result.run_id} billing --store {store}")
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"model: {MODEL_LABEL}")
    print(f"run {result.run_id} {result.status}")
    print(f"store: {store}   tickets db: {tables.db_path()}")
    return 0 if result.status in ("completed", "waiting") else 1


if __name__ == "__main__":
    raise SystemExit(main())
