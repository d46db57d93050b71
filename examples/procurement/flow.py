"""The procurement desk: a `Router` in front, a `Supervisor` behind it, `Parallel` groups as
the supervisor's workers. No hierarchy class: patterns are agents, so they nest.

    desk = Router("desk", {"procurement": procurement, "helpdesk": helpdesk}, classifier=rules)
    procurement = Supervisor("procurement", [quotes, evaluation, purchase_order], planner=...)
    quotes = Parallel("quotes", [acme, globex, initech], min_success=2)

The supervisor's planner (an `LLMAgent` answering with a `Plan`) orders the work: quotes, then
the vendor evaluation (which needs the quotes), then the purchase order (which needs the
evaluation). Each of those is a group of agents working at once. A vendor whose portal is down
is a gap in the quotes; two quotes are enough to go on.

With no model given, the planner and the risk analyst run on `ScriptedModel`s that answer from
their request, so the example runs offline and in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from podium import (
    NO_RETRY,
    LLMAgent,
    Message,
    Parallel,
    ParallelResult,
    Router,
    Rule,
    Runtime,
    ScriptedModel,
    ToolSpec,
    agent,
)
from podium.patterns.supervisor import Assignment, Plan, Supervisor, SynthesisRequest
from podium.stores import default_store_url

TARGET = "examples.procurement.flow:flow"

SAMPLE = {
    "text": "Please buy 40 laptops for the new Madrid office.",
    "item": "laptop",
    "quantity": 40,
    "budget": 52000,
}


class PurchaseRequest(BaseModel):
    text: str
    item: str = ""
    quantity: int = 0
    budget: float = 0.0


class Quote(BaseModel):
    vendor: str
    unit_price: float
    delivery_days: int

    def total(self, quantity: int) -> float:
        return self.unit_price * quantity


class Recommendation(BaseModel):
    vendor: str
    total: float
    reason: str


@dataclass
class Systems:
    """The outside world the leaves talk to: vendor portals, the approved-vendor list and the
    budget ledger. `down` names systems that fail when called (to show gaps and resume)."""

    catalogue: dict[str, Quote] = field(
        default_factory=lambda: {
            "acme": Quote(vendor="acme", unit_price=1190.0, delivery_days=12),
            "globex": Quote(vendor="globex", unit_price=1090.0, delivery_days=9),
            "initech": Quote(vendor="initech", unit_price=990.0, delivery_days=30),
        }
    )
    approved: frozenset[str] = frozenset({"acme", "globex", "initech"})
    down: set[str] = field(default_factory=lambda: {"initech"})
    calls: list[str] = field(default_factory=list)

    def call(self, system: str) -> None:
        self.calls.append(system)
        if system in self.down:
            raise ConnectionError(f"{system} is not answering")


def request_of(task: Assignment) -> PurchaseRequest:
    return PurchaseRequest.model_validate(task.goal)


def quotes_of(task: Assignment) -> dict[str, Quote]:
    group = ParallelResult.model_validate(task.inputs["quotes"])
    return {v: Quote.model_validate(q) for v, q in group.results.items()}


def build_flow(model: Any = None, systems: Systems | None = None) -> Router:
    """The whole desk. `model` runs the planner, risk analyst and helpdesk (scripted if None)."""
    world = systems or Systems()
    procurement = Supervisor(
        "procurement",
        [_quotes(world), _evaluation(world, model), _purchase_order(world)],
        planner=LLMAgent(
            "planner",
            model=model or scripted_planner(),
            instructions=PLANNER,
            output_type=Plan,
        ),
        synthesizer=summary,
        max_turns=5,
    )
    helpdesk = LLMAgent(
        "helpdesk",
        model=model or ScriptedModel.echo("scripted-helpdesk"),
        instructions="Answer questions about purchasing policy in two sentences.",
    )
    return Router(
        "desk",
        {"procurement": procurement, "helpdesk": helpdesk},
        classifier=[Rule("procurement", keywords=["buy", "purchase", "order", "quote"])],
        fallback=helpdesk,
    )


def _quotes(world: Systems) -> Parallel:
    def vendor(name: str) -> Any:
        @agent(name=name, description=f"{name}'s quoting portal")
        def quote(task: Assignment) -> Quote:
            world.call(name)
            return world.catalogue[name]

        return quote

    return Parallel(
        "quotes",
        [vendor(v) for v in world.catalogue],
        min_success=2,
        description="asks every vendor for a quote at once",
    )


def _evaluation(world: Systems, model: Any) -> Parallel:
    @agent
    def price_analyst(task: Assignment) -> Recommendation:
        quantity = request_of(task).quantity
        quotes = quotes_of(task)
        best = min(quotes.values(), key=lambda q: (q.total(quantity), q.vendor))
        reason = f"lowest total of {len(quotes)} quotes"
        return Recommendation(vendor=best.vendor, total=best.total(quantity), reason=reason)

    @agent
    def compliance(task: Assignment) -> dict[str, bool]:
        world.call("vendor_registry")
        return {v: v in world.approved for v in quotes_of(task)}

    risk = LLMAgent(
        "risk_analyst",
        model=model or scripted_risk(),
        instructions="Rate each quoting vendor's delivery risk as low, medium or high.",
        output_type=dict[str, str],
    )
    return Parallel(
        "evaluation",
        [price_analyst, risk, compliance],
        description="price, delivery risk and compliance, judged at once",
    )


def _purchase_order(world: Systems) -> Parallel:
    def pick(task: Assignment) -> Recommendation:
        group = ParallelResult.model_validate(task.inputs["evaluation"])
        return Recommendation.model_validate(group.results["price_analyst"])

    @agent
    def po_writer(task: Assignment) -> str:
        world.call("erp")
        rec = pick(task)
        return f"PO-{request_of(task).quantity:03d}-{rec.vendor.upper()}"

    @agent
    def budget_hold(task: Assignment) -> float:
        world.call("budget_ledger")
        rec, budget = pick(task), request_of(task).budget
        if rec.total > budget:
            raise ValueError(f"total {rec.total:.0f} is over the budget of {budget:.0f}")
        return rec.total

    return Parallel(
        "purchase_order",
        [po_writer, budget_hold],
        description="writes the order and holds the money at once",
    )


@agent
def summary(request: SynthesisRequest) -> str:
    """The desk's answer, written from the accepted results."""
    if "purchase_order" not in request.results:
        return f"No order placed ({request.status}); missing: {sorted(request.gaps)}"
    evaluation = ParallelResult.model_validate(request.results["evaluation"]).results
    order = ParallelResult.model_validate(request.results["purchase_order"]).results
    rec = Recommendation.model_validate(evaluation["price_analyst"])
    quotes = ParallelResult.model_validate(request.results["quotes"])
    missing = f"; no quote from {', '.join(sorted(quotes.gaps))}" if quotes.gaps else ""
    return (
        f"{order['po_writer']}: {rec.vendor}, {rec.total:.0f} EUR held "
        f"(risk {evaluation['risk_analyst'][rec.vendor]}){missing}"
    )


