"""`KeyValue`: the run context's key-value service (`ctx.kv`), backed by the run's store.

A pattern that keeps something across runs (what `Adaptive` learned, say) asks the runtime for
it here instead of reaching into the store: the context decides where the values live, and
an update is one atomic read-modify-write in the store, so two processes updating the same
key both count.

    total = await ctx.kv.update("counters", "seen", lambda n: (n or 0) + 1)

`update(namespace, key, fn)` calls `fn(current)` (None when there is no value) inside the
store's transaction and stores what it returns. `fn` must be pure and quick: a store may call
it again when another process held the row (SQLite retries a busy transaction), and it runs
while the row is locked.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

KV_METHODS = ("kv_get", "kv_put", "kv_list")

# For a store without `kv_update` (one written before it existed), updates of one store are
# serialised within this process only: one lock per store, shared by every run on it.
_FALLBACK_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def has_kv(store: Any) -> bool:
    """Whether `store` offers the key-value part of the store protocol."""
    return all(hasattr(store, m) for m in KV_METHODS)


class KeyValue:
    """Small JSON values per (namespace, key) that outlive a run, on a store's key-value API."""

    __slots__ = ("store",)

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def of(cls, store: Any) -> KeyValue | None:
        """The service on `store`, or None if it has no key-value API."""
        return cls(store) if has_kv(store) else None

    async def get(self, namespace: str, key: str) -> Any | None:
        """The value, or None."""
        return await self.store.kv_get(namespace, key)

    async def put(self, namespace: str, key: str, value: Any) -> None:
        """Insert or replace; durable when this returns."""
        await self.store.kv_put(namespace, key, value)

    async def list(self, namespace: str) -> dict[str, Any]:
        """Every key of a namespace with its value, in key order."""
        items: dict[str, Any] = await self.store.kv_list(namespace)
        return items

    async def update(self, namespace: str, key: str, fn: Callable[[Any | None], Any]) -> Any:
        """Store `fn(current value or None)` atomically and return it: no other update of the
        same key, from this process or another, happens between the read and the write."""
        update = getattr(self.store, "kv_update", None)
        if update is not None:
            return await update(namespace, key, fn)
        lock = _FALLBACK_LOCKS.get(self.store)
        if lock is None:
            lock = _FALLBACK_LOCKS[self.store] = asyncio.Lock()
        async with lock:
            value = fn(await self.store.kv_get(namespace, key))
            await self.store.kv_put(namespace, key, value)
            return value

    def __repr__(self) -> str:
        return f"KeyValue({self.store!r})"
