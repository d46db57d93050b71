"""The insurer's systems, played by one SQLite file: policies (seeded), claims, payments and
notices. Every write is keyed by the claim, so a repeated or resumed step writes nothing twice.

The file is `CLAIMS_DB`, else `claims_business.db` next to a SQLite `PODIUM_STORE`, else
`./.podium/claims_business.db`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
    policy_number TEXT PRIMARY KEY, holder TEXT NOT NULL, email TEXT NOT NULL,
    perils TEXT NOT NULL, deductible_cents INTEGER NOT NULL, limit_cents INTEGER NOT NULL,
    starts_on TEXT NOT NULL, ends_on TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    claim_id TEXT PRIMARY KEY, policy_number TEXT NOT NULL, peril TEXT NOT NULL,
    incident_date TEXT NOT NULL, amount_claimed_cents INTEGER NOT NULL, description TEXT NOT NULL,
    status TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    claim_id TEXT PRIMARY KEY, payee TEXT NOT NULL, amount_cents INTEGER NOT NULL,
    reference TEXT NOT NULL, paid_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
    notice_id TEXT PRIMARY KEY, claim_id TEXT NOT NULL, address TEXT NOT NULL,
    subject TEXT NOT NULL, body TEXT NOT NULL, sent_at TEXT NOT NULL);
"""

# policy, holder, email, covered perils, deductible, limit, start, end
_POLICIES = [
    (
        "HOME-1001",
        "Ada Lovelace",
        "ada@example.com",
        "water_damage,fire,theft,storm",
        50_000,
        2_000_000,
        "2023-01-01",
        "2030-12-31",
    ),
    (
        "RENT-2002",
        "Grace Hopper",
        "grace@example.com",
        "theft,fire",
        25_000,
        500_000,
        "2025-02-20",
        "2026-02-19",
    ),
    (
        "HOME-3003",
        "Alan Turing",
        "alan@example.com",
        "water_damage,fire,theft,storm",
        50_000,
        2_000_000,
        "2020-01-01",
        "2024-12-31",
    ),
]
# earlier claims on file (the fraud rules count them)
_HISTORY = [
    ("C-2024-101", "RENT-2002", "theft", "2024-11-02", 180_000, "bike stolen", "paid"),
    ("C-2024-102", "RENT-2002", "theft", "2025-01-15", 90_000, "laptop stolen", "paid"),
]

_ready: set[Path] = set()


def db_path() -> Path:
    explicit = os.environ.get("CLAIMS_DB")
    if explicit:
        return Path(explicit)
    store = os.environ.get("PODIUM_STORE", "")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent / "claims_business.db"
    return Path(".podium") / "claims_business.db"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """One short transaction; the file is created and seeded on first use."""
    path = db_path()
    if path not in _ready:
        _create(path)
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:
            yield conn


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        conn.executemany("INSERT OR IGNORE INTO policies VALUES (?,?,?,?,?,?,?,?)", _POLICIES)
        conn.executemany(
            "INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?,?,?,'2025-01-01T00:00:00+00:00')",
            _HISTORY,
        )
    _ready.add(path)


def reset() -> Path:
    path = db_path()
    path.unlink(missing_ok=True)
    _ready.discard(path)
    return path


def fetch_one(sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else dict(row)
