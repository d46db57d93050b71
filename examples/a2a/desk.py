"""The supplier's side: a quoting desk, served over A2A by its own podium process.

    podium a2a serve examples/a2a/desk.py:quote_desk --port 9100 --store sqlite:///supplier.db

A quote of 100 units or more waits for the supplier's sales lead to grant a bulk discount:
the A2A task is `input-required` until the buyer's side replies (see README.md).
"""

from __future__ import annotations

from pydantic import BaseModel

from podium import HumanApproval, RunContext, agent

PRICES = {"widget": 2.5, "gadget": 12.0, "gizmo": 40.0}
BULK = 100  # units from which the bulk discount is asked for
DISCOUNT = 0.10


class Order(BaseModel):
    item: str
    qty: int


class Quote(BaseModel):
    item: str
    qty: int
    unit_price: float
    discount: float
    total: float


bulk_discount = HumanApproval("bulk_discount", prompt=f"Grant a {DISCOUNT:.0%} bulk discount?")


@agent
async def price(order: Order) -> Quote:
    """The list price of an order."""
    unit = PRICES.get(order.item)
    if unit is None:
        raise ValueError(f"we do not sell {order.item!r}; we sell {', '.join(PRICES)}")
    total = round(unit * order.qty, 2)
    return Quote(item=order.item, qty=order.qty, unit_price=unit, discount=0.0, total=total)


@agent
async def quote_desk(order: Order, ctx: RunContext) -> Quote:
    """Quotes an order of widgets, gadgets or gizmos; a bulk order asks for a discount."""
    quote: Quote = await ctx.call(price, order)
    if order.qty < BULK:
        return quote
    await ctx.call(bulk_discount, quote)  # rejected: the quote fails, with the reason
    total = round(quote.total * (1 - DISCOUNT), 2)
    return quote.model_copy(update={"discount": DISCOUNT, "total": total})