# the planner's plan type and the scripted models -------------------------------------------

PLANNER = (
    "You run a procurement desk. Plan the purchase over the groups listed: collect quotes "
    "(id 'quotes'), evaluate vendors from the quotes (id 'evaluation'), then raise the purchase "
    "order from the evaluation (id 'purchase_order')."
)
PLAN = {
    "final": True,
    "subtasks": [
        {"id": "quotes", "worker": "quotes", "instruction": "Get quotes", "depends_on": []},
        {
            "id": "evaluation",
            "worker": "evaluation",
            "instruction": "Compare price, delivery risk and compliance",
            "depends_on": ["quotes"],
        },
        {
            "id": "purchase_order",
            "worker": "purchase_order",
            "instruction": "Raise the order for the recommended vendor",
            "depends_on": ["evaluation"],
        },
    ],
}


def scripted_planner() -> ScriptedModel:
    return ScriptedModel(lambda messages, tools, schema: PLAN, name="scripted-planner")


def scripted_risk() -> ScriptedModel:
    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], _: Any) -> Any:
        task = json.loads(messages[-1].content)
        quotes = task["inputs"]["quotes"]["results"]
        return {
            v: "low"
            if q["delivery_days"] <= 10
            else "medium"
            if q["delivery_days"] <= 20
            else "high"
            for v, q in quotes.items()
        }

    return ScriptedModel(answer, name="scripted-risk")


# running it --------------------------------------------------------------------------------


flow = build_flow()


async def run_once(
    request: dict[str, Any], model: Any = None, store: str | None = None, systems: Any = None
) -> Any:
    """One run on `store` (default: `PODIUM_STORE`, else `./.podium/podium.db`). With the
    scripted models its target is the module's `flow`, so `podium resume RUN` (in another
    process, where every system but Initech answers) finds it again."""
    async with Runtime(store, retry=None if model else NO_RETRY) as rt:
        if model is None and systems is None:
            return await rt.run(flow, request, target=TARGET)
        target = TARGET if model is None else None
        return await rt.run(build_flow(model, systems), request, target=target)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.procurement [TEXT] [--quantity N] [--budget EUR] [--down SYSTEM]
    [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.procurement")
    parser.add_argument("text", nargs="?", default=SAMPLE["text"])
    parser.add_argument("--item", default=SAMPLE["item"])
    parser.add_argument("--quantity", type=int, default=SAMPLE["quantity"])
    parser.add_argument("--budget", type=float, default=SAMPLE["budget"])
    parser.add_argument(
        "--down",
        action="append",
        default=[],
        help="a system that does not answer in this run (e.g. budget_ledger); repeatable",
    )
    parser.add_argument("--model", default=None, help="e.g. openai:gpt-4o-mini (default: scripted)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    request = {
        "text": args.text,
        "item": args.item,
        "quantity": args.quantity,
        "budget": args.budget,
    }
    systems = Systems(down={"initech", *args.down}) if args.down else None
    result = asyncio.run(run_once(request, args.model, args.store, systems))
    store = args.store or default_store_url()
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        how = f"podium resume {result.run_id} --store {store}"
        if args.model is not None:  # built for that model: not the module's flow
            how = "rt.resume(run_id, build_flow(model)) in Python"
        print(f"run {result.run_id} {result.status}; when fixed: {how}", file=sys.stderr)
        return 1
    out = result.output
    if hasattr(out, "status"):
        print(out.output)
        print(f"\nstatus: {out.status}, turns: {out.turns}, run {result.run_id}")
    else:
        print(out)
    print(f"store: {store}   (podium trace {result.run_id} --store {store})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
