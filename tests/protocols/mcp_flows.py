"""Agents served over MCP by tests/protocols/test_mcp_server.py: a workflow of typed steps
(`review`), a plain text agent (`shout`; with `squash`, the steps of mcp_tidy.yaml), a claim
a person approves (`claim`) and a step that fails (`broken`)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from podium import HumanApproval, Sequential, agent


class Draft(BaseModel):
    title: str = Field(description="What the text is about.")
    words: int = Field(ge=1, description="How many words to write.")


class Review(BaseModel):
    title: str
    words: int
    verdict: str


@agent
def outline(draft: Draft) -> Draft:
    return draft


@agent
def write(draft: Draft) -> Draft:
    return draft


@agent
def judge(draft: Draft) -> Review:
    verdict = "short" if draft.words < 100 else "long"
    return Review(title=draft.title, words=draft.words, verdict=verdict)


review = Sequential(
    "review", [outline, write, judge], description="Reviews a draft: outline, write, judge."
)


@agent
def squash(text: str) -> str:
    return " ".join(text.split())


@agent
def shout(text: str) -> str:
    """Shouts the text back."""
    print(f"shouting {text!r}")  # a stray print must not reach the stdio transport's wire
    return text.upper() + "!"


class Claim(BaseModel):
    claim_id: str
    amount: int


@agent
def assess(claim: Claim) -> Claim:
    return claim


@agent
def pay(claim: Claim) -> str:
    return f"paid {claim.amount} on {claim.claim_id}"


claim = Sequential(
    "claim",
    [assess, HumanApproval("approve_payment", prompt="Pay this claim?", input_type=Claim), pay],
    description="Pays a claim once a person approves it.",
)


@agent
def broken(text: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot handle {text!r}")


@agent
async def slow(seconds: float) -> str:
    """Takes its time."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"
