"""Breaker state in Redis, shared by every process that names the same Redis and prefix.

Each decision (admit a call, record an outcome) is one Lua script, so concurrent processes
see one consistent state machine; the time is the board's clock's (`now()`), passed in.
Needs the `redis` package: `pip install 'podium[redis]'`.
"""

from __future__ import annotations

from typing import Any

from podium.core.clock import Clock, clock_or_default
from podium.errors import CircuitOpenError, UsageError
from podium.runtime.breaker import Breaker

_ADMIT = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'closed' then return {'closed', '0'} end
if st == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  local wait = opened + tonumber(ARGV[2]) - tonumber(ARGV[1])
  if wait > 0 then return {'reject', tostring(wait)} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probes', 0)
end
local p = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
if p < tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'probes', 1)
  return {'half_open', '0'}
end
return {'reject', '0'}
"""

_RECORD = """
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
local ok = ARGV[1] == '1'
if st == 'half_open' then
  if ok then redis.call('DEL', KEYS[1], KEYS[2]) return 'closed' end
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[2], 'probes', 0)
  return 'opened'
end
if st == 'open' then return '' end
redis.call('LPUSH', KEYS[2], ok and '1' or '0')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
if ok then redis.call('HSET', KEYS[1], 'consecutive', 0) return '' end
local c = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
local trip = c >= tonumber(ARGV[3])
if (not trip) and tonumber(ARGV[6]) >= 0 then
  local items = redis.call('LRANGE', KEYS[2], 0, -1)
  if #items >= tonumber(ARGV[5]) then
    local f = 0
    for _, v in ipairs(items) do if v == '0' then f = f + 1 end end
    trip = f / #items >= tonumber(ARGV[6])
  end
end
if trip then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[2], 'probes', 0)
  return 'opened'
end
return ''
"""


class RedisBoard:
    """`RedisBoard("redis://127.0.0.1:6379/0")`: breaker state shared across processes."""

    def __init__(
        self, url: str, *, prefix: str = "podium:breaker:", clock: Clock | None = None
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:  # pragma: no cover - depends on the install
            raise UsageError("RedisBoard needs redis: pip install 'podium[redis]'") from None
        self.url = url
        self.prefix = prefix
        self.clock = clock_or_default(clock)
        self._redis: Any = aioredis.from_url(url, decode_responses=True)
        self._admit = self._redis.register_script(_ADMIT)
        self._record = self._redis.register_script(_RECORD)

    def _keys(self, key: str) -> list[str]:
        return [f"{self.prefix}{key}", f"{self.prefix}{key}:outcomes"]

    async def admit(self, key: str, cfg: Breaker) -> str:
        verdict, wait = await self._admit(
            keys=self._keys(key)[:1], args=[self.clock.now(), cfg.cooldown, cfg.probes]
        )
        if verdict == "reject":
            raise CircuitOpenError(key, float(wait))
        return str(verdict)

    async def record(self, key: str, cfg: Breaker, ok: bool) -> str:
        rate = -1.0 if cfg.failure_rate is None else cfg.failure_rate
        args = [1 if ok else 0, self.clock.now(), cfg.failures, cfg.window, cfg.min_calls, rate]
        return str(await self._record(keys=self._keys(key), args=args) or "")

    async def state(self, key: str) -> str:
        return str(await self._redis.hget(self._keys(key)[0], "state") or "closed")

    async def reset(self, key: str) -> None:
        await self._redis.delete(*self._keys(key))

    async def aclose(self) -> None:
        await self._redis.aclose()
