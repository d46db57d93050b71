"""Flows the server tests start over HTTP: `echo`, `claim` (a person approves a payment),
`ship` (its second step fails while the file named by SERVER_BROKEN exists) and `review`
(two checks in parallel, for the UI's timeline), `asked` (a person answers a question),
`moody` (its orchestration goes to the museum while the file named by SERVER_RAINY exists,
else to a picnic: a decision made on the outside world, which a replay catches)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

from podium import (
    HumanAgent,
    HumanApproval,
    LLMAgent,
    Parallel,
    RunContext,
    ScriptedModel,
    Sequential,
    Usage,
    agent,
)


@agent
def echo(text: str) -> str:
    return f"echo: {text}"


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
)


@agent
def prepare(x: int) -> int:
    return x + 1


@agent
def deliver(x: int) -> str:
    if Path(os.environ.get("SERVER_BROKEN", "/nonexistent")).exists():
        raise RuntimeError("the carrier rejected the parcel")
    return f"delivered {x}"


ship = Sequential("ship", [prepare, deliver])


@agent
def half(x: float) -> float:
    return x / 2


@agent
async def legal(text: str) -> str:
    await asyncio.sleep(0.3)
    return f"legal ok: {text}"


@agent
async def finance(text: str) -> str:
    await asyncio.sleep(0.2)
    return f"finance ok: {text}"


# a scripted model named after a real one is priced like it: the UI shows tokens and cost
writer = LLMAgent(
    "writer",
    model=ScriptedModel(lambda m, t, s: "a draft", name="gpt-4o-mini", usage=Usage(1000, 100, 1)),
    instructions="Write a draft.",
)
review = Sequential("review", [writer, Parallel("checks", [legal, finance])])


asked = Sequential("asked", [echo, HumanAgent("which_size", question="Which size?")])


@agent
def plan(x: str) -> str:
    return f"plan({x})"


@agent
def picnic(x: str) -> str:
    return f"picnic({x})"


@agent
def museum(x: str) -> str:
    return f"museum({x})"


@agent
async def moody(x: str, ctx: RunContext) -> str:
    """Branches on a file, not on a step's result: not deterministic."""
    first = await ctx.call(plan, x)
    rainy = Path(os.environ.get("SERVER_RAINY", "/nonexistent")).exists()
    return str(await ctx.call(museum if rainy else picnic, first))
