"""The deterministic agents of the returns desk, and the simple desks for everything else.

Each agent is a plain function; every read or write of the shop's systems is a tool used
through the door (`ctx.use`), so it is journaled and replayed on resume like any step.
"""

from __future__ import annotations

from datetime import date

from examples.returns_exchange import systems, tools
from examples.returns_exchange.schemas import (
    Assessment,
    Case,
    CustomerMessage,
    Outcome,
    PriceQuote,
    ReturnRequest,
    Settlement,
    StockCheck,
    Verdict,
)
from podium import Parallel, RunContext, Sequential, agent

# eligibility and policy ----------------------------------------------------------------------


@agent
async def check_policy(request: ReturnRequest, ctx: RunContext) -> Verdict:
    """Look the order up and apply the returns policy: 30 days, no final sale, unworn unless
    defective, one open case per order."""
    if request.order_id is None:
        return Verdict(status="needs_info", reasons=["the message names no order number"])
    order = await ctx.use(tools.find_order, {"order_id": request.order_id})
    if order is None:
        return Verdict(status="needs_info", reasons=[f"there is no order {request.order_id}"])
    replacement = None
    if request.wants_exchange:
        replacement = await ctx.use(
            tools.find_replacement,
            {"sku": order["sku"], "new_size": request.new_size, "new_sku": request.new_sku},
        )
    case = Case(
        case_id=order["case_id"] or f"RMA-{order['order_id']}",
        replacement_sku=replacement,
        request=request,
        **{k: order[k] for k in _CASE_FIELDS},
    )
    if order["case_id"]:
        reasons = [f"order {case.order_id} already has an open return case, {case.case_id}"]
        return Verdict(status="already_open", reasons=reasons, case=case)
    refusals = policy_problems(case, systems.today())
    if refusals:
        return Verdict(status="refused", reasons=refusals, case=case)
    if request.wants_exchange and replacement is None:
        wanted = request.new_sku or (f"size {request.new_size}" if request.new_size else None)
        reason = (
            f"we do not sell {case.product_name} in {wanted}"
            if wanted
            else "the message does not say what to exchange the item for"
        )
        return Verdict(status="needs_info", reasons=[reason], case=case)
    return Verdict(status="eligible", case=case)


_CASE_FIELDS = (
    "order_id",
    "customer_id",
    "customer_name",
    "customer_email",
    "sku",
    "product_name",
    "category",
    "price_paid_cents",
    "purchased_on",
)


def policy_problems(case: Case, today: date) -> list[str]:
    """Every rule the request breaks, in words a customer understands."""
    problems = []
    age = (today - date.fromisoformat(case.purchased_on)).days
    if age > systems.RETURN_WINDOW_DAYS:
        problems.append(
            f"it was bought {age} days ago ({case.purchased_on}); returns are accepted "
            f"within {systems.RETURN_WINDOW_DAYS} days"
        )
    if case.category in systems.FINAL_SALE_CATEGORIES:
        problems.append(f"{case.category} items are final sale")
    if case.request.condition == "used":
        problems.append("worn or used items can only be returned when defective")
    return problems


# the two checks run side by side ----------------------------------------------------------


@agent
async def check_inventory(case: Case, ctx: RunContext) -> StockCheck:
    """Is the replacement in stock? (A plain return needs no stock.)"""
    if case.replacement_sku is None:
        return StockCheck(sku=None, on_hand=0, available=True)
    on_hand = await ctx.use(tools.stock_level, {"sku": case.replacement_sku})
    return StockCheck(sku=case.replacement_sku, on_hand=on_hand, available=on_hand > 0)


@agent
async def price_difference(case: Case, ctx: RunContext) -> PriceQuote:
    """What the customer owes (> 0) or gets back (< 0): the replacement's price today minus
    what they paid, or the whole price paid for a plain return."""
    paid = case.price_paid_cents
    if case.replacement_sku is None:
        return PriceQuote(paid_cents=paid, new_price_cents=0, difference_cents=-paid)
    price = await ctx.use(tools.current_price, {"sku": case.replacement_sku})
    return PriceQuote(paid_cents=paid, new_price_cents=price, difference_cents=price - paid)


def _merge_checks(results: dict[str, object]) -> Assessment:
    return Assessment.model_validate(
        {"stock": results["check_inventory"], "price": results["price_difference"]}
    )


assess = Parallel(
    "assess",
    [check_inventory, price_difference],
    merge=_merge_checks,
    description="Checks stock and price difference at the same time.",
)


# fulfilment, one system at a time ----------------------------------------------------------


@agent
async def adjust_payment(s: Settlement, ctx: RunContext) -> Settlement:
    """Refund or charge the difference (an even exchange records a zero payment)."""
    diff = s.assessment.price.difference_cents
    kind = "charge" if diff > 0 else "refund" if diff < 0 else "even"
    payment = await ctx.use(
        tools.record_payment,
        {
            "case_id": s.case.case_id,
            "order_id": s.case.order_id,
            "kind": kind,
            "amount_cents": abs(diff),
        },
    )
    return s.model_copy(update={"payment": payment})


