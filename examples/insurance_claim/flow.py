"""An insurance claim from filing to payment, with a person approving the payment.

    insurance_claim (ClaimDesk)
    ├── intake             registers the claim                      (claims table)
    ├── check_coverage     policy in force? peril covered?          -> denied notice, or on
    ├── fraud_score        Parallel: fraud_rules | fraud_model (scripted LLM)
    ├── compute_payout     claim up to the limit, less the deductible
    ├── approve_payment    HumanApproval: deadline, then escalate to claims_manager
    ├── pay                issue_payment, once per claim            (payments table)
    └── notify             send_notice                              (notices table)

The run waits at `approve_payment` (status `waiting`) until someone answers from any process:
`podium approve RUN`, `podium approve RUN --edit '{...}'` or `podium reject RUN --comment ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from examples.insurance_claim import tables
from examples.insurance_claim.agents import (
    MODEL_LABEL,
    check_coverage,
    compute_payout,
    fraud_score,
    intake,
    money,
    notify,
    pay,
)
from examples.insurance_claim.schemas import (
    Assessed,
    ClaimInput,
    ClaimOutcome,
    Coverage,
    FraudAssessment,
    Notice,
    Payment,
    PaymentProposal,
    PayoutInput,
)
from podium import HumanApproval, RunContext, RunResult, Runtime
from podium.agents.base import AgentBase
from podium.stores import default_store_url

TARGET = "examples.insurance_claim.flow:flow"
APPROVAL_DEADLINE = 24 * 3600.0  # an adjuster has a day, then the claims manager has a day
SAMPLE_CLAIM = {
    "claim_id": "C-2025-001",
    "policy_number": "HOME-1001",
    "peril": "water_damage",
    "incident_date": "2025-03-14",
    "amount_claimed_cents": 420_000,
    "description": "A burst pipe under the kitchen sink flooded the floor. "
    "Plumber's invoice and photos attached.",
}


class ClaimDesk(AgentBase[ClaimInput, ClaimOutcome]):
    """The claim's path. Its branches are plain Python over step results, so a resumed run
    (after the approval arrives) takes the same path and replays every step before it."""

    def __init__(self, deadline: float = APPROVAL_DEADLINE) -> None:
        self.approval = HumanApproval(
            "approve_payment",
            prompt="Pay this claim?",
            input_type=PaymentProposal,
            assignee="adjuster",
            deadline=deadline,
            on_timeout="escalate",
            escalate_to="claims_manager",
        )
        self._setup(
            "insurance_claim",
            input_type=ClaimInput,
            output_type=ClaimOutcome,
            description="Files, assesses and (once a person approves) pays an insurance claim.",
        )

    async def run(self, claim: ClaimInput, ctx: RunContext) -> ClaimOutcome:
        claim = await ctx.call(intake, claim)
        coverage: Coverage = await ctx.call(check_coverage, claim)
        ctx.emit("claim.coverage", covered=coverage.covered, reasons=coverage.reasons)
        if not coverage.covered:
            return await self._deny(claim, coverage, ctx)
        assessed = Assessed(claim=claim, coverage=coverage)
        scored = await ctx.call(fraud_score, assessed)
        fraud = FraudAssessment.model_validate(scored.value)
        ctx.emit("claim.fraud", score=fraud.score, flags=fraud.flags)
        proposal = await ctx.call(compute_payout, PayoutInput(assessed=assessed, fraud=fraud))
        approved: PaymentProposal = await ctx.call(self.approval, proposal)
        payment: Payment = await ctx.call(pay, approved)
        edited = "" if approved.amount_cents == proposal.amount_cents else " (as adjusted)"
        body = (
            f"Dear {approved.payee}, we have paid {money(payment.amount_cents)}{edited} on "
            f"claim {claim.claim_id}, reference {payment.reference}."
        )
        notice = Notice(
            claim_id=claim.claim_id, address=approved.email, subject="Claim paid", body=body
        )
        sent = await ctx.call(notify, notice)
        return ClaimOutcome(
            claim_id=claim.claim_id,
            status="paid",
            amount_cents=payment.amount_cents,
            reference=payment.reference,
            fraud_score=fraud.score,
            notified=sent,
            model=MODEL_LABEL,
        )

    async def _deny(self, claim: ClaimInput, cov: Coverage, ctx: RunContext) -> ClaimOutcome:
        sent = None
        if cov.email:
            body = f"Dear {cov.holder}, we cannot pay claim {claim.claim_id}: " + "; ".join(
                cov.reasons
            )
            notice = Notice(
                claim_id=claim.claim_id, address=cov.email, subject="Claim denied", body=body
            )
            sent = await ctx.call(notify, notice)
        return ClaimOutcome(
            claim_id=claim.claim_id,
            status="denied",
            reasons=cov.reasons,
            notified=sent,
            model=MODEL_LABEL,
        )


def build_flow(deadline: float = APPROVAL_DEADLINE) -> ClaimDesk:
    return ClaimDesk(deadline)


flow = build_flow()


async def file_claim(claim: dict[str, object], store: str | None = None) -> RunResult:
    async with Runtime(store) as rt:
        return await rt.run(flow, claim, target=TARGET)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.insurance_claim [--claim JSON] [--reset]`: file one claim."""
    parser = argparse.ArgumentParser(prog="python -m examples.insurance_claim")
    parser.add_argument("--claim", help="the claim as JSON (default: a sample water claim)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    parser.add_argument("--reset", action="store_true", help="re-seed the claims database")
    args = parser.parse_args(argv)
    if args.reset:
        tables.reset()
    claim = json.loads(args.claim) if args.claim else SAMPLE_CLAIM
    result = asyncio.run(file_claim(claim, args.store))
    store = args.store or default_store_url()
    if result.ok:
        print(json.dumps(result.to_dict()["output"], indent=2))
    elif result.status == "waiting":
        print(f"waiting: {result.error}")
        print(f"  see it:   podium inbox --store {store}")
        print(f"  pay it:   podium approve {result.run_id} --comment ok --store {store}")
        print(f"  or not:   podium reject {result.run_id} --comment 'why' --store {store}")
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"model: {MODEL_LABEL}")
    print(f"run {result.run_id} {result.status}")
    print(f"store: {store}   claims db: {tables.db_path()}")
    return 0 if result.status in ("completed", "waiting") else 1


if __name__ == "__main__":
    raise SystemExit(main())
