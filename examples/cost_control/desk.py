"""The flow: three analysts research at once, each under a budget of its own, then a writer
turns their findings into a brief; the whole run has a budget too.

    desk = Sequential("desk", [Parallel("analysts", [...], min_success=2), writer])
    rt.run(desk, question, budget=Budget(usd=0.05))

Each analyst may spend `ANALYST_BUDGET` ($0.005, 10 model calls). The competitor analyst is a
runaway: it keeps searching, every result piling up in its context. Its budget alerts at 70%
and stops it at 100%; the `Parallel` goes on with the two findings it has and names the gap,
and the writer says what is missing. The run's budget would stop everything if the desk as a
whole overspent; `--budget-usd 0.004` shows that, and `podium resume RUN --budget usd=0.05`
then finishes the run, counting on from what it had spent.

With no model given every agent runs on a `ScriptedModel` named after a real model
(gpt-4o-mini for the analysts, gpt-4o for the writer), so it is priced like that model while
it runs offline. Token counts are fixed sizes: about four characters per token.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Sequence
from typing import Any

from podium import (
    NO_RETRY,
    Budget,
    BudgetAlert,
    LLMAgent,
    Message,
    ModelResponse,
    OutputSchema,
    Parallel,
    Runtime,
    ScriptedModel,
    Sequential,
    ToolSpec,
    Usage,
    tool,
    tool_call,
)
from podium.stores import default_store_url

TARGET = "examples.cost_control.desk:desk"
SAMPLE_QUESTION = "Should we sell our smart thermostat in Spain next year?"
ANALYST_BUDGET = Budget(usd=0.005, model_calls=10)
RUN_BUDGET = Budget(usd=0.05)
AREAS = ("pricing", "competitors", "reviews")
RUNAWAY = "competitors"  # offline, this analyst never stops searching

ANALYST = (
    "You are the {area} analyst of a market research desk. Use the search tool to find what "
    "you need about {area}, then answer with one paragraph of findings. Search at most three "
    "times."
)
WRITER = (
    "You write a one-paragraph brief for the leadership team from the analysts' findings. "
    "Name any area that has no findings, so nobody mistakes a gap for good news."
)
RESULT = (
    "Search result: a long article with market figures, quotes from retailers, a table of "
    "prices by region and several customer reviews, most of them about installation. "
) * 50  # ~2,000 tokens: every search the runaway makes costs more than the one before


@tool
def search(query: str) -> str:
    """Search the web and return the best result.

    Args:
        query: What to look for.
    """
    return RESULT


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def usage_of(messages: Sequence[Message], said: str) -> Usage:
    seen = sum(tokens(m.content) + 4 for m in messages)
    return Usage(seen, tokens(said), 1)


def scripted_analyst(area: str) -> ScriptedModel:
    """Two searches, then a finding; the runaway searches forever."""

    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        searched = sum(1 for m in messages if m.role == "tool")
        if area == RUNAWAY or searched < 2:
            call = tool_call("search", query=f"{area} thermostats Spain, page {searched + 1}")
            said = f"search {call.arguments}"
            return ModelResponse(tool_calls=(call,), usage=usage_of(messages, said))
        text = f"{area.title()}: the market supports a launch; see the figures in the sources."
        return ModelResponse(text=text, usage=usage_of(messages, text), finish_reason="stop")

    return ScriptedModel(answer, name="gpt-4o-mini")


def scripted_writer() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> ModelResponse:
        findings = messages[-1].content
        missing = [a for a in AREAS if f'"{a}"' not in findings.split('"gaps"')[0]]
        text = "Brief: launch in Spain next year, pricing and reviews support it."
        if missing:
            text += f" No findings on {', '.join(missing)}: treat that area as unknown."
        return ModelResponse(text=text, usage=usage_of(messages, text), finish_reason="stop")

    return ScriptedModel(answer, name="gpt-4o")


def build_desk(model: Any = None) -> Sequential:
    """The desk; `model` (a name like `openai:gpt-4o-mini`, or a `Model`) for every agent,
    else the scripted ones."""
    analysts = [
        LLMAgent(
            area,
            model=model or scripted_analyst(area),
            instructions=ANALYST.format(area=area),
            tools=[search],
            max_turns=50,
            budget=ANALYST_BUDGET,
        )
        for area in AREAS
    ]
    writer = LLMAgent("writer", model=model or scripted_writer(), instructions=WRITER)
    return Sequential("desk", [Parallel("analysts", analysts, min_success=2), writer])


desk = build_desk()


def warn(alert: BudgetAlert) -> None:
    def shown(value: float) -> str:
        return f"${value:.4f}" if alert.limit == "usd" else f"{value:g}"

    print(
        f"warning: {alert.scope} budget: {alert.limit} at {alert.fraction:.0%} "
        f"({shown(alert.spent)} of {shown(alert.maximum)})",
        file=sys.stderr,
    )


async def run_once(
    question: str, model: Any = None, store: str | None = None, budget: Budget = RUN_BUDGET
) -> tuple[Any, Any]:
    """One run under `budget`, and what it cost (a `CostReport`)."""
    async with Runtime(store, retry=None if model else NO_RETRY, on_budget_alert=warn) as rt:
        if model is None:
            result = await rt.run(desk, question, target=TARGET, budget=budget)
        else:
            result = await rt.run(build_desk(model), question, budget=budget)
        return result, await rt.cost(result.run_id)


def print_cost(report: Any) -> None:
    print(f"cost: ${report.usd:.4f}, {report.tokens:,} tokens, {report.total.model_calls} calls")
    for line in report.by_agent:
        print(f"  {line.name:12} ${line.usd:.4f}  {line.model_calls:>2} model call(s)")


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.cost_control [QUESTION] [--budget-usd X] [--model M] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.cost_control")
    parser.add_argument("question", nargs="?", default=SAMPLE_QUESTION)
    parser.add_argument("--budget-usd", type=float, default=RUN_BUDGET.usd)
    parser.add_argument("--model", default=None, help="e.g. openai:gpt-4o-mini (default: scripted)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    budget = Budget(usd=args.budget_usd)
    result, report = asyncio.run(run_once(args.question, args.model, args.store, budget))
    store = args.store or default_store_url()
    print_cost(report)
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        print(
            f"run {result.run_id} {result.status}; more room: "
            f"podium resume {result.run_id} --budget usd=0.05 --store {store}",
            file=sys.stderr,
        )
        return 1
    print(result.output)
    print(f"run {result.run_id}   (podium cost {result.run_id} --store {store})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
