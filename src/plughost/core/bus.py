"""`Bus`: the in-memory message bus between plugins (publish/subscribe and request/reply).

Topics are dot-separated segments (`weather.oslo`). A subscription's pattern may use `*` for
exactly one segment and `>` (last segment only) for one or more remaining segments.

Delivery: every subscription has a bounded queue and one worker task (owned by the bus's
`TaskOwner`, started at its first message), which calls the subscriber through `call` — the
manager's guarded call, so its timeout and circuit breaker apply. Messages reach one subscriber
in the order they were published; a slow or failing subscriber delays only itself. When its
queue is full the message is dropped for it and counted (`stats()["overflowed"]`).

Where messages travel is the backend's business (`plughost.core.backend.BusTransport`: in
memory, or over Redis between hosts); topic checks, permissions, JSON checks, the queues and the
guarded delivery are here, the same for every backend.

Permissions (checked here, in the host): a plugin may always use topics under its own id (`<id>`
and `<id>.…`); others must be granted by its manifest's `[permissions] topics` patterns. A
subscription pattern must be covered by a grant (`weather.*` covers `weather.oslo` and
`weather.*`, not `weather.>`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from plughost.core.backend import BusTransport, MemoryTransport
from plughost.errors import PlugHostError
from plughost.sdk.call import TIMED_OUT, Call, Outcome
from plughost.sdk.descriptor import SubscriptionSpec
from plughost.sdk.shared import AccessDenied, BusRequestError, json_text
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
Caller = Callable[..., Awaitable[Outcome]]
"""`caller(plugin_id, call, timeout=None)`: the manager's guarded `call`."""
GrantLookup = Callable[[str], Sequence[str]]
"""The topic patterns a plugin's manifest grants it (`[permissions] topics`)."""
NO_RESPONDERS = "no_responders"


def check_topic(topic: str, *, pattern: bool) -> list[str]:
    """The segments of `topic`; `PlugHostError` when it is malformed."""
    segments = topic.split(".")
    if not topic or any(not s for s in segments):
        raise PlugHostError(f"bus topic {topic!r} is malformed: use dot-separated, non-empty segments")
    for n, segment in enumerate(segments):
        wild = segment in ("*", ">")
        if wild and not pattern:
            raise PlugHostError(f"bus topic {topic!r}: wildcards belong in subscriptions, not in a published topic")
        if segment == ">" and n != len(segments) - 1:
            raise PlugHostError(f"bus pattern {topic!r}: '>' may only be the last segment")
        if not wild and ("*" in segment or ">" in segment):
            raise PlugHostError(f"bus topic {topic!r}: '*' and '>' must be whole segments")
    return segments


def matches(pattern: str, topic: str) -> bool:
    """True when the concrete `topic` matches `pattern` (or a pattern is covered by it: a grant)."""
    want, have = pattern.split("."), topic.split(".")
    for n, segment in enumerate(want):
        if segment == ">":
            return len(have) > n
        if n >= len(have):
            return False
        if have[n] == ">":  # a requested '>' is covered only by a granted '>'
            return False
        if segment != "*" and segment != have[n]:
            return False
    return len(have) == len(want)


@dataclass
class Subscription:
    """One plugin's subscription (or replier) on a pattern, with its queue and counters."""

    plugin_id: str
    pattern: str
    handler: str
    route: str | None = None  # the transport's key for it (`BusTransport.watch`)
    queue: asyncio.Queue[tuple[str, str, Any]] | None = None
    worker: asyncio.Task[Any] | None = None
    delivered: int = 0
    failed: int = 0
    overflowed: int = 0
    _closed: bool = field(default=False)


