"""The typed values handed from step to step; the door validates each one at the hop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Peril = Literal["water_damage", "fire", "theft", "storm", "accidental_damage"]


class ClaimInput(BaseModel):
    """What the claimant filed."""

    claim_id: str = Field(min_length=1)
    policy_number: str
    peril: Peril
    incident_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    amount_claimed_cents: int = Field(gt=0)
    description: str = ""


class Coverage(BaseModel):
    covered: bool
    reasons: list[str] = Field(default_factory=list)
    holder: str = ""
    email: str = ""
    deductible_cents: int = 0
    limit_cents: int = 0
    policy_starts_on: str = ""
    prior_claims: int = 0


class Assessed(BaseModel):
    """The claim with its coverage: what the fraud checks look at."""

    claim: ClaimInput
    coverage: Coverage


class FraudSignal(BaseModel):
    """One fraud check's view: a score from 0 (clean) to 1, and why."""

    score: float = Field(ge=0.0, le=1.0)
    flags: list[str] = Field(default_factory=list)


class FraudAssessment(BaseModel):
    score: float
    flags: list[str]
    by_check: dict[str, float]


class PayoutInput(BaseModel):
    assessed: Assessed
    fraud: FraudAssessment


class PaymentProposal(BaseModel):
    """What the approver sees, and may edit (`amount_cents`, `note`)."""

    claim_id: str
    payee: str
    email: str
    amount_cents: int = Field(ge=0)
    claimed_cents: int
    deductible_cents: int
    fraud_score: float
    fraud_flags: list[str]
    note: str = ""


class Payment(BaseModel):
    claim_id: str
    payee: str
    amount_cents: int
    reference: str


class Notice(BaseModel):
    claim_id: str
    address: str
    subject: str
    body: str


class ClaimOutcome(BaseModel):
    claim_id: str
    status: Literal["paid", "denied"]
    amount_cents: int = 0
    reference: str | None = None
    reasons: list[str] = Field(default_factory=list)
    fraud_score: float | None = None
    notified: str | None = None
    model: str
