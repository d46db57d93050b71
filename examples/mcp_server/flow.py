"""The workflows served as MCP tools: `quote` says what a refund would be, `refund` quotes
it, waits for a person to approve it, and pays it.

    podium mcp serve examples.mcp_server.flow:quote examples.mcp_server.flow:refund
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from podium import HumanApproval, Sequential, agent

# Orders of the demo shop: id -> (customer, amount paid, days since delivery).
ORDERS = {
    "A-1001": ("ada", 40.0, 3),
    "A-1002": ("bob", 250.0, 12),
    "A-1003": ("cy", 80.0, 45),
}
WINDOW_DAYS = 30


class RefundRequest(BaseModel):
    order_id: str = Field(description="The order to refund, e.g. A-1001.")
    amount: float = Field(gt=0, description="How much the customer asks back.")


class Order(BaseModel):
    order_id: str
    customer: str
    paid: float
    days: int
    asked: float


class Quote(BaseModel):
    order_id: str
    customer: str
    refund: float
    reason: str


@agent
def lookup(request: RefundRequest) -> Order:
    """The order, from the shop's books."""
    if request.order_id not in ORDERS:
        raise ValueError(f"no order {request.order_id!r}")
    customer, paid, days = ORDERS[request.order_id]
    return Order(
        order_id=request.order_id, customer=customer, paid=paid, days=days, asked=request.amount
    )


@agent
def policy(order: Order) -> Quote:
    """The refund policy: within 30 days of delivery, up to what was paid."""
    if order.days > WINDOW_DAYS:
        why = f"delivered {order.days} days ago, past the {WINDOW_DAYS}-day window"
        return Quote(order_id=order.order_id, customer=order.customer, refund=0.0, reason=why)
    refund = min(order.asked, order.paid)
    why = "within the window" + ("" if refund == order.asked else f", capped at {order.paid}")
    return Quote(order_id=order.order_id, customer=order.customer, refund=refund, reason=why)


@agent
def pay(quote: Quote) -> str:
    """Pays the approved refund (here: says it did)."""
    return f"refunded {quote.refund:.2f} to {quote.customer} for {quote.order_id}"


quote = Sequential(
    "quote",
    [lookup, policy],
    description="Quotes a refund for an order under the shop's refund policy.",
)

refund = Sequential(
    "refund",
    [
        lookup,
        policy,
        HumanApproval("approve_refund", prompt="Pay this refund?", input_type=Quote),
        pay,
    ],
    description="Quotes a refund and pays it once a person approves it.",
)
