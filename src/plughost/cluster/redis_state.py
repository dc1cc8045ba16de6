"""`RedisState`: the shared state in Redis hashes, with a TTL per key on Redis 7.0.

A namespace is one hash, `<prefix>:state:<plugin|shared>:<name>`: field = key, value = the
value's canonical JSON (keys sorted). Redis < 7.4 has no per-field expiry (HEXPIRE), so each
namespace has a sorted set beside it, `<prefix>:ttl:<plugin|shared>:<name>`, scoring a key with
its expiry time in ms on the Redis server's clock. Every operation is one Lua script that first
removes the namespace's expired keys (so an expired key is never seen: expiry is lazy, on the
next use of its namespace) and then does its work atomically — `incr` (HINCRBY on the JSON
integer), compare-and-set, `clear` all run inside Redis, never read-modify-write from a host.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.core.state_store import Namespace, canonical_json
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.cluster.redis_backend import RedisBackend

# KEYS[1] = the namespace's hash, KEYS[2] = its expiry index; `now` in ms on the server's clock
_PURGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #gone, 500 do
  local batch = {unpack(gone, i, math.min(i + 499, #gone))}
  redis.call('HDEL', KEYS[1], unpack(batch))
  redis.call('ZREM', KEYS[2], unpack(batch))
end
local function expire(field, ttl_ms)
  if ttl_ms > 0 then redis.call('ZADD', KEYS[2], now + ttl_ms, field) else redis.call('ZREM', KEYS[2], field) end
end
"""
_SCRIPTS = {
    "get": "return redis.call('HGET', KEYS[1], ARGV[1])",
    # ARGV: key, value, ttl ms (0: none)
    "set": "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); expire(ARGV[1], tonumber(ARGV[3])); return 1",
    "delete": "redis.call('ZREM', KEYS[2], ARGV[1]); return redis.call('HDEL', KEYS[1], ARGV[1])",
    "get_all": "return redis.call('HGETALL', KEYS[1])",
    "clear": "local n = redis.call('HLEN', KEYS[1]); redis.call('DEL', KEYS[1], KEYS[2]); return n",
    # ARGV: key, amount → {1, new value} or {0, the value it holds}
    "incr": """
local ok, value = pcall(redis.call, 'HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if ok then return {1, value} end
return {0, redis.call('HGET', KEYS[1], ARGV[1])}
""",
    # ARGV: key, expected JSON ('' with ARGV[5] = '1': absent), value, ttl ms, expect-absent flag
    "compare_and_set": """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[5] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]); expire(ARGV[1], tonumber(ARGV[4])); return 1
""",
}


class RedisState:
    """`StateStorage` on Redis (see the module's docstring for the layout)."""

    name = "redis"

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        client = backend.client
        self._scripts = {op: client.register_script(_PURGE + body) for op, body in _SCRIPTS.items()}

    def _keys(self, ns: Namespace) -> list[str]:
        return [self._backend.key("state", *ns), self._backend.key("ttl", *ns)]

    async def _run(self, op: str, ns: Namespace, *args: Any) -> Any:
        try:
            return await self._scripts[op](keys=self._keys(ns), args=list(args))
        except CONNECTION_ERRORS as exc:
            raise self._backend.unavailable(f"state {op} in namespace '{ns[1]}'", exc) from None
        except ResponseError as exc:  # a server-side refusal (out of memory, read-only replica …)
            raise PlugHostError(f"Redis at {self._backend.where} refused state {op}: {exc}") from None

    async def open(self) -> None:
        return None

    async def get(self, ns: Namespace, key: str, default: Any) -> Any:
        text = await self._run("get", ns, key)
        return default if text is None else json.loads(text)

    async def set(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None:
        await self._run("set", ns, key, canonical_json(value), _ms(ttl))

    async def delete(self, ns: Namespace, key: str) -> bool:
        return bool(await self._run("delete", ns, key))

    async def get_all(self, ns: Namespace) -> dict[str, Any]:
        flat = await self._run("get_all", ns)
        return {flat[n].decode(): json.loads(flat[n + 1]) for n in range(0, len(flat), 2)}

    async def clear(self, ns: Namespace) -> int:
        return int(await self._run("clear", ns))

    async def incr(self, ns: Namespace, key: str, amount: int) -> int:
        done, value = await self._run("incr", ns, key, amount)
        if done:
            return int(value)
        held = json.loads(value) if value is not None else 0
        kind = type(held).__name__ if not isinstance(held, int) or isinstance(held, bool) else "an int beyond 64 bits"
        raise PlugHostError(f"incr of state key '{key}': it holds {kind}, not an int")

    async def compare_and_set(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        absent = expected is None
        wanted = "" if absent else canonical_json(expected)
        flag = "1" if absent else "0"
        return bool(await self._run("compare_and_set", ns, key, wanted, canonical_json(value), _ms(ttl), flag))

    async def drop(self, ns: Namespace) -> None:
        try:
            await self._backend.client.delete(*self._keys(ns))
        except CONNECTION_ERRORS as exc:
            raise self._backend.unavailable(f"dropping state namespace '{ns[1]}'", exc) from None

    async def aclose(self) -> None:
        return None  # the backend closes the client


def _ms(ttl: float | None) -> int:
    return 0 if ttl is None else max(1, math.ceil(ttl * 1000))


__all__ = ["RedisState"]
