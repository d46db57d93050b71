"""The shop's systems as tools, so every read and write is a journaled step of the run.

Writes are keyed by the return case (`RMA-<order>`) or by the ticket's message, and use
`INSERT OR IGNORE` / guarded `UPDATE`s: a second call with the same key changes nothing and
answers with the row the first call wrote. That is what makes them safe to declare
`idempotent` (a resumed run may call one again) and the example safe to run twice.
"""

from __future__ import annotations

import hashlib
from typing import Any

from examples.returns_exchange import systems
from examples.returns_exchange.schemas import Label, Notification, Payment
from podium.tools import tool

# reads ---------------------------------------------------------------------------------------


@tool
def find_order(order_id: int) -> dict[str, Any] | None:
    """The order with its customer and product, or None if there is no such order.

    Args:
        order_id: The order number.
    """
    return systems.fetch_one(
        """SELECT o.order_id, o.customer_id, c.name AS customer_name, c.email AS customer_email,
                  o.sku, p.family, p.name AS product_name, p.size, p.category,
                  o.price_paid_cents, o.purchased_on, o.status, o.case_id
           FROM orders o JOIN customers c USING (customer_id) JOIN products p USING (sku)
           WHERE o.order_id = ?""",
        (order_id,),
    )


@tool
def find_replacement(
    sku: str, new_size: str | None = None, new_sku: str | None = None
) -> str | None:
    """The SKU to send instead: `new_sku` if the shop sells it, else the same product in
    `new_size`; None when neither exists.

    Args:
        sku: The SKU being returned.
        new_size: The size wanted instead.
        new_sku: An exact SKU wanted instead.
    """
    if new_sku:
        row = systems.fetch_one("SELECT sku FROM products WHERE sku = ?", (new_sku.upper(),))
        return None if row is None else str(row["sku"])
    if new_size:
        row = systems.fetch_one(
            """SELECT p2.sku FROM products p1 JOIN products p2 ON p1.family = p2.family
               WHERE p1.sku = ? AND upper(p2.size) = upper(?)""",
            (sku, new_size),
        )
        return None if row is None else str(row["sku"])
    return None


@tool
def stock_level(sku: str) -> int:
    """Units on hand.

    Args:
        sku: The product.
    """
    row = systems.fetch_one("SELECT on_hand FROM inventory WHERE sku = ?", (sku,))
    return 0 if row is None else int(row["on_hand"])


@tool
def current_price(sku: str) -> int:
    """Today's price in cents.

    Args:
        sku: The product.
    """
    row = systems.fetch_one("SELECT price_cents FROM products WHERE sku = ?", (sku,))
    if row is None:
        raise LookupError(f"no product with SKU {sku!r}")
    return int(row["price_cents"])


# writes --------------------------------------------------------------------------------------


@tool(effect=True)
def record_payment(case_id: str, order_id: int, kind: str, amount_cents: int) -> Payment:
    """Refund or charge the customer's card once per case.

    Args:
        case_id: The return case; one payment per case.
        order_id: The order it belongs to.
        kind: refund, charge or even.
        amount_cents: How much, in cents, never negative.
    """
    with systems.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO payments VALUES (?, ?, ?, ?, ?)",
            (case_id, order_id, kind, amount_cents, systems.now_iso()),
        )
        row = conn.execute(
            "SELECT kind, amount_cents FROM payments WHERE case_id = ?", (case_id,)
        ).fetchone()
    return Payment(case_id=case_id, kind=row["kind"], amount_cents=row["amount_cents"])


@tool(effect=True)
def create_label(case_id: str, order_id: int) -> Label:
    """A prepaid return label, once per case.

    Args:
        case_id: The return case.
        order_id: The order the parcel comes from.
    """
    tracking = "PX" + hashlib.sha256(case_id.encode()).hexdigest()[:10].upper()
    with systems.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO labels VALUES (?, ?, 'ParcelCo', ?, ?)",
            (case_id, order_id, tracking, systems.now_iso()),
        )
        row = conn.execute(
            "SELECT carrier, tracking_number FROM labels WHERE case_id = ?", (case_id,)
        ).fetchone()
    return Label(case_id=case_id, carrier=row["carrier"], tracking_number=row["tracking_number"])


@tool(effect=True)
def mark_order(order_id: int, case_id: str, status: str, replacement_sku: str | None) -> str:
    """Attach the case to the order and reserve the replacement; only the first call for an
    order changes anything. Returns the order's status.

    Args:
        order_id: The order.
        case_id: The return case.
        status: The order's new status.
        replacement_sku: The SKU reserved for an exchange, if any.
    """
    with systems.connect() as conn:
        changed = conn.execute(
            """UPDATE orders SET status = ?, case_id = ?, replacement_sku = ?
               WHERE order_id = ? AND case_id IS NULL""",
            (status, case_id, replacement_sku, order_id),
        ).rowcount
        if changed and replacement_sku:
            conn.execute(
                "UPDATE inventory SET on_hand = on_hand - 1 WHERE sku = ? AND on_hand > 0",
                (replacement_sku,),
            )
        row = conn.execute("SELECT status FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return str(row["status"])


@tool(effect=True)
def send_email(
    notification_id: str, customer_id: str, address: str, subject: str, body: str
) -> Notification:
    """Email the customer (here: a row in `notifications`), once per notification id.

    Args:
        notification_id: Unique per message, so a retry does not email twice.
        customer_id: Who.
        address: Their email address.
        subject: Subject line.
        body: The text.
    """
    with systems.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO notifications VALUES (?, ?, 'email', ?, ?, ?, ?)",
            (notification_id, customer_id, address, subject, body, systems.now_iso()),
        )
    return Notification(notification_id=notification_id, address=address, subject=subject)


@tool(effect=True)
def log_reason(
    case_id: str, order_id: int, sku: str, reason: str, detail: str, wants_exchange: bool
) -> bool:
    """Record why the item came back, for the merchandising team; once per case.

    Args:
        case_id: The return case.
        order_id: The order.
        sku: The SKU returned.
        reason: A reason code.
        detail: The customer's words.
        wants_exchange: Whether they asked for an exchange.
    """
    with systems.connect() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO return_reasons VALUES (?, ?, ?, ?, ?, ?, ?)",
            (case_id, order_id, sku, reason, detail, int(wants_exchange), systems.now_iso()),
        )
    return True


@tool(effect=True)
def open_ticket(queue: str, message: str) -> dict[str, Any]:
    """A support ticket in `queue`; the same message in the same queue is one ticket.

    Args:
        queue: billing, technical or triage.
        message: What the customer wrote.
    """
    digest = hashlib.sha256(f"{queue}\n{message}".encode()).hexdigest()[:8].upper()
    ticket_id = f"TCK-{digest}"
    with systems.connect() as conn:
        created = conn.execute(
            "INSERT OR IGNORE INTO tickets VALUES (?, ?, ?, 'open', ?)",
            (ticket_id, queue, message, systems.now_iso()),
        ).rowcount
    return {"ticket_id": ticket_id, "queue": queue, "new": bool(created)}
