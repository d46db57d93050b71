"""What a support workload costs, and what a budget stops: podium's cost figures (issue 10).

    python bench/cost.py                      # 200 tickets four ways, ~8 s
    python bench/cost.py --tickets 50 --json out.json --latency-scale 0

Two parts:

- **budget**: a runaway agent (it asks for its search tool forever, its context growing every
  turn) under `Budget(usd=0.10)` must stop at no more than $0.10 plus the one call in flight.
- **support workload**: 200 tickets, each a run of a support desk (a typed triage, then a
  written reply that sees the ticket and its triage), in four ways: with no optimisation;
  with caching (`cache=True`, on a SQLite file), when 30% of the tickets repeat an earlier one;
  with the triage marked `batchable=8` (tickets triaged at the same time share a model call);
  and with tiers (`fast` = gpt-4o-mini, `smart` = gpt-4o), a router sending billing tickets
  (the customer's money, 22.5% of them) to `smart` and the rest to `fast`. Tokens, dollars,
  wall time, and the saving against no optimisation.

Deterministic: tickets come from a seeded generator; the models are `ScriptedModel`s whose
answers depend only on the request and whose token counts are fixed sizes (about 4 characters
per token, OpenAI's rule of thumb for English text, plus 4 tokens per message), priced at
gpt-4o's rates (the smart tier; gpt-4o-mini is the cheap one) from podium's price table. So
tokens and dollars are the same on every run and every machine. Wall time is measured: each
model call sleeps a simulated provider latency (0.4 s + 12.5 ms per output token, gpt-4o's
~80 tokens/s) times `--latency-scale` (default 0.02, so the bench takes seconds), runs go 20 at
a time through one `Runtime` journaling to a SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from podium import (
    NO_RETRY,
    Batch,
    Budget,
    BudgetExceededError,
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
    tool,
    tool_call,
)
from podium.models.prices import PRICE_SOURCES, PRICES_AS_OF, Prices

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "cost.json"
SMART, CHEAP = "gpt-4o", "gpt-4o-mini"
RUNAWAY_BUDGET = 0.10
CONCURRENCY = 20
REPEAT_SHARE = 0.30  # tickets that repeat an earlier one word for word (what a cache hits)


# token counts and latency ------------------------------------------------------------------
def tokens(text: str) -> int:
    """Fixed-size token count: ~4 characters per token."""
    return max(1, math.ceil(len(text) / 4))


def input_tokens(
    messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
) -> int:
    n = sum(tokens(m.content) + 4 for m in messages)
    n += sum(tokens(json.dumps(t.parameters)) + tokens(t.description) for t in tools)
    if schema is not None:
        n += tokens(json.dumps(schema.schema))
    return n


@dataclass(frozen=True)
class Latency:
    scale: float

    async def wait(self, output_tokens: int) -> None:
        if self.scale > 0:
            await asyncio.sleep((0.4 + 0.0125 * output_tokens) * self.scale)


# the support workload ----------------------------------------------------------------------
PRODUCTS = ("router X2", "mesh kit", "smart plug", "camera C4", "thermostat T9", "hub mini")
PROBLEMS = (
    ("billing", "I was charged twice for my {p} subscription this month"),
    ("billing", "the invoice for my {p} shows a price I never agreed to"),
    ("shipping", "my {p} order has not arrived and the tracking page has not moved in a week"),
    ("shipping", "the {p} arrived with a cracked case and the box was crushed"),
    ("technical", "my {p} drops its connection every evening around eight"),
    ("technical", "after the latest update the {p} no longer shows up in the app"),
    ("account", "I cannot log in: the reset link for my {p} account never arrives"),
    ("returns", "I want to return the {p}; it does not fit my setup"),
)
DETAILS = (
    "I have already restarted everything twice and followed the steps on your help page.",
    "This is the third time I am writing about this and nobody has answered so far.",
    "My order number is on the receipt I attached; please tell me what you need from me.",
    "It worked fine for the first month, so I do not think I set it up wrong.",
    "I need this fixed before the weekend because I am travelling on Monday.",
    "My neighbour has the same model and does not have this problem at all.",
)

TRIAGE_INSTRUCTIONS = (
    "You triage customer support tickets for a home-networking company. Read the ticket and "
    "answer with its category (billing, shipping, technical, account, returns or other), its "
    "priority (low, normal, high or urgent) and whether a person must handle it. Rules: a "
    "customer charged twice or more is high priority; a customer who wrote three times or more "
    "is high priority; a safety problem (heat, smoke, sparks) is urgent and needs a person; a "
    "refund above 200 dollars needs a person; legal threats need a person; everything about "
    "passwords and log-in is category account; damaged deliveries are shipping, not returns. "
    "Do not guess an order number. Do not promise anything. Answer only with the JSON object. "
) * 2
REPLY_INSTRUCTIONS = (
    "You write replies to customer support tickets for a home-networking company. Be warm, "
    "brief and concrete: thank the customer once, say what happens next and when, and give at "
    "most three steps they can take themselves. Never blame the customer. Never promise a "
    "refund: say that the billing team will confirm it within two working days. For shipping "
    "problems, say that a replacement ships within 48 hours once the carrier confirms the "
    "loss or damage. For technical problems, give the firmware update steps first (Settings, "
    "then System, then Update), then the factory reset steps (hold the reset button for ten "
    "seconds). For account problems, say the reset link comes from no-reply@example.com and "
    "can land in the spam folder. Sign as 'The Support Team'. Use the triage you are given. "
) * 2


class Triage(BaseModel):
    category: str
    priority: str
    needs_human: bool


def make_tickets(n: int, seed: int = 10) -> list[str]:
    """`n` tickets; about 30% repeat an earlier ticket word for word."""
    rng = random.Random(seed)
    tickets: list[str] = []
    for i in range(n):
        if i >= 5 and rng.random() < REPEAT_SHARE:
            tickets.append(tickets[rng.randrange(len(tickets))])
            continue
        _, problem = rng.choice(PROBLEMS)
        text = problem.format(p=rng.choice(PRODUCTS))
        extra = " ".join(rng.sample(DETAILS, rng.randint(1, 3)))
        tickets.append(f"Hello, {text}. {extra} Ticket #{1000 + i}. Thanks, customer {i}.")
    return tickets


def _ticket_of(messages: Sequence[Message]) -> str:
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else ""


BATCH_ITEM = re.compile(r"^Item (\d+):\n(.*?)(?=\n\nItem \d+:\n|\Z)", re.S | re.M)


def triage_of(ticket: str) -> dict[str, Any]:
    """What the triage model answers for one ticket (a pure function of the ticket)."""
    text = ticket.lower()
    category = next((c for c, p in PROBLEMS if p.split("{p}")[0].lower() in text), "other")
    urgent = "charged twice" in text or "third time" in text
    return {
        "category": category,
        "priority": "high" if urgent else "normal",
        "needs_human": category == "billing" and urgent,
    }


def reply_to(request: str) -> str:
    """What the reply model writes for one request (the ticket and its triage)."""
    ticket = request.split("\n", 1)[0].removeprefix("Ticket: ")
    return (
        "Hello, and thank you for getting in touch. I am sorry about the trouble: "
        f"{ticket[7:120]}... Here is what happens next. Our team has your ticket and will "
        "come back to you within two working days with a confirmation. In the meantime you "
        "can try three things: update the firmware (Settings, then System, then Update), "
        "restart the device, and check that the app is on its latest version. If none of "
        "this helps, reply to this message and a specialist will call you. "
        "Kind regards, The Support Team"
    )


def support_model(name: str, latency: Latency) -> ScriptedModel:
    """One model for both agents of the desk: a typed triage (or a batch of them, numbered)
    when asked for structured output, else a reply. Usage is counted from the request."""

    async def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        request = _ticket_of(messages)
        out: Any = None
        if schema is None:
            text = reply_to(request)
        elif schema.name.endswith("_batch"):
            items = BATCH_ITEM.findall(request)
            out = {"items": [{"item": int(n), "output": triage_of(t)} for n, t in items]}
            text = json.dumps(out)
        else:
            out = triage_of(request)
            text = json.dumps(out)
        usage = Usage(input_tokens(messages, tools, schema), tokens(text), 1)
        await latency.wait(usage.output_tokens)
        return ModelResponse(text=text, output=out, usage=usage, finish_reason="stop")

    return ScriptedModel(answer, name=name)


def support_flow(
    name: str = "support",
    *,
    model: Any = None,
    tier: str | None = None,
    cache: bool = False,
    batchable: Batch | None = None,
) -> Any:
    """The desk: triage the ticket, then write the reply from the ticket and its triage."""
    triage = LLMAgent(
        "triage",
        model=model,
        tier=tier,
        instructions=TRIAGE_INSTRUCTIONS,
        output_type=Triage,
        cache=cache,
        batchable=batchable,
    )
    reply = LLMAgent("reply", model=model, tier=tier, instructions=REPLY_INSTRUCTIONS, cache=cache)

    @agent(name=name)
    async def support(ticket: str, ctx: RunContext) -> str:
        sorted_out = await ctx.call(triage, ticket)
        request = f"Ticket: {ticket}\nTriage: {sorted_out.model_dump_json()}"
        return str(await ctx.call(reply, request))

    return support


@dataclass
class Figures:
    """One row of the support table."""

    tickets: int
    completed: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    usd: float
    wall_s: float
    notes: str = ""
    by_agent: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": self.tokens, "usd": round(self.usd, 6)}


async def run_tickets(
    flow: Any, tickets: Sequence[str], store_dir: Path, name: str, **runtime: Any
) -> Figures:
    """Every ticket a run of `flow` (`CONCURRENCY` at a time), journaled to a fresh SQLite
    file; the figures add up the runs' usage, then (off the clock) split it by agent from the
    runs' journals, with the cache's hits and what they saved."""
    rt = Runtime(f"sqlite:///{store_dir / f'{name}.db'}", retry=NO_RETRY, **runtime)
    gate = asyncio.Semaphore(CONCURRENCY)
    total = Usage()
    run_ids: list[str] = []

    async def one(ticket: str) -> None:
        nonlocal total
        async with gate:
            result = await rt.run(flow, ticket)
        if not result.ok:
            raise SystemExit(f"{name}: a run failed: {result.error}")
        total = total + result.usage
        run_ids.append(result.run_id)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(one(t) for t in tickets))
        wall = time.perf_counter() - t0
        by_agent, extra = await _split_by_agent(rt, run_ids)
    finally:
        await rt.close()
    return Figures(
        len(tickets),
        len(run_ids),
        total.requests,
        total.input_tokens,
        total.output_tokens,
        total.usd,
        wall,
        by_agent=by_agent,
        extra=extra,
    )


async def _split_by_agent(
    rt: Runtime, run_ids: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    by_agent: dict[str, dict[str, float]] = {}
    hits, saved, models = 0, 0.0, Counter[str]()
    for run_id in run_ids:
        report = await rt.cost(run_id)
        for line in report.by_agent:
            row = by_agent.setdefault(line.name, {"tokens": 0, "usd": 0.0, "model_calls": 0})
            row["tokens"] += line.tokens
            row["usd"] = round(row["usd"] + line.usd, 10)
            row["model_calls"] += line.model_calls
        for line in report.by_model:
            models[line.name] += line.model_calls
        hits += report.cache_hits
        saved += report.saved_usd
    extra: dict[str, Any] = {"model_calls_by_model": dict(sorted(models.items()))}
    if hits:
        extra["cache_hits"] = hits
        extra["saved_usd"] = round(saved, 6)
    return by_agent, extra


async def baseline(tickets: Sequence[str], latency: Latency, store_dir: Path) -> Figures:
    """No optimisation: every ticket triaged and answered by the smart model, repeats too."""
    flow = support_flow(model=support_model(SMART, latency))
    figures = await run_tickets(flow, tickets, store_dir, "baseline")
    figures.notes = f"all on {SMART}"
    return figures


async def cached(tickets: Sequence[str], latency: Latency, store_dir: Path) -> Figures:
    """Item 3: `cache=True` on both agents, the cache on a SQLite file. A repeated ticket is
    answered from the cache (or shares the request of its twin still in flight): no tokens,
    no dollars, a `cache.hit` event with what it saved."""
    flow = support_flow(model=support_model(SMART, latency), cache=True)
    cache = f"sqlite:///{store_dir / 'cache.db'}"
    figures = await run_tickets(flow, tickets, store_dir, "cached", cache=cache)
    hits = figures.extra.get("cache_hits", 0)
    figures.notes = f"{hits} cache hits, saved ${figures.extra.get('saved_usd', 0):.4f}"
    return figures


async def batched(tickets: Sequence[str], latency: Latency, store_dir: Path) -> Figures:
    """Item 4: the triage marked `batchable=8`: triages that arrive within 50 ms of each other
    (from the 20 runs going at once) share one model call, the instructions sent once for up
    to 8 tickets; replies unchanged. The goal: >= 50% fewer tokens on the batchable part."""
    flow = support_flow(model=support_model(SMART, latency), batchable=Batch(size=8))
    figures = await run_tickets(flow, tickets, store_dir, "batched")
    calls = int(figures.by_agent.get("triage", {}).get("model_calls", 0))
    requests = figures.model_calls - int(figures.by_agent.get("reply", {}).get("model_calls", 0))
    figures.extra["triage_requests"] = requests
    figures.extra["items_per_request"] = round(calls / requests, 2) if requests else None
    figures.notes = f"{figures.extra['items_per_request']} tickets per triage call"
    return figures


def is_hard(ticket: str) -> str:
    """The router's rule: the customer's money (a charge, an invoice) goes to the smart tier."""
    text = ticket.lower()
    return "hard" if "charged" in text or "invoice" in text else "easy"


async def tiered(tickets: Sequence[str], latency: Latency, store_dir: Path) -> Figures:
    """Item 5: tiers `smart` = gpt-4o, `fast` = gpt-4o-mini, both agents asking for a tier;
    a router sends billing tickets to the smart desk and the rest to the fast one."""
    desk = Router(
        "support",
        {
            "easy": support_flow("support_fast", tier="fast"),
            "hard": support_flow("support_smart", tier="smart"),
        },
        classifier=is_hard,
    )
    tiers = {"fast": support_model(CHEAP, latency), "smart": support_model(SMART, latency)}
    figures = await run_tickets(desk, tickets, store_dir, "tiered", tiers=tiers)
    easy = sum(1 for t in tickets if is_hard(t) == "easy")
    figures.extra["cheap_share"] = round(easy / len(tickets), 3)
    figures.notes = f"{easy / len(tickets):.1%} of tickets on {CHEAP}"
    return figures


Row = Callable[[Sequence[str], Latency, Path], Awaitable[Figures | None]]
ROWS: dict[str, Row] = {
    "no optimisation": baseline,
    "caching (30% of tickets repeat)": cached,
    "item batching of 8": batched,
    "tiering (80% to the cheap tier)": tiered,
}


# the runaway loop under a budget -----------------------------------------------------------
@dataclass
class Runaway:
    limit_usd: float
    calls: int = 0
    spent_usd: float = 0.0
    last_call_usd: float = 0.0
    spent_before_last_usd: float = 0.0
    alert_at_call: int | None = None
    stopped_by: str = ""
    within_one_call: bool = False
    calls_costs: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["calls_costs"]
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in data.items()}


async def runaway(latency: Latency, store_dir: Path) -> Runaway:
    """An agent that searches forever; every search result stays in its context, so every
    call costs more than the last. `Budget(usd=0.10)` must stop it."""
    result_text = "Another lead worth following: " + "a long search result paragraph. " * 36

    @tool
    def search(query: str) -> str:
        """Search the web."""
        return result_text

    async def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        call = tool_call("search", query=f"lead {len(messages)}")
        usage = Usage(input_tokens(messages, tools, schema), 25, 1)
        await latency.wait(usage.output_tokens)
        return ModelResponse(tool_calls=(call,), usage=usage, finish_reason="tool_calls")

    agent = LLMAgent(
        "researcher",
        model=ScriptedModel(answer, name=SMART),
        instructions=REPLY_INSTRUCTIONS,
        tools=[search],
        max_turns=1_000,  # the ceiling: the budget must stop it first
    )
    rt = Runtime(f"sqlite:///{store_dir / 'runaway.db'}", retry=NO_RETRY)
    try:
        result = await rt.run(agent, "Find every lead.", budget=Budget(usd=RUNAWAY_BUDGET))
        steps = await rt.steps(result.run_id)
        events = await rt.events(result.run_id)
    finally:
        await rt.close()
    error = result.exception
    if not isinstance(error, BudgetExceededError):
        raise SystemExit(
            f"runaway: expected BudgetExceededError, got {result.status}: {result.error}"
        )
    costs = [s.usage.usd for s in steps if s.kind == "model" and s.usage is not None]
    out = Runaway(RUNAWAY_BUDGET, len(costs), sum(costs), costs[-1], sum(costs[:-1]))
    out.stopped_by = str(error)
    out.calls_costs = costs
    alert = next((e for e in events if e.kind == "budget.alert"), None)
    if alert is not None and alert.data:
        out.alert_at_call = int(str(alert.data["step"]).rsplit("#", 1)[1]) + 1
    out.within_one_call = out.spent_usd <= RUNAWAY_BUDGET + out.last_call_usd
    return out


# main --------------------------------------------------------------------------------------
async def measure(n: int, latency: Latency) -> dict[str, Any]:
    tickets = make_tickets(n)
    with tempfile.TemporaryDirectory(prefix="podium-cost-") as tmp:
        store_dir = Path(tmp)
        loop = await runaway(latency, store_dir)
        rows: dict[str, Figures | None] = {}
        for name, row in ROWS.items():
            rows[name] = await row(tickets, latency, store_dir)
    return {"tickets": tickets, "runaway": loop, "rows": rows}


def saving(row: Figures, base: Figures) -> dict[str, float]:
    return {
        "tokens_pct": round(100 * (1 - row.tokens / base.tokens), 1),
        "usd_pct": round(100 * (1 - row.usd / base.usd), 1),
    }


def report(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, Figures | None] = data["rows"]
    base = rows["no optimisation"]
    assert base is not None
    prices = Prices()
    smart, cheap = prices.get(SMART), prices.get(CHEAP)
    assert smart is not None and cheap is not None
    tickets: list[str] = data["tickets"]
    return {
        "meta": {
            "tickets": len(tickets),
            "repeated_tickets": len(tickets) - len(set(tickets)),
            "latency_scale": args.latency_scale,
            "concurrency": CONCURRENCY,
            "smart_model": {"name": SMART, **smart.to_dict()},
            "cheap_model": {"name": CHEAP, **cheap.to_dict()},
            "prices_as_of": PRICES_AS_OF,
            "price_sources": list(PRICE_SOURCES),
            "tokens": "fixed sizes: ceil(characters / 4) + 4 per message",
            "python": platform.python_version(),
            "commit": _commit(),
            "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "runaway": data["runaway"].to_dict(),
        "support": {
            name: None
            if row is None
            else {**row.to_dict(), "saving": None if row is base else saving(row, base)}
            for name, row in rows.items()
        },
        "batchable_part": batchable_part(base, rows.get("item batching of 8")),
    }


def batchable_part(base: Figures, row: Figures | None) -> dict[str, Any] | None:
    """The triage alone, without and with batching: the goal is >= 50% fewer tokens."""
    if row is None or "triage" not in base.by_agent or "triage" not in row.by_agent:
        return None
    before, after = base.by_agent["triage"], row.by_agent["triage"]
    saved = 1 - after["tokens"] / before["tokens"]
    return {
        "agent": "triage",
        "tokens_before": int(before["tokens"]),
        "tokens_after": int(after["tokens"]),
        "usd_before": round(before["usd"], 6),
        "usd_after": round(after["usd"], 6),
        "tokens_saving_pct": round(100 * saved, 1),
        "usd_saving_pct": round(100 * (1 - after["usd"] / before["usd"]), 1),
        "goal_met": saved >= 0.5,
    }


def print_table(out: dict[str, Any]) -> None:
    meta, loop = out["meta"], out["runaway"]
    print(
        f"runaway loop under Budget(usd={loop['limit_usd']:.2f}), priced as {SMART}: "
        f"stopped after {loop['calls']} calls at ${loop['spent_usd']:.4f} "
        f"(${loop['spent_before_last_usd']:.4f} before the last call, which cost "
        f"${loop['last_call_usd']:.4f}); alert at call {loop['alert_at_call']}; "
        f"within $0.10 + one call: {'yes' if loop['within_one_call'] else 'NO'}"
    )
    print(
        f"\nsupport workload: {meta['tickets']} tickets ({meta['repeated_tickets']} repeats), "
        f"triage + reply, {SMART} ${meta['smart_model']['input']}/"
        f"${meta['smart_model']['output']} per M tokens (prices as of {meta['prices_as_of']}), "
        f"latency x{meta['latency_scale']}, {CONCURRENCY} runs at a time"
    )
    head = f"{'row':34} {'calls':>6} {'tokens':>10} {'usd':>9} {'wall s':>7} {'saving':>21}  notes"
    print(head)
    print("-" * (len(head) + 30))
    for name, row in out["support"].items():
        if row is None:
            print(f"{name:34} {'not built yet (issue 10, see bench/cost.py)':>51}")
            continue
        save = row["saving"]
        shown = "-" if save is None else f"{save['tokens_pct']}% tok, {save['usd_pct']}% $"
        print(
            f"{name:34} {row['model_calls']:>6} {row['tokens']:>10,} "
            f"{'$' + format(row['usd'], '.4f'):>9} {row['wall_s']:>7.2f} {shown:>21}  "
            f"{row['notes']}"
        )
    part = out.get("batchable_part")
    if part is not None:
        print(
            f"\nbatchable part (triage): {part['tokens_before']:,} -> {part['tokens_after']:,} "
            f"tokens ({part['tokens_saving_pct']}% fewer; ${part['usd_before']:.4f} -> "
            f"${part['usd_after']:.4f}); goal >= 50%: {'met' if part['goal_met'] else 'NOT met'}"
        )


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--tickets", type=int, default=200, help="tickets in the workload")
    p.add_argument("--latency-scale", type=float, default=0.02, help="x simulated latency")
    p.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The bench's runs are never resumed: no warnings about targets other processes can't load.
    logging.getLogger("podium").setLevel(logging.ERROR)
    data = asyncio.run(measure(args.tickets, Latency(args.latency_scale)))
    out = report(data, args)
    print_table(out)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    part = out.get("batchable_part")
    goals = out["runaway"]["within_one_call"] and (part is None or part["goal_met"])
    return 0 if goals else 1


if __name__ == "__main__":
    sys.exit(main())
