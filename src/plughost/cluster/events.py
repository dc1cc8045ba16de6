"""Event distribution: several hosts as one bot, through Redis streams.

The gateway node (`[cluster] role = "gateway"`) holds the OneBot connections. It puts each
incoming event (after dedup) on the bounded stream `<prefix>:bot:events` — its wire JSON, the bot,
the gateway's name and a unique event id — instead of running the pipeline itself. Worker nodes
(`role = "worker"`) read the stream with one consumer group, run the normal pipeline with a bot
whose actions go back to the gateway, and commit an event's actions together with its
acknowledgement in one Lua script. The gateway reads its action stream `<prefix>:bot:actions:<node>`
and performs them on the real connection. `role = "both"` (the default) handles its own events.

Exactly once: see docs/cluster.md. `EventStreamKeys` names every key both sides use.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from plughost.cluster.settings import ClusterSettings
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.bot.config import BotSettings
    from plughost.bot.dispatch import Dispatcher
    from plughost.core.backend import Backend
    from plughost.core.config import HostConfig
    from plughost.sdk.tasks import TaskOwner

WORKERS_GROUP = "workers"
"""The consumer group of every worker node on the event stream."""
GATEWAY_GROUP = "gateway"
"""The consumer group of a gateway on its action stream (one consumer: the gateway)."""
QUERY_PREFIXES = ("get_", "can_")
"""Actions that only read (`get_group_member_info`, `can_send_image`): performed at once, their
answer awaited. Every other action changes something and is committed with the event."""


StreamEntry = tuple[bytes, dict[bytes, bytes]]
"""One stream entry as redis-py returns it: its id and its fields."""


def entries_read(answer: Any) -> list[StreamEntry]:
    """The entries of an XREADGROUP answer for one stream (none when it timed out)."""
    return list(answer[0][1]) if answer else []


def is_query(action: str) -> bool:
    """True for an action that only reads (its answer is needed now, and repeating it is harmless)."""
    return action.startswith(QUERY_PREFIXES)


@dataclass(frozen=True, slots=True)
class EventStreamKeys:
    """The Redis keys of event distribution under one prefix."""

    prefix: str

    @property
    def events(self) -> str:
        """The stream of incoming events (every gateway adds, every worker reads)."""
        return f"{self.prefix}:bot:events"

    @property
    def stats(self) -> str:
        """A hash of counters: relayed, shed, handled, repeated, claimed."""
        return f"{self.prefix}:bot:stats"

    def done(self, event_id: str) -> str:
        """The marker of an event whose actions were committed (expires after `done_ttl_s`)."""
        return f"{self.prefix}:bot:done:{event_id}"

    def actions(self, gateway: str) -> str:
        """The stream of actions the gateway `gateway` performs on its connections."""
        return f"{self.prefix}:bot:actions:{gateway}"

    def reply(self, token: str) -> str:
        """The list a query's answer is pushed to."""
        return f"{self.prefix}:bot:reply:{token}"


class EventRole(Protocol):
    """A node's part in event distribution, started and stopped by the `Host`."""

    holds_connections: bool
    """True on a gateway (it starts the OneBot adapter); a worker connects to no bot."""

    async def start(self, tasks: TaskOwner) -> None: ...
    async def aclose(self) -> None: ...
    def status_lines(self) -> list[str]: ...


def node_name(settings: ClusterSettings) -> str:
    """`[cluster] node`, else the machine's host name (a gateway's action stream is named after it)."""
    return settings.node or socket.gethostname() or "node"


def event_role_for(config: HostConfig, backend: Backend, dispatcher: Dispatcher, bots: BotSettings) -> EventRole | None:
    """The gateway or worker `[cluster] role` asks for; None for `both` (events handled here).

    `ConfigError` for a gateway without an enabled bot."""
    settings = ClusterSettings.from_host_config(config)
    if settings.role == "both":
        return None
    from plughost.cluster.redis_backend import RedisBackend

    assert isinstance(backend, RedisBackend), "role gateway/worker needs the Redis backend"
    keys = EventStreamKeys(settings.prefix)
    if settings.role == "gateway":
        if not any(bot.enabled for bot in bots.bots):
            raise ConfigError(
                f'{config.source or "plughost.toml"}: [cluster] role = "gateway" holds the OneBot connections, but '
                "no [[bots]] entry is enabled: add one, or make this node a worker"
            )
        from plughost.cluster.gateway import EventGateway

        return EventGateway(backend, keys, settings, dispatcher, node=node_name(settings))
    from plughost.cluster.worker import EventWorker

    return EventWorker(backend, keys, settings, dispatcher, bots, node=node_name(settings))


__all__ = ["EventRole", "EventStreamKeys", "StreamEntry", "entries_read", "event_role_for", "is_query", "node_name"]
