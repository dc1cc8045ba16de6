"""The seam between the bus/state store and where their data lives: a `Backend`.

A backend carries the bus's messages (`BusTransport`: fan-out of publishes to subscriptions and
request/reply routing) and keeps the shared state (`StateStorage`). Everything a plugin could get
wrong — permissions, topic syntax, JSON checks, keys, TTLs — is checked by `Bus` and `StateStore`
before a backend sees it, and delivery (bounded per-subscriber queues, guarded calls) stays in
`Bus`, so every backend behaves the same. `MemoryBackend` (here) is the default; the Redis one is
`plughost.cluster.RedisBackend`. Backends construct without I/O; `open` connects.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.core.bus import Subscription
    from plughost.core.state_store import MemoryState, Namespace
    from plughost.sdk.call import Outcome

Reply = tuple[str, "Outcome"]
"""`(plugin_id, outcome)` of the replier that answered a request."""


class BusSink(Protocol):
    """What a transport hands received messages and requests to (the `Bus`)."""

    def fan_out(self, sender: str, topic: str, data: Any, route: str | None) -> int:
        """Queue a message for the local subscriptions matching `topic` (only those on `route`
        when given): how many got it."""
        ...

    def find_replier(self, topic: str, route: str | None) -> Subscription | None:
        """The first local replier matching `topic` (on `route` when given)."""
        ...

    async def answer(self, replier: Subscription, sender: str, topic: str, data: Any, timeout: float) -> Outcome:
        """Run `replier` (a guarded call with `timeout`) and count the result."""
        ...


class BusTransport(Protocol):
    """Carries published messages to subscriptions and requests to repliers."""

    name: str

    def attach(self, sink: BusSink, tasks: TaskOwner) -> None:
        """Deliver to `sink`; background work (readers) runs as tasks of `tasks`. Called once."""
        ...

    async def open(self) -> None:
        """Start receiving (connect, subscribe); idempotent."""
        ...

    def watch(self, kind: str, pattern: str) -> str | None:
        """A local subscription (`kind` "subscribe") or replier ("reply") on `pattern` appeared:
        its route, the key the transport hands back to `fan_out`/`find_replier`."""
        ...

    def unwatch(self, kind: str, pattern: str) -> None:
        """The local subscription or replier `watch` was told of is gone."""
        ...

    async def settle(self, timeout: float) -> bool:
        """Wait (up to `timeout`) until the subscriptions watched so far receive messages."""
        ...

    async def publish(self, sender: str, topic: str, text: str) -> int:
        """Send a checked message (`text`: its data as JSON): how many subscriptions (memory) or
        subscribed hosts' patterns (redis) it reached."""
        ...

    async def request(self, sender: str, topic: str, text: str, timeout: float) -> Reply | None:
        """The reply of one replier (`text`: the request's data as JSON), or None when no replier
        answers `topic`."""
        ...

    async def aclose(self) -> None:
        """Stop receiving; idempotent."""
        ...


class StateStorage(Protocol):
    """Where the state store keeps its namespaces. Values arrive checked (JSON, copied), keys
    non-empty, TTLs positive seconds; a missing key reads as `default`."""

    name: str

    async def open(self) -> None: ...

    async def get(self, ns: Namespace, key: str, default: Any) -> Any: ...

    async def set(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None: ...

    async def delete(self, ns: Namespace, key: str) -> bool: ...

    async def get_all(self, ns: Namespace) -> dict[str, Any]: ...

    async def clear(self, ns: Namespace) -> int: ...

    async def incr(self, ns: Namespace, key: str, amount: int) -> int: ...

    async def compare_and_set(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        """Set `key` to `value` if it holds `expected` (None: if it is absent); values compare as JSON."""
        ...

    async def drop(self, ns: Namespace) -> None: ...

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """Makes the bus transport and the state storage of one manager, and owns their connection."""

    name: str

    def bus_transport(self) -> BusTransport: ...

    def state_storage(self) -> StateStorage: ...

    async def open(self) -> None:
        """Connect; `PlugHostError` with what to do when the backend cannot be reached."""
        ...

    async def aclose(self) -> None: ...


class MemoryTransport:
    """The in-process transport: a publish goes straight to the local subscriptions' queues."""

    name = "memory"

    def __init__(self) -> None:
        self._sink: BusSink | None = None

    def attach(self, sink: BusSink, tasks: TaskOwner) -> None:
        self._sink = sink

    async def open(self) -> None:
        return None

    def watch(self, kind: str, pattern: str) -> str | None:
        return None

    def unwatch(self, kind: str, pattern: str) -> None:
        return None

    async def settle(self, timeout: float) -> bool:
        return True

    async def publish(self, sender: str, topic: str, text: str) -> int:
        assert self._sink is not None, "attach the transport to a bus first"
        return self._sink.fan_out(sender, topic, json.loads(text), None)  # a copy: the publisher's stays its own

    async def request(self, sender: str, topic: str, text: str, timeout: float) -> Reply | None:
        assert self._sink is not None, "attach the transport to a bus first"
        replier = self._sink.find_replier(topic, None)
        if replier is None:
            return None
        return replier.plugin_id, await self._sink.answer(replier, sender, topic, json.loads(text), timeout)

    async def aclose(self) -> None:
        return None


class MemoryBackend:
    """The default backend: everything in this process, nothing to install or connect."""

    name = "memory"

    def bus_transport(self) -> MemoryTransport:
        return MemoryTransport()

    def state_storage(self) -> MemoryState:
        from plughost.core.state_store import MemoryState

        return MemoryState()

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


__all__ = ["Backend", "BusSink", "BusTransport", "MemoryBackend", "MemoryTransport", "Reply", "StateStorage"]
