"""The helpdesk's ticket system, played by one SQLite file.

`SUPPORT_DB`, else `support_business.db` next to a SQLite `PODIUM_STORE`, else `./.podium/`.
A ticket's id is a digest of its desk, customer and message, so the same message filed twice
(or a resumed step) is one ticket.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY, desk TEXT NOT NULL, customer_id TEXT NOT NULL,
    priority TEXT NOT NULL, message TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL);
"""


def db_path() -> Path:
    explicit = os.environ.get("SUPPORT_DB")
    if explicit:
        return Path(explicit)
    store = os.environ.get("PODIUM_STORE", "")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent / "support_business.db"
    return Path(".podium") / "support_business.db"


def open_ticket(desk: str, customer_id: str, message: str, priority: str) -> dict[str, Any]:
    """Insert the ticket unless it exists; answers with the row and whether it is new."""
    digest = hashlib.sha256(f"{desk}\n{customer_id}\n{message}".encode()).hexdigest()[:8]
    ticket_id = f"TCK-{digest.upper()}"
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.executescript(SCHEMA)
        created = conn.execute(
            "INSERT OR IGNORE INTO tickets VALUES (?, ?, ?, ?, ?, 'open', ?)",
            (
                ticket_id,
                desk,
                customer_id,
                priority,
                message,
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        ).rowcount
    return {"ticket_id": ticket_id, "new": bool(created)}
