"""The key-value part of the store protocol, on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podium.stores import Store, open_store


async def test_put_get_replace_delete(store: Store) -> None:
    assert await store.kv_get("dlq", "r1") is None
    await store.kv_put("dlq", "r1", {"reason": "boom", "at": 1.5, "tags": ["a", "é"]})
    assert await store.kv_get("dlq", "r1") == {"reason": "boom", "at": 1.5, "tags": ["a", "é"]}
    await store.kv_put("dlq", "r1", {"reason": "second"})
    assert await store.kv_get("dlq", "r1") == {"reason": "second"}
    assert await store.kv_delete("dlq", "r1") is True
    assert await store.kv_delete("dlq", "r1") is False
    assert await store.kv_get("dlq", "r1") is None


async def test_namespaces_are_separate_and_listed_in_key_order(store: Store) -> None:
    await store.kv_put("a", "k2", 2)
    await store.kv_put("a", "k1", [1])
    await store.kv_put("b", "k1", "other")
    assert await store.kv_list("a") == {"k1": [1], "k2": 2}
    assert await store.kv_list("b") == {"k1": "other"}
    assert await store.kv_list("nothing") == {}


async def test_values_are_copies(store: Store) -> None:
    value = {"n": [1]}
    await store.kv_put("a", "k", value)
    value["n"].append(2)
    got = await store.kv_get("a", "k")
    assert got == {"n": [1]}
    got["n"].append(3)
    assert await store.kv_get("a", "k") == {"n": [1]}


async def test_values_survive_reopening(persistent_url: str) -> None:
    first = open_store(persistent_url)
    await first.open()
    await first.kv_put("learned", "routing", {"buy": {"wins": 3}})
    await first.close()
    second = open_store(persistent_url)
    await second.open()
    try:
        assert await second.kv_get("learned", "routing") == {"buy": {"wins": 3}}
    finally:
        await second.close()


async def test_update_computes_from_the_current_value_and_returns_it(store: Store) -> None:
    seen: list[Any] = []

    def bump(value: Any) -> dict[str, int]:
        seen.append(value)
        return {"n": (value or {"n": 0})["n"] + 1}

    assert await store.kv_update("c", "k", bump) == {"n": 1}
    assert await store.kv_update("c", "k", bump) == {"n": 2}
    assert seen[0] is None and seen[-1] == {"n": 1}
    assert await store.kv_get("c", "k") == {"n": 2}
    assert await store.kv_list("c") == {"k": {"n": 2}}


async def test_an_update_that_raises_changes_nothing(store: Store) -> None:
    await store.kv_put("c", "k", 1)

    def boom(value: Any) -> Any:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.kv_update("c", "k", boom)
    with pytest.raises(ValueError, match="no"):
        await store.kv_update("c", "new", boom)
    with pytest.raises(ValueError):  # a value no store can hold
        await store.kv_update("c", "k", lambda v: object())
    assert await store.kv_list("c") == {"k": 1}
    assert await store.kv_update("c", "k", lambda v: v + 1) == 2


async def test_concurrent_updates_in_one_process_all_count(store: Store) -> None:
    await asyncio.gather(*(store.kv_update("c", "k", lambda v: (v or 0) + 1) for _ in range(50)))
    assert await store.kv_get("c", "k") == 50


class _OlderStore:
    """A store written before `kv_update` existed, whose reads yield to the loop."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    async def kv_get(self, namespace: str, key: str) -> Any:
        value = self.values.get((namespace, key))
        await asyncio.sleep(0)  # a round trip: another update may land before this returns
        return value

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        self.values[namespace, key] = value

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        return {k: v for (ns, k), v in sorted(self.values.items()) if ns == namespace}


async def test_updates_on_a_store_without_kv_update_are_serialised_across_runs() -> None:
    """Each run has its own `ctx.kv`; on such a store, every run's updates still share one
    lock in this process, so none is lost."""
    from podium.runtime.kv import KeyValue

    store = _OlderStore()
    runs = [KeyValue.of(store) for _ in range(4)]

    async def count(kv: KeyValue | None) -> None:
        assert kv is not None
        for _ in range(25):
            await kv.update("n", "seen", lambda n: (n or 0) + 1)

    await asyncio.gather(*(count(kv) for kv in runs))
    assert store.values["n", "seen"] == 100


async def test_a_value_reads_back_in_its_json_shape_on_every_store(store: Store) -> None:
    """What a persistent store gives back (a set as a list, a tuple as a list, NaN as NaN),
    the memory store gives back too, so a test on memory means the same on SQLite."""
    await store.kv_put("shapes", "k", {"tags": {"b"}, "pair": (1, 2), "n": float("inf")})
    assert await store.kv_get("shapes", "k") == {"tags": ["b"], "pair": [1, 2], "n": float("inf")}
    assert await store.kv_list("shapes") == {
        "k": {"tags": ["b"], "pair": [1, 2], "n": float("inf")}
    }
