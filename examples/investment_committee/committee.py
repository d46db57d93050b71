"""The investment committee: analysts vote with weights, then a memo is debated with a critic.

    investment_committee            an agent that calls two patterns through the door
    ├── vote                        GroupChat: growth (weight 2), value (1), risk (2);
    │                               weighted consensus over buy / hold / pass;
    │                               a deadlock escalates to the committee chair (a person)
    └── memo                        GroupChat.debate: memo_writer proposes, chief_risk_officer
                                    critiques, up to 3 rounds, until the critic approves

Every analyst, writer and critic is an `LLMAgent`. With no provider configured each gets a
`ScriptedModel` that answers from the turn it receives (the ticker, the round, the last
draft), so the example runs the same way every time; set `PODIUM_MODEL` to use a real model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from podium import (
    ChatReply,
    ChatResult,
    ChatTurn,
    GroupChat,
    LLMAgent,
    Message,
    Model,
    RunContext,
    Runtime,
    ScriptedModel,
    agent,
)
from podium.agents.function import FunctionAgent
from podium.core.tools import ToolSpec
from podium.models.base import OutputSchema
from podium.stores import default_store_url

TARGET = "examples.investment_committee.committee:flow"

OPTIONS = ["buy", "hold", "pass"]
WEIGHTS = {"growth": 2.0, "value": 1.0, "risk": 2.0}

# How each scripted analyst votes, round by round (the last vote repeats): ACME convinces the
# value analyst in round 2; GLOBX is an easy pass; SPLIT never moves and deadlocks.
VIEWS: dict[str, dict[str, list[str]]] = {
    "ACME": {"growth": ["buy"], "value": ["hold", "buy"], "risk": ["pass"]},
    "GLOBX": {"growth": ["hold"], "value": ["pass"], "risk": ["pass"]},
    "SPLIT": {"growth": ["buy"], "value": ["hold"], "risk": ["pass"]},
}
REASONS = {
    "buy": "revenue grows 30% a year and the moat is widening",
    "hold": "fairly priced; I want another quarter of margins",
    "pass": "leverage is too high for our mandate",
}


class Proposal(BaseModel):
    ticker: str
    thesis: str
    amount_musd: float


class MemoBrief(BaseModel):
    proposal: Proposal
    decision: str
    votes: dict[str, str]


class CommitteeDecision(BaseModel):
    ticker: str
    decision: str | None
    vote_status: str
    votes: dict[str, str]
    tally: dict[str, float]
    memo: str | None = None
    memo_status: str | None = None
    memo_turns: int = 0


def _turn(messages: Sequence[Message]) -> ChatTurn:
    return ChatTurn.model_validate_json(messages[-1].content)


def scripted_analyst(name: str) -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], _: OutputSchema | None
    ) -> dict[str, Any]:
        turn = _turn(messages)
        ticker = Proposal.model_validate(turn.topic).ticker
        votes = VIEWS.get(ticker, {}).get(name, ["hold"])
        vote = votes[min(turn.round, len(votes)) - 1]
        return {"content": f"{name}: {vote} {ticker}: {REASONS[vote]}", "vote": vote}

    return ScriptedModel(answer, name=f"scripted-{name}")


def scripted_writer() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], _: OutputSchema | None
    ) -> str:
        turn = _turn(messages)
        brief = MemoBrief.model_validate(turn.topic)
        p = brief.proposal
        memo = f"Invest {p.amount_musd:g}M USD in {p.ticker}: {p.thesis}."
        if turn.round > 1:
            memo += " Position capped at 2% of the fund; stop-loss at -15%."
        return memo

    return ScriptedModel(answer, name="scripted-writer")


def scripted_critic() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], _: OutputSchema | None
    ) -> dict[str, Any]:
        draft = _turn(messages).transcript[-1].content
        if "stop-loss" in draft:
            return {"content": "Risk limits are explicit. Approved.", "vote": "approve"}
        return {"content": "Cap the position and set a stop-loss.", "vote": "revise"}

    return ScriptedModel(answer, name="scripted-critic")


def _model(given: Model | str | None, scripted: ScriptedModel) -> Model | str:
    if given is not None:
        return given
    return os.environ.get("PODIUM_MODEL") or scripted


def build_vote(model: Model | str | None = None) -> GroupChat:
    analysts = [
        LLMAgent(
            name,
            model=_model(model, scripted_analyst(name)),
            instructions=f"You are the {name} analyst on an investment committee. Argue briefly "
            f"and vote one of {OPTIONS}.",
            output_type=ChatReply,
        )
        for name in WEIGHTS
    ]
    return GroupChat(
        "vote",
        analysts,
        consensus="weighted",
        weights=WEIGHTS,
        options=OPTIONS,
        max_turns=9,
    )


def build_memo(model: Model | str | None = None) -> GroupChat:
    writer = LLMAgent(
        "memo_writer",
        model=_model(model, scripted_writer()),
        instructions="Write or revise a one-paragraph investment memo for the brief.",
    )
    critic = LLMAgent(
        "chief_risk_officer",
        model=_model(model, scripted_critic()),
        instructions="Critique the memo's risk controls; vote approve or revise.",
        output_type=ChatReply,
    )
    return GroupChat.debate("memo", proposers=[writer], critic=critic, rounds=3)


def build_flow(model: Model | str | None = None) -> FunctionAgent:
    """The committee: vote first; only a `buy` goes on to the memo debate."""
    vote, memo = build_vote(model), build_memo(model)

    async def investment_committee(proposal: Proposal, ctx: RunContext) -> CommitteeDecision:
        result: ChatResult = await ctx.call(vote, proposal)
        decision = CommitteeDecision(
            ticker=proposal.ticker,
            decision=result.decision,
            vote_status=result.status,
            votes=result.votes,
            tally=result.tally,
        )
        if result.decision != "buy":
            return decision
        brief = MemoBrief(proposal=proposal, decision=result.decision, votes=result.votes)
        debated: ChatResult = await ctx.call(memo, brief)
        return decision.model_copy(
            update={
                "memo": debated.output,
                "memo_status": debated.status,
                "memo_turns": debated.turns,
            }
        )

    return agent(investment_committee)


SAMPLE = Proposal(ticker="ACME", thesis="a category leader compounding at 30%", amount_musd=25)


flow = build_flow()


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.investment_committee [TICKER] [--store URL]`: prints the run as
    JSON; a deadlocked vote waits for the chair (`podium answer RUN buy`)."""
    parser = argparse.ArgumentParser(prog="python -m examples.investment_committee")
    parser.add_argument("ticker", nargs="?", default=SAMPLE.ticker, help="ACME, GLOBX or SPLIT")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    proposal = SAMPLE.model_copy(update={"ticker": args.ticker})
    result = Runtime(args.store).run_sync(flow, proposal, target=TARGET)
    if result.status == "waiting":
        store = args.store or default_store_url()
        print(f"the vote is deadlocked: the chair decides with `podium inbox --store {store}` "
              f"then `podium answer {result.run_id} buy --store {store}` (or hold, pass)",
              file=sys.stderr)  # fmt: skip
    shown = result.output.model_dump() if result.output is not None else None
    print(
        json.dumps(
            {
                "run_id": result.run_id,
                "status": str(result.status),
                "output": shown,
                "error": result.error,
            },
            indent=2,
        )
    )
    return 0 if result.status in ("completed", "waiting") else 1
