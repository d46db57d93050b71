"""`ctx.kv`: the run context's key-value service, kept in the run's store."""

from __future__ import annotations

from typing import Any

from podium import NO_RETRY, FunctionAgent, RunContext, Runtime
from podium.runtime.kv import KeyValue
from podium.stores import MemoryStore


async def count(x: Any, ctx: RunContext) -> int:
    assert ctx.kv is not None
    seen: int = await ctx.kv.update("counters", "seen", lambda n: (n or 0) + 1)
    return seen


async def test_values_outlive_the_run_and_live_in_the_store(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'kv.db'}"
    agent = FunctionAgent(count)
    async with Runtime(url, retry=NO_RETRY) as rt:
        assert (await rt.run(agent, 0)).output == 1
        assert (await rt.run(agent, 0)).output == 2
    async with Runtime(url, retry=NO_RETRY) as rt:
        assert (await rt.run(agent, 0)).output == 3
        store = await rt.open()
        assert await store.kv_get("counters", "seen") == 3  # type: ignore[attr-defined]


class OnlyKV:
    """A store written before `kv_update`: get, put and list only."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    async def kv_get(self, namespace: str, key: str) -> Any:
        return await self.inner.kv_get(namespace, key)

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        await self.inner.kv_put(namespace, key, value)

    async def kv_list(self, namespace: str) -> dict[str, Any]:
        return await self.inner.kv_list(namespace)


async def test_the_service_needs_a_key_value_api_and_updates_without_kv_update() -> None:
    assert KeyValue.of(object()) is None
    kv = KeyValue.of(OnlyKV())
    assert kv is not None
    for _ in range(3):
        await kv.update("c", "k", lambda n: (n or 0) + 1)
    await kv.put("c", "j", "x")
    assert await kv.get("c", "k") == 3
    assert await kv.list("c") == {"j": "x", "k": 3}
