"""The claim's steps. Reads and writes of the insurer's systems are `@tool`s used through the
door, so each is a journaled step that a resumed run replays instead of repeating."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from examples.insurance_claim import tables
from examples.insurance_claim.schemas import (
    Assessed,
    ClaimInput,
    Coverage,
    FraudAssessment,
    FraudSignal,
    Notice,
    Payment,
    PaymentProposal,
    PayoutInput,
)
from podium import LLMAgent, Parallel, RunContext, ScriptedModel, agent, tool
from podium.core.tools import ToolSpec
from podium.models.base import Message, OutputSchema

# tools: the insurer's systems ----------------------------------------------------------------


@tool(effect=True)
def register_claim(claim: dict[str, Any]) -> str:
    """File the claim once; a second call finds the first row. Returns its status.

    Args:
        claim: The claim as filed.
    """
    with tables.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?, ?, 'received', ?)",
            (
                claim["claim_id"],
                claim["policy_number"],
                claim["peril"],
                claim["incident_date"],
                claim["amount_claimed_cents"],
                claim["description"],
                tables.now_iso(),
            ),
        )
        row = conn.execute("SELECT status FROM claims WHERE claim_id = ?", (claim["claim_id"],))
        return str(row.fetchone()["status"])


@tool
def find_policy(policy_number: str, claim_id: str) -> dict[str, Any] | None:
    """The policy and how many other claims were made on it.

    Args:
        policy_number: The policy.
        claim_id: The claim being assessed (not counted).
    """
    policy = tables.fetch_one("SELECT * FROM policies WHERE policy_number = ?", (policy_number,))
    if policy is not None:
        prior = tables.fetch_one(
            "SELECT count(*) AS n FROM claims WHERE policy_number = ? AND claim_id != ?",
            (policy_number, claim_id),
        )
        policy["prior_claims"] = 0 if prior is None else prior["n"]
    return policy


@tool(effect=True)
def issue_payment(claim_id: str, payee: str, amount_cents: int) -> Payment:
    """Pay the claim, once per claim: a second call returns the first payment.

    Args:
        claim_id: The claim; one payment each.
        payee: Who is paid.
        amount_cents: How much.
    """
    reference = "PAY-" + hashlib.sha256(claim_id.encode()).hexdigest()[:8].upper()
    with tables.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO payments VALUES (?, ?, ?, ?, ?)",
            (claim_id, payee, amount_cents, reference, tables.now_iso()),
        )
        conn.execute("UPDATE claims SET status = 'paid' WHERE claim_id = ?", (claim_id,))
        row = conn.execute("SELECT * FROM payments WHERE claim_id = ?", (claim_id,)).fetchone()
    return Payment(
        claim_id=claim_id,
        payee=row["payee"],
        amount_cents=row["amount_cents"],
        reference=row["reference"],
    )


@tool(effect=True)
def send_notice(notice_id: str, claim_id: str, address: str, subject: str, body: str) -> str:
    """Email the claimant (a row in `notices`), once per notice id.

    Args:
        notice_id: Unique per message.
        claim_id: The claim.
        address: Where to.
        subject: Subject line.
        body: The text.
    """
    with tables.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO notices VALUES (?, ?, ?, ?, ?, ?)",
            (notice_id, claim_id, address, subject, body, tables.now_iso()),
        )
    return address


# intake and coverage -------------------------------------------------------------------------


@agent(description="Registers the claim in the claims system.")
async def intake(claim: ClaimInput, ctx: RunContext) -> ClaimInput:
    await ctx.use(register_claim, {"claim": claim.model_dump()})
    return claim


@agent(description="Is the peril covered, and was the policy in force on the incident date?")
async def check_coverage(claim: ClaimInput, ctx: RunContext) -> Coverage:
    policy = await ctx.use(
        find_policy, {"policy_number": claim.policy_number, "claim_id": claim.claim_id}
    )
    if policy is None:
        return Coverage(covered=False, reasons=[f"there is no policy {claim.policy_number}"])
    reasons = []
    if not policy["starts_on"] <= claim.incident_date <= policy["ends_on"]:
        reasons.append(
            f"the policy was not in force on {claim.incident_date} "
            f"({policy['starts_on']} to {policy['ends_on']})"
        )
    if claim.peril not in policy["perils"].split(","):
        reasons.append(f"{claim.peril.replace('_', ' ')} is not a covered peril")
    return Coverage(
        covered=not reasons,
        reasons=reasons,
        holder=policy["holder"],
        email=policy["email"],
        deductible_cents=policy["deductible_cents"],
        limit_cents=policy["limit_cents"],
        policy_starts_on=policy["starts_on"],
        prior_claims=policy["prior_claims"],
    )


# fraud: rules and a model, side by side ------------------------------------------------------


@agent(description="Underwriting rules: new policy, claim near the limit, frequent claims.")
def fraud_rules(a: Assessed) -> FraudSignal:
    claim, cov = a.claim, a.coverage
    flags, score = [], 0.0
    days_in = date.fromisoformat(claim.incident_date) - date.fromisoformat(cov.policy_starts_on)
    if days_in.days < 60:
        flags.append(f"incident {days_in.days} days after the policy started")
        score += 0.35
    if claim.amount_claimed_cents >= 0.9 * cov.limit_cents:
        flags.append("claim is at least 90% of the policy limit")
        score += 0.3
    if cov.prior_claims >= 2:
        flags.append(f"{cov.prior_claims} earlier claims on this policy")
        score += 0.25
    return FraudSignal(score=min(score, 1.0), flags=flags)


_RED_FLAGS = {
    r"\bcash\b": "paid in cash",
    r"\bno (receipt|receipts|invoice)\b|\blost (the )?receipts?\b": "no proof of value",
    r"\burgent(ly)?\b|\basap\b": "pressure to pay quickly",
    r"\bfriend'?s?\b": "a friend did the repair or valuation",
}
_PROOF = re.compile(r"\b(invoice|receipt|photos?|police report)\b", re.IGNORECASE)


def read_description(
    messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
) -> dict[str, Any]:
    """The scripted fraud model: reads the claimant's words for red flags."""
    text = next((m.content for m in reversed(messages) if m.role == "user"), "")
    flags = [why for pat, why in _RED_FLAGS.items() if re.search(pat, text, re.IGNORECASE)]
    score = 0.2 * len(flags) + (0.0 if _PROOF.search(text) and not flags else 0.1)
    return FraudSignal(score=round(min(score, 1.0), 2), flags=flags).model_dump()