@agent
async def create_return_label(s: Settlement, ctx: RunContext) -> Settlement:
    label = await ctx.use(
        tools.create_label, {"case_id": s.case.case_id, "order_id": s.case.order_id}
    )
    return s.model_copy(update={"label": label})


@agent
async def update_order(s: Settlement, ctx: RunContext) -> Settlement:
    """Attach the case to the order and reserve the replacement."""
    exchange = s.case.replacement_sku is not None
    status = await ctx.use(
        tools.mark_order,
        {
            "order_id": s.case.order_id,
            "case_id": s.case.case_id,
            "status": "exchange_pending" if exchange else "return_pending",
            "replacement_sku": s.case.replacement_sku,
        },
    )
    return s.model_copy(update={"order_status": status})


@agent
async def notify_customer(s: Settlement, ctx: RunContext) -> Settlement:
    case = s.case
    note = await ctx.use(
        tools.send_email,
        {
            "notification_id": f"{case.case_id}:approved",
            "customer_id": case.customer_id,
            "address": case.customer_email,
            "subject": f"Your return {case.case_id}",
            "body": approval_reply(s),
        },
    )
    return s.model_copy(update={"notification": note})


@agent
async def log_return_reason(s: Settlement, ctx: RunContext) -> Settlement:
    req = s.case.request
    logged = await ctx.use(
        tools.log_reason,
        {
            "case_id": s.case.case_id,
            "order_id": s.case.order_id,
            "sku": s.case.sku,
            "reason": req.reason,
            "detail": req.reason_detail,
            "wants_exchange": req.wants_exchange,
        },
    )
    return s.model_copy(update={"reason_logged": logged})


fulfil = Sequential(
    "fulfil",
    [adjust_payment, create_return_label, update_order, notify_customer, log_return_reason],
    description="Payment, label, order, notification and reason log, in that order.",
)


# replies ------------------------------------------------------------------------------------


def money(cents: int) -> str:
    return f"${abs(cents) / 100:,.2f}"


def approval_reply(s: Settlement) -> str:
    case, price = s.case, s.assessment.price
    first = case.customer_name.split()[0]
    if case.replacement_sku:
        what = f"your exchange of {case.product_name} ({case.sku}) for {case.replacement_sku}"
    else:
        what = f"your return of {case.product_name} ({case.sku})"
    diff = price.difference_cents
    if diff > 0:
        pay = f"We charged the difference of {money(diff)} to your card."
    elif diff < 0:
        pay = f"We refunded {money(diff)} to your card."
    else:
        pay = "The prices match, so there is nothing to pay."
    label = s.label
    ship = (
        f" Print the {label.carrier} label {label.tracking_number} to send it back."
        if label
        else ""
    )
    return f"Hi {first}, {what} is approved as {case.case_id}. {pay}{ship}"


def refusal_reply(verdict: Verdict) -> str:
    reasons = "; ".join(verdict.reasons)
    if verdict.status == "refused":
        return f"Sorry, we cannot accept this return: {reasons}."
    if verdict.status == "already_open" and verdict.case is not None:
        return (
            f"Your return is already under way: {reasons}. The label and the details are in "
            f"the email we sent to {verdict.case.customer_email}."
        )
    return f"We need a little more to go on: {reasons}. Could you reply with the details?"


# the other desks ----------------------------------------------------------------------------


async def _ticket(queue: str, msg: CustomerMessage, ctx: RunContext, reply: str) -> Outcome:
    ticket = await ctx.use(tools.open_ticket, {"queue": queue, "message": msg.message})
    return Outcome(
        route=queue,
        status="ticket_opened" if ticket["new"] else "ticket_exists",
        reply=reply.format(ticket=ticket["ticket_id"]),
        ticket_id=ticket["ticket_id"],
    )


@agent(description="Billing questions: charges, invoices, receipts, card payments.")
async def billing_desk(msg: CustomerMessage, ctx: RunContext) -> Outcome:
    reply = "Thanks, our billing team has your question as {ticket} and replies within a day."
    return await _ticket("billing", msg, ctx, reply)


@agent(description="Technical problems: the website, the app, logging in, checkout errors.")
async def technical_desk(msg: CustomerMessage, ctx: RunContext) -> Outcome:
    reply = "Thanks, our technical team is looking into it as {ticket}."
    return await _ticket("technical", msg, ctx, reply)


@agent(description="Anything the router is not sure about: a person reads it.")
async def triage_desk(msg: CustomerMessage, ctx: RunContext) -> Outcome:
    reply = "Thanks for writing. A member of our team will read your message ({ticket})."
    return await _ticket("triage", msg, ctx, reply)
