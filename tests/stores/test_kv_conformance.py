"""The key-value part of the store protocol, on every backend."""

from __future__ import annotations

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