class Bus:
    """Publish/subscribe and request/reply between plugins. Constructs without I/O; `transport`
    (default: in memory) carries the messages, `open` starts it."""

    def __init__(self, call: Caller, *, grants: GrantLookup, tasks: TaskOwner | None = None,
                 queue_size: int = QUEUE_SIZE, transport: BusTransport | None = None) -> None:  # fmt: skip
        self._call = call
        self._grants = grants
        self.tasks = tasks if tasks is not None else TaskOwner("bus")
        self.transport: BusTransport = transport if transport is not None else MemoryTransport()
        self.transport.attach(self, self.tasks)
        self.queue_size = queue_size
        self._subs: list[Subscription] = []
        self._repliers: list[Subscription] = []
        self.published = 0
        self.requests = 0
        self._removed = {"delivered": 0, "failed": 0, "overflowed": 0}

    # permissions -------------------------------------------------------------------------------
    def check_access(self, plugin_id: str, topic: str, what: str) -> None:
        """`AccessDenied` unless `plugin_id` may use `topic` (a topic or a pattern)."""
        if topic == plugin_id or topic.startswith(plugin_id + "."):
            return
        granted = self._grants(plugin_id)
        if any(matches(grant, topic) for grant in granted):
            return
        raise AccessDenied(
            f"plugin '{plugin_id}' may not {what} bus topic '{topic}': add a pattern covering it to "
            f"`[permissions] topics` in its plugin.toml (granted: {', '.join(granted) or 'none'}; "
            f"topics under '{plugin_id}.' need no grant)"
        )

    # subscriptions -----------------------------------------------------------------------------
    def subscribe(self, plugin_id: str, pattern: str, handler: str) -> None:
        """Deliver messages matching `pattern` to `handler` of `plugin_id` (checked against its grants)."""
        check_topic(pattern, pattern=True)
        self.check_access(plugin_id, pattern, "subscribe to")
        self._subs.append(Subscription(plugin_id, pattern, handler, self.transport.watch("subscribe", pattern)))

    def reply_with(self, plugin_id: str, pattern: str, handler: str) -> None:
        """Answer requests on topics matching `pattern` with `handler` of `plugin_id`."""
        check_topic(pattern, pattern=True)
        self.check_access(plugin_id, pattern, "answer requests on")
        self._repliers.append(Subscription(plugin_id, pattern, handler, self.transport.watch("reply", pattern)))

    def check_plugin(self, plugin_id: str, specs: Sequence[SubscriptionSpec]) -> None:
        """`AccessDenied`/`PlugHostError` when a declared subscription is malformed or not granted."""
        for spec in specs:
            check_topic(spec.topic, pattern=True)
            what = "subscribe to" if spec.mode == "subscribe" else "answer requests on"
            self.check_access(plugin_id, spec.topic, what)

    def add_plugin(self, plugin_id: str, specs: Sequence[SubscriptionSpec]) -> None:
        """Register a plugin's declared subscriptions; all or none (a denied one raises)."""
        self.check_plugin(plugin_id, specs)
        for spec in specs:
            (self.subscribe if spec.mode == "subscribe" else self.reply_with)(plugin_id, spec.topic, spec.handler)

    def unsubscribe(self, plugin_id: str, pattern: str | None = None) -> int:
        """Remove `plugin_id`'s subscriptions and repliers (only those on `pattern` if given): how many."""
        gone = [s for s in self._subs + self._repliers
                if s.plugin_id == plugin_id and (pattern is None or s.pattern == pattern)]  # fmt: skip
        replying = [s for s in gone if s in self._repliers]
        self._subs = [s for s in self._subs if s not in gone]
        self._repliers = [s for s in self._repliers if s not in gone]
        for sub in gone:
            self._stop(sub, "reply" if sub in replying else "subscribe")
        return len(gone)

    def remove_plugin(self, plugin_id: str) -> int:
        """Everything of an unloaded plugin: its subscriptions and repliers."""
        return self.unsubscribe(plugin_id)

    def subscriptions(self, plugin_id: str | None = None) -> list[tuple[str, str, str]]:
        """`(plugin_id, pattern, handler)` of each subscription (repliers excluded)."""
        return [(s.plugin_id, s.pattern, s.handler) for s in self._subs if plugin_id in (None, s.plugin_id)]

    def _stop(self, sub: Subscription, kind: str) -> None:
        sub._closed = True
        self.transport.unwatch(kind, sub.pattern)
        for name in self._removed:
            self._removed[name] += getattr(sub, name)
        if sub.worker is not None and not sub.worker.done():
            sub.worker.cancel()

    async def open(self) -> None:
        """Start the transport (connect to Redis, subscribe); idempotent, nothing to do in memory."""
        await self.transport.open()

    async def settle(self, timeout: float = 5.0) -> bool:
        """Wait (up to `timeout`) until the subscriptions made so far receive messages: at once in
        memory; over Redis when the server confirmed them. False when it did not in time."""
        return await self.transport.settle(timeout)

    # publishing --------------------------------------------------------------------------------
    async def publish(self, sender: str, topic: str, data: Any = None) -> int:
        """Send `data` to every subscription matching `topic`; returns how many got it (in memory:
        subscriptions; over Redis: subscribed patterns of all hosts). Never waits for a subscriber."""
        check_topic(topic, pattern=False)
        self.check_access(sender, topic, "publish on")
        text = json_text(data, f"the data published on '{topic}'")
        reached = await self.transport.publish(sender, topic, text)
        self.published += 1
        return reached

    def fan_out(self, sender: str, topic: str, data: Any, route: str | None) -> int:
        """Queue a checked message for the local subscriptions matching `topic` (only those on the
        transport's `route` when given); returns how many got it."""
        queued = 0
        for sub in self._subs:
            if (route is not None and sub.route != route) or not matches(sub.pattern, topic):
                continue
            if sub.queue is None:
                sub.queue = asyncio.Queue(self.queue_size)
                sub.worker = self.tasks.spawn(self._deliver(sub), name=f"bus:{sub.plugin_id}:{sub.pattern}")
            try:
                sub.queue.put_nowait((sender, topic, data))
                queued += 1
            except asyncio.QueueFull:
                sub.overflowed += 1
                log.warning("bus: '%s' is behind on '%s'; a message on '%s' was dropped for it",
                            sub.plugin_id, sub.pattern, topic)  # fmt: skip
        return queued

    async def _deliver(self, sub: Subscription) -> None:
        assert sub.queue is not None
        while not sub._closed:
            sender, topic, data = await sub.queue.get()
            call = Call(sub.handler, {"topic": topic, "data": data, "sender": sender}, kind="bus")
            outcome = await self._call(sub.plugin_id, call)
            if outcome.error is None:
                sub.delivered += 1
            else:
                sub.failed += 1
                log.warning("bus: '%s' failed handling '%s': %s", sub.plugin_id, topic, outcome.error)

    async def request(self, sender: str, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        """The answer of the first replier whose pattern matches `topic` (guarded, with `timeout`).

        `BusRequestError` when no plugin answers the topic, the replier timed out or failed.
        """
        check_topic(topic, pattern=False)
        self.check_access(sender, topic, "send requests on")
        text = json_text(data, f"the request data for '{topic}'")
        self.requests += 1
        reply = await self.transport.request(sender, topic, text, timeout)
        if reply is None:
            raise BusRequestError(f"no plugin answers requests on bus topic '{topic}'", code=NO_RESPONDERS)
        plugin_id, outcome = reply
        if outcome.error is not None:
            what = "timed out" if outcome.error.code == TIMED_OUT else "failed"
            raise BusRequestError(
                f"request on '{topic}' {what} in plugin '{plugin_id}': {outcome.error}", code=outcome.error.code
            )
        return outcome.value

    def find_replier(self, topic: str, route: str | None) -> Subscription | None:
        """The first replier matching `topic` (only those on the transport's `route` when given)."""
        return next((r for r in self._repliers
                     if (route is None or r.route == route) and matches(r.pattern, topic)), None)  # fmt: skip

    async def answer(self, replier: Subscription, sender: str, topic: str, data: Any, timeout: float) -> Outcome:
        """Run `replier` on a request (a guarded call with `timeout`) and count the result."""
        call = Call(replier.handler, {"topic": topic, "data": data, "sender": sender}, kind="bus")
        outcome = await self._call(replier.plugin_id, call, timeout=timeout)
        if outcome.error is None:
            replier.delivered += 1
        else:
            replier.failed += 1
        return outcome

    # state -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters: published, requests, delivered, failed, overflowed (removed subscriptions
        included), and per subscription its queue length."""
        live = self._subs + self._repliers
        totals = {name: self._removed[name] + sum(getattr(s, name) for s in live) for name in self._removed}
        return {
            "backend": self.transport.name,
            "published": self.published,
            "requests": self.requests,
            **totals,
            "subscriptions": [
                {
                    "plugin": s.plugin_id,
                    "pattern": s.pattern,
                    "handler": s.handler,
                    "queued": s.queue.qsize() if s.queue is not None else 0,
                    "delivered": s.delivered,
                    "failed": s.failed,
                    "overflowed": s.overflowed,
                }
                for s in self._subs
            ],
        }

    def view(self, plugin_id: str) -> PluginBusView:
        """What `plugin_id` sees as `ctx.bus`."""
        return PluginBusView(self, plugin_id)

    async def aclose(self) -> None:
        """Stop the transport, then cancel and await every subscriber's worker."""
        for sub in self._subs:
            sub._closed = True
        try:
            await self.transport.aclose()
        finally:
            await self.tasks.aclose()


class PluginBusView:
    """`ctx.bus` of one plugin: the bus with the plugin's id as sender (implements `BusApi`)."""

    def __init__(self, bus: Bus, plugin_id: str) -> None:
        self._bus = bus
        self.plugin_id = plugin_id

    async def publish(self, topic: str, data: Any = None) -> int:
        return await self._bus.publish(self.plugin_id, topic, data)

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        return await self._bus.request(self.plugin_id, topic, data, timeout=timeout)

    async def unsubscribe(self, pattern: str) -> int:
        return self._bus.unsubscribe(self.plugin_id, pattern)


__all__ = ["Bus", "PluginBusView", "Subscription", "check_topic", "matches"]
