"""A support inbox for less: tickets triaged in batches, repeats answered from the cache, and
only billing tickets written by the expensive model.

    inbox          @agent: triage the ticket, then have the reply desk answer it
    ├── triage     LLMAgent, tier "fast", batchable=8, cache=True
    └── replies    Router: billing -> reply on tier "smart", the rest -> reply on tier "fast"
                   (the same LLMAgent, `reply.on_tier(...)`), cache=True

Every ticket is a run; run many at once (`podium batch`, or `main` below) and the triages
that arrive together share one model call. The agents carry their own tiers (scripted models
named `gpt-4o-mini` and `gpt-4o`, priced like them, offline); `PODIUM_TIERS=tiers.yaml` or
`Runtime(tiers=...)` puts real models behind the same names.

    podium batch examples.cost_control.inbox:inbox \\
        --input examples/cost_control/tickets.jsonl --out results.jsonl --concurrency 16
    python -m examples.cost_control.inbox          # the same tickets, all at once, in-process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from podium import (
    Batch,
    LLMAgent,
    Message,
    ModelResponse,
    OutputSchema,
    Router,
    RunContext,
    Runtime,
    ScriptedModel,
    ToolSpec,
    Usage,
    agent,
)

TICKETS = Path(__file__).with_name("tickets.jsonl")
TRIAGE = (
    "You triage support tickets for a home-networking shop. Answer with the ticket's category "
    "(billing, shipping, technical or account) and whether it is urgent: a customer charged "
    "twice, or writing for the third time, is urgent. Answer only with the JSON object."
)
REPLY = (
    "You answer support tickets for a home-networking shop: warm, brief, concrete. Say what "
    "happens next and when. Never promise a refund: the billing team confirms it within two "
    "working days. Sign as 'The Support Team'."
)


class Triage(BaseModel):
    category: str
    urgent: bool


class Answer(BaseModel):
    category: str
    urgent: bool
    reply: str


# offline models: answers from the request, token counts at about four characters a token
def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _sort(ticket: str) -> dict[str, Any]:
    text = ticket.lower()
    category = next((c for c, words in _CATEGORIES if any(w in text for w in words)), "technical")
    return {"category": category, "urgent": "charged twice" in text or "third time" in text}


_CATEGORIES = (
    ("billing", ("charged", "invoice", "refund")),
    ("shipping", ("parcel", "arrived", "delivery")),
    ("account", ("password", "log in", "login")),
)
_ITEM = re.compile(r"^Item (\d+):\n(.*?)(?=\n\nItem \d+:\n|\Z)", re.S | re.M)


def scripted(name: str) -> ScriptedModel:
    """Triages (one ticket, or a numbered batch) and replies, as `name` would."""

    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        request = messages[-1].content
        output: Any = None
        if schema is None:
            ticket = str(json.loads(request)["ticket"])
            said = f"Thank you for writing about '{ticket[:60]}'. We are on it. The Support Team"
        elif schema.name.endswith("_batch"):
            items = _ITEM.findall(request)
            output = {"items": [{"item": int(n), "output": _sort(t)} for n, t in items]}
            said = json.dumps(output)
        else:
            output = _sort(request)
            said = json.dumps(output)
        seen = sum(_tokens(m.content) + 4 for m in messages)
        if schema is not None:
            seen += _tokens(json.dumps(schema.schema))
        return ModelResponse(text=said, output=output, usage=Usage(seen, _tokens(said), 1))

    return ScriptedModel(answer, name=name)


TIERS = {"fast": scripted("gpt-4o-mini"), "smart": scripted("gpt-4o")}

triage = LLMAgent(
    "triage",
    tier="fast",
    tiers=TIERS,
    instructions=TRIAGE,
    output_type=Triage,
    batchable=Batch(size=8, window=0.05),
    cache=True,
)
reply = LLMAgent("reply", tier="fast", tiers=TIERS, instructions=REPLY, cache=True)
replies = Router(
    "replies",
    {"easy": reply, "billing": reply.on_tier("smart")},
    classifier=lambda request: "billing" if request["triage"]["category"] == "billing" else "easy",
)


@agent(name="inbox")
async def inbox(ticket: str, ctx: RunContext) -> Answer:
    """Triage the ticket, then answer it on the tier its category deserves."""
    sorted_out: Triage = await ctx.call(triage, ticket)
    request = {"ticket": ticket, "triage": sorted_out.model_dump()}
    text = await ctx.call(replies, request)
    return Answer(category=sorted_out.category, urgent=sorted_out.urgent, reply=str(text))


def load_tickets(path: Path = TICKETS) -> list[str]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def run_all(tickets: Sequence[str], store: str | None = None) -> dict[str, Any]:
    """Every ticket a run, all at once; what it cost, by model, and what the cache saved."""
    async with Runtime(store) as rt:
        results = await asyncio.gather(*(rt.run(inbox, t) for t in tickets))
        reports = [await rt.cost(r.run_id) for r in results]
    by_model: dict[str, int] = {}
    for report in reports:
        for line in report.by_model:
            by_model[line.name] = by_model.get(line.name, 0) + line.model_calls
    return {
        "tickets": len(tickets),
        "completed": sum(1 for r in results if r.ok),
        "requests": sum(r.usage.requests for r in results),
        "tokens": sum(r.usage.total_tokens for r in results),
        "usd": sum(r.usage.usd for r in results),
        "cache_hits": sum(r.cache_hits for r in reports),
        "saved_usd": sum(r.saved_usd for r in reports),
        "model_calls_by_model": by_model,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.cost_control.inbox [--tickets FILE] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.cost_control.inbox")
    parser.add_argument("--tickets", type=Path, default=TICKETS, help="a JSONL file of tickets")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    out = asyncio.run(run_all(load_tickets(args.tickets), args.store))
    print(
        f"{out['completed']} of {out['tickets']} tickets answered with {out['requests']} model "
        f"calls, {out['tokens']:,} tokens, ${out['usd']:.4f}"
    )
    print(f"cache: {out['cache_hits']} hits saved ${out['saved_usd']:.4f}")
    for name, calls in sorted(out["model_calls_by_model"].items()):
        print(f"  {name:12} {calls:>3} model steps")
    return 0 if out["completed"] == out["tickets"] else 1


if __name__ == "__main__":
    sys.exit(main())
