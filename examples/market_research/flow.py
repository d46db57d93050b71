"""The flow: a research lead (a `Supervisor`) plans the work over four named analysts.

    research = Supervisor.llm("research", [sizing, competitors, customers, pricing], model=...)

The lead's planner splits the question into subtasks; sizing, competitors and customers run
at once, pricing waits for competitors and customers (`depends_on`). The lead's reviewer sends
the competitor scan back once ("give market shares") before accepting it; the synthesizer
writes the brief from the accepted findings.

With no model given, every agent runs on a `ScriptedModel` that answers from its request, so
the example runs offline and in the test suite. Pass `--model openai:gpt-4o-mini` to use a
real one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from podium import NO_RETRY, LLMAgent, Message, OutputSchema, Runtime, ScriptedModel, ToolSpec
from podium.patterns.supervisor import Supervisor
from podium.stores import default_store_url

TARGET = "examples.market_research.flow:flow"
SAMPLE_QUESTION = "Should we launch home EV chargers in Spain next year?"


class Finding(BaseModel):
    """What an analyst hands back."""

    headline: str
    detail: str
    sources: list[str] = Field(default_factory=list)


ANALYSTS = {
    "sizing": "Estimates the market's size and growth from public statistics.",
    "competitors": "Scans competitors: who sells what, at what price, with what market share.",
    "customers": "Summarises what buyers say they want, from surveys and reviews.",
    "pricing": "Proposes a price from the competitor scan and the customer findings.",
}
ANALYST = (
    "You are a market analyst. Do the instruction you are given for the goal, using the "
    "results of earlier subtasks in `inputs` and the feedback on your previous attempt if any. "
    "Answer with a headline, two or three sentences of detail, and your sources."
)


def build_flow(model: Any = None) -> Supervisor:
    """The research lead and its analysts; every agent on `model`, or scripted when None."""
    analysts = [
        LLMAgent(
            name,
            model=model or scripted_analyst(name),
            instructions=ANALYST,
            output_type=Finding,
            description=about,
        )
        for name, about in ANALYSTS.items()
    ]
    return Supervisor.llm(
        "research",
        analysts,
        model=model or scripted_lead(),
        instructions="You lead a market-research team. Keep the plan to at most five subtasks.",
        max_turns=6,
    )


# scripted models: deterministic stand-ins that answer from what they are asked -------------

PLAN = {
    "final": True,
    "subtasks": [
        {"id": "size", "worker": "sizing", "instruction": "Size the market", "depends_on": []},
        {"id": "rivals", "worker": "competitors", "instruction": "Scan rivals", "depends_on": []},
        {"id": "voice", "worker": "customers", "instruction": "What buyers want", "depends_on": []},
        {
            "id": "price",
            "worker": "pricing",
            "instruction": "Propose a launch price",
            "depends_on": ["rivals", "voice"],
        },
    ],
}

FINDINGS = {
    "sizing": ("About 210,000 home chargers a year by 2027", "Grows with EV sales, ~25%/yr."),
    "competitors": ("Three rivals dominate", "Wallbox, Circontrol and Orbis sell at 600-900 EUR."),
    "customers": ("Buyers want installation included", "Price matters less than a fixed date."),
}
SHARES = "Shares: Wallbox 38%, Circontrol 21%, Orbis 14%."


def _request(messages: Sequence[Message]) -> Any:
    return json.loads(messages[-1].content)


def scripted_analyst(name: str) -> ScriptedModel:
    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], _: Any) -> Any:
        task = _request(messages)
        if name == "pricing":
            inputs = task["inputs"]
            detail = f"Between rivals ({inputs['rivals']['detail']}) with installation included."
            return {"headline": "Launch at 749 EUR installed", "detail": detail, "sources": []}
        headline, detail = FINDINGS[name]
        if name == "competitors" and "share" in task["feedback"]:
            detail = f"{detail} {SHARES}"
        return {"headline": headline, "detail": detail, "sources": [f"{name}-desk"]}

    return ScriptedModel(answer, name=f"scripted-{name}")


def scripted_lead() -> ScriptedModel:
    """Planner, reviewer and synthesizer in one: it tells them apart by the answer's schema."""

    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> Any:
        request = _request(messages)
        if schema is not None and schema.name == "Plan":
            return PLAN
        if schema is not None and schema.name == "Review":
            result = request["result"]
            if request["subtask"]["worker"] == "competitors" and "Shares" not in result["detail"]:
                return _review("retry", "Give market shares for each rival.")
            return _review("accept", "")
        findings = request["results"]
        lines = [f"- {sid}: {f['headline']}" for sid, f in findings.items()]
        gaps = [f"- {sid}: missing ({why})" for sid, why in request["gaps"].items()]
        return "Go, priced at 749 EUR installed.\n" + "\n".join(lines + gaps)

    return ScriptedModel(answer, name="scripted-lead")


def _review(verdict: str, feedback: str) -> dict[str, Any]:
    return {"subtask_id": "", "verdict": verdict, "to_worker": None, "feedback": feedback}


# running it --------------------------------------------------------------------------------


flow = build_flow()


async def run_once(question: str, model: Any = None, store: str | None = None) -> Any:
    """One run on `store` (default: `PODIUM_STORE`, else `./.podium/podium.db`). With the
    scripted models it is the module's `flow`, so `podium resume RUN` finds it again."""
    async with Runtime(store, retry=None if model else NO_RETRY) as rt:
        if model is None:
            return await rt.run(flow, question, target=TARGET)
        return await rt.run(build_flow(model), question)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.market_research [QUESTION] [--model M] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.market_research")
    parser.add_argument("question", nargs="?", default=SAMPLE_QUESTION)
    parser.add_argument("--model", default=None, help="e.g. openai:gpt-4o-mini (default: scripted)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = asyncio.run(run_once(args.question, args.model, args.store))
    store = args.store or default_store_url()
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        how = f"podium resume {result.run_id} --store {store}"
        if args.model is not None:  # built for that model: not the module's flow
            how = "rt.resume(run_id, build_flow(model)) in Python"
        print(f"run {result.run_id} {result.status}; after a fix: {how}", file=sys.stderr)
        return 1
    out = result.output
    print(out.output)
    print(f"\nstatus: {out.status}, turns: {out.turns}, gaps: {len(out.gaps)}, run {result.run_id}")
    print(f"store: {store}   (podium trace {result.run_id} --store {store})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
