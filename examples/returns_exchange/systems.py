"""The shop's business systems, played by one SQLite file the example creates for itself.

Orders, customers, products, inventory, payments, labels, notifications, return reasons and
support tickets live in `returns_business.db` next to the podium store (or wherever
`RETURNS_DB` points). These are quick local calls, so they run inline with the stdlib driver.

Every write is keyed by a business key (one return case per order, one ticket per message), so
running the same request twice, or resuming a run whose step was cut short, never refunds or
ships twice: the second write finds the first one's row and returns it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DB_FILE = "returns_business.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY, family TEXT NOT NULL, name TEXT NOT NULL, size TEXT,
    category TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
    sku TEXT PRIMARY KEY REFERENCES products, on_hand INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers,
    sku TEXT NOT NULL REFERENCES products, price_paid_cents INTEGER NOT NULL,
    purchased_on TEXT NOT NULL, status TEXT NOT NULL, case_id TEXT, replacement_sku TEXT);
CREATE TABLE IF NOT EXISTS payments (
    case_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL, kind TEXT NOT NULL,
    amount_cents INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    case_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL, carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, channel TEXT NOT NULL,
    address TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS return_reasons (
    case_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL, sku TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, wants_exchange INTEGER NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY, queue TEXT NOT NULL, message TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL);
"""

# Categories the shop never takes back.
FINAL_SALE_CATEGORIES = frozenset({"swimwear", "clearance"})
RETURN_WINDOW_DAYS = 30

_CUSTOMERS = [
    ("C-100", "Ada Lovelace", "ada@example.com"),
    ("C-101", "Grace Hopper", "grace@example.com"),
    ("C-102", "Alan Turing", "alan@example.com"),
]
# sku, family, name, size, category, price in cents, units on hand
_PRODUCTS = [
    ("SHOE-TRAIL-9", "SHOE-TRAIL", "Trailblazer running shoes", "9", "footwear", 8900, 3),
    ("SHOE-TRAIL-10", "SHOE-TRAIL", "Trailblazer running shoes", "10", "footwear", 8900, 4),
    ("SHOE-TRAIL-11", "SHOE-TRAIL", "Trailblazer running shoes", "11", "footwear", 8900, 0),
    ("JKT-SUMMIT-M", "JKT-SUMMIT", "Summit rain jacket", "M", "outerwear", 12000, 5),
    ("JKT-SUMMIT-L", "JKT-SUMMIT", "Summit rain jacket", "L", "outerwear", 12000, 2),
    ("JKT-SUMMITPRO-L", "JKT-SUMMITPRO", "Summit Pro rain jacket", "L", "outerwear", 15000, 2),
    ("SWIM-WAVE-M", "SWIM-WAVE", "Wave swim shorts", "M", "swimwear", 3500, 10),
    ("TENT-DOME-2", "TENT-DOME", "Dome tent, 2 people", None, "camping", 24900, 1),
]
# order id, customer, sku, price paid in cents, days before seeding
_ORDERS = [
    (1001, "C-100", "SHOE-TRAIL-9", 8900, 12),
    (1002, "C-101", "SWIM-WAVE-M", 3500, 5),
    (1003, "C-102", "TENT-DOME-2", 24900, 45),
    (1004, "C-100", "JKT-SUMMIT-M", 12000, 8),
    (1005, "C-101", "SHOE-TRAIL-10", 7900, 3),
]

_ready: set[Path] = set()


def db_path() -> Path:
    """`RETURNS_DB`, else next to a SQLite `PODIUM_STORE`, else `./.podium/`."""
    explicit = os.environ.get("RETURNS_DB")
    if explicit:
        return Path(explicit)
    store = os.environ.get("PODIUM_STORE", "")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent / DB_FILE
    return Path(".podium") / DB_FILE


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def today() -> date:
    return datetime.now(UTC).date()


@contextmanager
def connect(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """One short transaction on the business database, created and seeded on first use."""
    path = db_path() if path is None else path
    if path not in _ready:
        _create(path)
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable on a crash, no fsync
        with conn:
            yield conn


def _create(path: Path) -> None:
    """Tables and seed rows; `INSERT OR IGNORE` keeps a second seeding from changing anything."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.executemany("INSERT OR IGNORE INTO customers VALUES (?, ?, ?)", _CUSTOMERS)
        conn.executemany(
            "INSERT OR IGNORE INTO products VALUES (?, ?, ?, ?, ?, ?)",
            [p[:6] for p in _PRODUCTS],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO inventory VALUES (?, ?)", [(p[0], p[6]) for p in _PRODUCTS]
        )
        first_day = today()
        conn.executemany(
            "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, 'delivered', NULL, NULL)",
            [
                (oid, cust, sku, paid, (first_day - timedelta(days=ago)).isoformat())
                for oid, cust, sku, paid, ago in _ORDERS
            ],
        )
    _ready.add(path)


def reset(path: Path | None = None) -> Path:
    """Delete the business database so the next use seeds it afresh."""
    path = db_path() if path is None else path
    path.unlink(missing_ok=True)
    _ready.discard(path)
    return path


def fetch_one(sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else dict(row)


def fetch_all(sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with connect() as conn:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
