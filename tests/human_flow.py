"""Flows with a person in them, for tests that decide from another process: `flow` (a claim
whose payment a person approves) and `question` (a person answers which size to ship)."""

from __future__ import annotations

import os
import sqlite3

from pydantic import BaseModel

from podium import FunctionAgent, HumanAgent, HumanApproval, Sequential, agent


class Claim(BaseModel):
    claim_id: str
    amount: int


def _effects() -> sqlite3.Connection:
    db = sqlite3.connect(os.environ["CLAIM_EFFECTS_DB"])
    db.execute("CREATE TABLE IF NOT EXISTS effects (step TEXT, claim TEXT, amount INT)")
    return db


@agent
def assess(claim: Claim) -> Claim:
    with _effects() as db:
        db.execute("INSERT INTO effects VALUES ('assess', ?, ?)", (claim.claim_id, claim.amount))
    return claim


@agent
def pay(claim: Claim) -> str:
    with _effects() as db:
        db.execute("INSERT INTO effects VALUES ('pay', ?, ?)", (claim.claim_id, claim.amount))
    return f"paid {claim.amount} on {claim.claim_id}"


flow = Sequential(
    "claim",
    [
        assess,
        HumanApproval("approve_payment", prompt="Pay this claim?", input_type=Claim),
        pay,
    ],
)


@agent
def ship(size: int) -> str:
    return f"size {size} shipped"


question = Sequential(
    "sizing",
    [HumanAgent("size", question="Which size should we send?", answer_type=int), ship],
)


due = Sequential(
    "due",
    [HumanApproval("ok", prompt="Go ahead?", deadline=0.05, on_timeout="approve"), ship],
)


def _count(text: str) -> int:
    return len(text)


counted = FunctionAgent(_count, name="counted")  # the module's `_count` is not this agent
