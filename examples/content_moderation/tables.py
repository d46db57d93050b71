"""The platform's post records, played by one SQLite file.

`MODERATION_DB`, else `moderation_business.db` next to a SQLite `PODIUM_STORE`, else
`./.podium/`. One row per post holds its latest moderation: writing the same decision again
(a repeated run or a resumed step) changes nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    post_id TEXT PRIMARY KEY, author TEXT NOT NULL, text TEXT NOT NULL,
    status TEXT NOT NULL, decided_by TEXT NOT NULL, reasons TEXT NOT NULL,
    scores TEXT NOT NULL, decided_at TEXT NOT NULL);
"""


def db_path() -> Path:
    explicit = os.environ.get("MODERATION_DB")
    if explicit:
        return Path(explicit)
    store = os.environ.get("PODIUM_STORE", "")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent / "moderation_business.db"
    return Path(".podium") / "moderation_business.db"


def record(
    post_id: str,
    author: str,
    text: str,
    status: str,
    decided_by: str,
    reasons: list[str],
    scores: dict[str, float],
) -> None:
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO posts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                post_id,
                author,
                text,
                status,
                decided_by,
                json.dumps(reasons),
                json.dumps(scores),
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
