"""`RedisBackend`: the bus and the shared state of several hosts, through one Redis server.

One client (a pool of connections) serves the state commands; the bus publishes over one
connection of its own (`publisher`: a host's publishes reach Redis in the order they were made,
without a pool checkout on the hot path) and receives on another (`RedisTransport`). Every key and channel starts with
`<prefix>:`, so deployments can share a Redis. While Redis is unreachable, a state call or a
publish fails at once with `RedisUnavailable` (nothing is buffered); the next call after Redis is
back works, and the subscriber reconnects and subscribes again by itself.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from plughost.cluster.settings import ClusterSettings, redacted
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.cluster.redis_bus import RedisTransport
    from plughost.cluster.redis_state import RedisState

POOL_SIZE = 32
CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a lost or refused connection raises (redis-py wraps most socket errors; not all)."""


class RedisUnavailable(PlugHostError):
    """Redis could not be reached for a bus or state operation (nothing was done or buffered)."""


class RedisBackend:
    """Bus transport and state storage on Redis (`[cluster] redis_url`). Constructs without I/O."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "plughost", connect_timeout_s: float = 5.0,
                 host_id: str | None = None) -> None:  # fmt: skip
        self.url = url
        self.prefix = prefix
        self.host_id = host_id or uuid.uuid4().hex[:16]
        """This host's name on the bus: replies to its requests come to `<prefix>:inbox:<host_id>`."""
        self.connect_timeout_s = connect_timeout_s
        # at most POOL_SIZE connections: more concurrent calls wait for one (up to the connect
        # timeout). One immediate retry: the first command after a restart of Redis finds a dead
        # pooled connection; a second refusal is an outage and fails the call at once.
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=connect_timeout_s, socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 1),
        )  # fmt: skip
        self.client: redis.Redis = redis.Redis.from_pool(pool)
        self.publisher: redis.Redis = redis.Redis.from_url(
            url, single_connection_client=True, socket_connect_timeout=connect_timeout_s, retry=Retry(NoBackoff(), 1)
        )

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> RedisBackend:
        assert settings.redis_url is not None
        return cls(settings.redis_url, prefix=settings.prefix, connect_timeout_s=settings.connect_timeout_s)

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        return redacted(self.url)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def unavailable(self, what: str, exc: BaseException) -> RedisUnavailable:
        """The error of an operation that found Redis unreachable."""
        return RedisUnavailable(f"Redis at {self.where} is unreachable: {what} failed ({type(exc).__name__}: "
                                f"{exc}); nothing was done — retry once Redis is back")  # fmt: skip

    def bus_transport(self) -> RedisTransport:
        from plughost.cluster.redis_bus import RedisTransport  # it imports this module

        return RedisTransport(self)

    def state_storage(self) -> RedisState:
        from plughost.cluster.redis_state import RedisState  # it imports this module

        return RedisState(self)

    async def open(self) -> None:
        """Check that Redis answers; `PlugHostError` saying what to do when it does not."""
        try:
            await self.client.ping()
        except (*CONNECTION_ERRORS, redis.RedisError) as exc:
            raise PlugHostError(
                f"cannot reach Redis at {self.where} ([cluster] redis_url / --cluster): {type(exc).__name__}: {exc}; "
                "start redis-server there, fix the URL, or remove [cluster] to keep the bus and state in memory"
            ) from None

    async def aclose(self) -> None:
        await self.publisher.aclose()
        await self.client.aclose()


__all__ = ["CONNECTION_ERRORS", "RedisBackend", "RedisUnavailable"]
