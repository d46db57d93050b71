"""The buyer's side: a workflow that asks the supplier's desk (a `RemoteAgent`) for a quote
and decides whether to buy.

    QUOTE_DESK_URL=http://127.0.0.1:9100/ python -m examples.a2a.buyer --item widget --qty 40

The desk's card is pinned to its origin; what it says is untrusted content; if it asks for
input (a bulk discount), this run waits for a person here: `podium answer RUN '"approve"'`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from podium import RemoteAgent, RunResult, Runtime, Sequential, agent
from podium.stores import default_store_url

URL = os.environ.get("QUOTE_DESK_URL", "http://127.0.0.1:9100/")
BUDGET = 500.0


@agent
async def decide(quote: dict[str, Any]) -> dict[str, Any]:
    """Buy when the quote is within budget."""
    buy = float(quote["total"]) <= BUDGET
    return {"decision": "buy" if buy else "skip", "budget": BUDGET, "quote": quote}


def build(url: str) -> Sequential:
    desk = RemoteAgent(url, name="quote_desk", poll_interval=0.1)
    return Sequential("buyer", [desk, decide], description="ask the supplier, then decide")


flow = build(URL)


async def buy(order: dict[str, Any], store: str | None) -> RunResult:
    async with Runtime(store) as rt:
        return await rt.run(flow, order, target="examples.a2a.buyer:flow")


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.a2a.buyer [--item ITEM] [--qty N] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.a2a.buyer")
    parser.add_argument("--item", default="widget")
    parser.add_argument("--qty", type=int, default=40)
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = asyncio.run(buy({"item": args.item, "qty": args.qty}, args.store))
    store = args.store or default_store_url()
    if result.ok:
        print(json.dumps(result.output, indent=2))
    elif result.status == "waiting":
        print(f"waiting: {result.error}")
        print(f"  grant it:  podium answer {result.run_id} '\"approve\"' --store {store}")
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"run {result.run_id} {result.status}")
    return 0 if result.status in ("completed", "waiting") else 1


if __name__ == "__main__":
    raise SystemExit(main())