MODEL_LABEL = "scripted (offline: ScriptedModel reading the description for red flags)"

fraud_model = LLMAgent(
    "fraud_model",
    model=ScriptedModel(read_description, name="scripted-fraud-reader"),
    instructions="You screen insurance claims for fraud. Score 0 to 1 and list red flags.",
    output_type=FraudSignal,
    description="A model reads the claim's description for red flags.",
)


def combine_fraud(results: dict[str, Any]) -> FraudAssessment:
    signals = {name: FraudSignal.model_validate(r) for name, r in results.items()}
    score = 0.6 * signals["fraud_rules"].score + 0.4 * signals["fraud_model"].score
    flags = [f for s in signals.values() for f in s.flags]
    return FraudAssessment(
        score=round(score, 2), flags=flags, by_check={k: s.score for k, s in signals.items()}
    )


fraud_score = Parallel(
    "fraud_score",
    [fraud_rules, fraud_model],
    merge=combine_fraud,
    description="Rules and a model score the claim at the same time.",
)


# payout, payment, notice ---------------------------------------------------------------------


@agent(description="What to pay: the claim up to the limit, less the deductible.")
def compute_payout(p: PayoutInput) -> PaymentProposal:
    claim, cov = p.assessed.claim, p.assessed.coverage
    amount = max(0, min(claim.amount_claimed_cents, cov.limit_cents) - cov.deductible_cents)
    note = "refer to the special investigations unit" if p.fraud.score >= 0.5 else ""
    return PaymentProposal(
        claim_id=claim.claim_id,
        payee=cov.holder,
        email=cov.email,
        amount_cents=amount,
        claimed_cents=claim.amount_claimed_cents,
        deductible_cents=cov.deductible_cents,
        fraud_score=p.fraud.score,
        fraud_flags=p.fraud.flags,
        note=note,
    )


@agent(description="Pays the approved amount.")
async def pay(p: PaymentProposal, ctx: RunContext) -> Payment:
    args = {"claim_id": p.claim_id, "payee": p.payee, "amount_cents": p.amount_cents}
    result: Payment = await ctx.use(issue_payment, args)
    return result


@agent(description="Tells the claimant the outcome.")
async def notify(n: Notice, ctx: RunContext) -> str:
    notice_id = f"{n.claim_id}:{n.subject}"
    result: str = await ctx.use(send_notice, {"notice_id": notice_id, **n.model_dump()})
    return result


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"
