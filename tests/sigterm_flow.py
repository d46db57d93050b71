"""A flow with one slow step, for the SIGTERM test: it logs to SIGTERM_LOG."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from podium import Sequential, agent


def _log(what: str) -> None:
    with sqlite3.connect(os.environ["SIGTERM_LOG"], timeout=5) as db:
        db.execute("CREATE TABLE IF NOT EXISTS log (what TEXT)")
        db.execute("INSERT INTO log VALUES (?)", (what,))


@agent
async def slow(x: int) -> int:
    _log("slow started")
    await asyncio.sleep(0.5)
    _log("slow done")
    return x + 1


@agent
def last(x: int) -> int:
    _log("last")
    return x * 2


flow = Sequential("sigterm", [slow, last])
