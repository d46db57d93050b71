"""The deal team's records, played by one SQLite file: the memo per deal and its findings.

`DILIGENCE_DB`, else `diligence_business.db` next to a SQLite `PODIUM_STORE`, else
`./.podium/`. Writing a memo replaces the deal's memo and findings in one transaction, so
running again (or resuming a step) leaves one memo per deal: the latest.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS memos (
    deal_id TEXT PRIMARY KEY, company TEXT NOT NULL, recommendation TEXT NOT NULL,
    overall_score INTEGER NOT NULL, gaps TEXT NOT NULL, text TEXT NOT NULL,
    run_id TEXT NOT NULL, written_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    deal_id TEXT NOT NULL, area TEXT NOT NULL, rating TEXT NOT NULL, score INTEGER NOT NULL,
    headline TEXT NOT NULL, PRIMARY KEY (deal_id, area));
"""


def db_path() -> Path:
    explicit = os.environ.get("DILIGENCE_DB")
    if explicit:
        return Path(explicit)
    store = os.environ.get("PODIUM_STORE", "")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent / "diligence_business.db"
    return Path(".podium") / "diligence_business.db"


def save_memo(memo: dict[str, Any], run_id: str) -> None:
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO memos VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                memo["deal_id"],
                memo["company"],
                memo["recommendation"],
                memo["overall_score"],
                json.dumps(memo["gaps"]),
                memo["text"],
                run_id,
                now,
            ),
        )
        conn.execute("DELETE FROM findings WHERE deal_id = ?", (memo["deal_id"],))
        conn.executemany(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?)",
            [
                (memo["deal_id"], f["area"], f["rating"], f["score"], f["headline"])
                for f in memo["findings"]
            ],
        )
