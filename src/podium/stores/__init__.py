"""Stores behind one protocol: `memory://`, `sqlite:///path.db`, `postgresql://...`.

`open_store(url)` picks the backend from the URL's scheme; the backends' drivers are imported
only when asked for, so `import podium` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path

from podium.core.clock import Clock
from podium.errors import UsageError
from podium.stores.base import Store
from podium.stores.memory import MemoryStore

DEFAULT_SQLITE_PATH = Path(".podium") / "podium.db"

__all__ = ["MemoryStore", "Store", "default_store_url", "open_store"]


def default_store_url() -> str:
    """`PODIUM_STORE` if set, else a SQLite file under `./.podium/`."""
    return os.environ.get("PODIUM_STORE") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def open_store(url: str | None = None, *, clock: Clock | None = None) -> Store:
    """Make (not yet open) the store a URL names; it reads `clock` (default: the real one)
    for lease expiry and timestamps."""
    url = url or default_store_url()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryStore(url, clock=clock)
    if scheme == "sqlite":
        from podium.stores.sqlite import SQLiteStore

        return SQLiteStore(url, clock=clock)
    if scheme in ("postgres", "postgresql"):
        from podium.stores.postgres import PostgresStore

        return PostgresStore(url, clock=clock)
    raise UsageError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://..."
    )
