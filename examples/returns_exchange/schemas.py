"""The typed values handed from agent to agent; the door validates each one at the hop."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Reason = Literal["too_small", "too_large", "defective", "wrong_item", "changed_mind", "other"]
Condition = Literal["unused", "used", "defective", "unknown"]
CaseStatus = Literal["eligible", "refused", "needs_info", "already_open"]
PaymentKind = Literal["refund", "charge", "even"]


class CustomerMessage(BaseModel):
    """What the customer wrote. A bare string is accepted too (`--input '"text"'`)."""

    message: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"message": value} if isinstance(value, str) else value


class ReturnRequest(BaseModel):
    """The request as understood from the customer's words (the model's structured output).

    Closed and with every field required, so providers can enforce it as a strict schema."""

    model_config = ConfigDict(extra="forbid")

    order_id: int | None = Field(description="The order number the customer names, if any.")
    item: str | None = Field(description="The item the customer talks about, in their words.")
    reason: Reason = Field(description="Why the item goes back.")
    reason_detail: str = Field(description="The customer's reason, quoted briefly.")
    condition: Condition = Field(description="The item's condition as the customer describes it.")
    wants_exchange: bool = Field(description="True for an exchange, false for a refund.")
    new_size: str | None = Field(description="The size wanted instead, for an exchange.")
    new_sku: str | None = Field(description="An exact product code wanted instead, if given.")


class Case(BaseModel):
    """A return case with the facts looked up from the shop's systems."""

    case_id: str
    order_id: int
    customer_id: str
    customer_name: str
    customer_email: str
    sku: str
    product_name: str
    category: str
    price_paid_cents: int
    purchased_on: str
    replacement_sku: str | None
    request: ReturnRequest


class Verdict(BaseModel):
    """The policy check's answer; `case` is set whenever the order was found."""

    status: CaseStatus
    reasons: list[str] = Field(default_factory=list)
    case: Case | None = None


class StockCheck(BaseModel):
    sku: str | None
    on_hand: int
    available: bool


class PriceQuote(BaseModel):
    """`difference_cents` > 0: the customer pays more; < 0: the shop refunds."""

    paid_cents: int
    new_price_cents: int
    difference_cents: int


class Assessment(BaseModel):
    """The two checks run side by side, merged."""

    stock: StockCheck
    price: PriceQuote


class Payment(BaseModel):
    case_id: str
    kind: PaymentKind
    amount_cents: int


class Label(BaseModel):
    case_id: str
    carrier: str
    tracking_number: str


class Notification(BaseModel):
    notification_id: str
    address: str
    subject: str


class Settlement(BaseModel):
    """Handed down the fulfilment pipeline; each step fills in its part."""

    case: Case
    assessment: Assessment
    payment: Payment | None = None
    label: Label | None = None
    order_status: str | None = None
    notification: Notification | None = None
    reason_logged: bool = False


class Outcome(BaseModel):
    """What every route answers: a status, the reply to the customer, and the record."""

    route: str
    status: str
    reply: str
    case_id: str | None = None
    ticket_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(
        default=None, description="The model that read the request; None when none was asked."
    )
