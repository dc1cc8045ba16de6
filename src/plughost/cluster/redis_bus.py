"""`RedisTransport`: the bus between hosts over Redis pub/sub.

Channels: a publish on `weather.oslo` goes to `<prefix>:bus:weather.oslo`, a request to
`<prefix>:req:weather.oslo`; each host PSUBSCRIBEs one Redis pattern per distinct local
subscription (or replier) pattern — `*` and `>` segments become Redis's `*`, other glob characters
are escaped — and filters host-side (Redis's `*` also crosses dots). One subscriber connection
per host keeps Redis's per-connection order, so one subscriber gets one publisher's messages in
publish order. `publish` returns how many (host, pattern) pairs Redis handed the message to.

Delivery guarantee: at most once. Pub/sub keeps nothing: a host that is not connected when a
message is published (Redis down, the host restarting) never gets it, and a full subscriber
queue drops it as in memory (counted).

Requests: the requester publishes `{id, sender, data, timeout, reply_to}`; every host that got it
either declines (no local replier matches) or claims the request (`SET <prefix>:claim:<id> NX`) —
the first claim runs its replier through the guard and publishes the answer to the requester's
inbox (`<prefix>:inbox:<host id>`); the others decline. When every receiver declined, or Redis
reached nobody (PUBLISH returned 0), the request has no responders. A claimed request that is
not answered within its timeout plus `REPLY_GRACE_S` is a `timed_out` `BusRequestError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.core.backend import BusSink, Reply
from plughost.errors import PlugHostError
from plughost.sdk.call import PROTOCOL_ERROR, TIMED_OUT, Outcome, PluginError
from plughost.sdk.shared import BusRequestError
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

    from plughost.cluster.redis_backend import RedisBackend

log = logging.getLogger(__name__)
REPLY_GRACE_S = 1.0
"""How much longer than a request's timeout the requester waits for the replier's host."""
RECONNECT_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
_CHANNEL = {"subscribe": "bus", "reply": "req"}


def redis_glob(pattern: str) -> str:
    """The Redis PSUBSCRIBE pattern covering bus pattern `pattern` (a superset: filter after)."""
    escaped = []
    for segment in pattern.split("."):
        if segment in ("*", ">"):
            escaped.append("*")
        else:
            escaped.append("".join("\\" + c if c in "\\*?[]" else c for c in segment))
    return ".".join(escaped)


@dataclass
class _Pending:
    """A request waiting for its reply: declines are counted until PUBLISH says how many got it."""

    future: asyncio.Future[Reply | None]
    declines: int = 0
    receivers: int | None = None

    def settle_if_declined(self) -> None:
        if self.receivers is not None and self.declines >= self.receivers and not self.future.done():
            self.future.set_result(None)


@dataclass
class _Watch:
    counts: dict[str, int] = field(default_factory=dict)  # Redis pattern → local subscriptions on it
    confirmed: set[str] = field(default_factory=set)  # patterns Redis confirmed on the current connection
    asked: set[str] = field(default_factory=set)  # patterns asked for on the current connection
    inbox_ready: bool = False

    @property
    def wanted(self) -> set[str]:
        return {p for p, n in self.counts.items() if n > 0}


class RedisTransport:
    """`BusTransport` over Redis pub/sub (see the module's docstring)."""

    name = "redis"

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._sink: BusSink | None = None
        self._tasks: TaskOwner | None = None
        self._watch = _Watch()
        self._pending: dict[str, _Pending] = {}
        self._pubsub: PubSub | None = None
        self._changed = asyncio.Event()
        self._progress = asyncio.Event()
        self._inbox = backend.key("inbox", backend.host_id)
        self._bus_prefix = backend.key("bus", "")
        self._req_prefix = backend.key("req", "")
        self.connected = False
        self._opened = False

    # BusTransport ---------------------------------------------------------------------------------
    def attach(self, sink: BusSink, tasks: TaskOwner) -> None:
        self._sink = sink
        self._tasks = tasks.child("redis bus")

    async def open(self) -> None:
        assert self._tasks is not None, "attach the transport to a bus first"
        if self._opened:
            return
        self._opened = True
        self._tasks.spawn(self._receive(), name="redis bus: receive")
        self._tasks.spawn(self._follow_watches(), name="redis bus: subscribe")
        if not await self._wait_until(self._settled, self._backend.connect_timeout_s):
            await self._tasks.aclose()
            raise PlugHostError(
                f"Redis at {self._backend.where} did not confirm the bus's subscriptions within "
                f"{self._backend.connect_timeout_s} s; check the server's load and logs"
            )

    def _route(self, kind: str, pattern: str) -> str:
        """The Redis pattern a local subscription (or replier) on `pattern` is received through."""
        return self._backend.key(_CHANNEL[kind], redis_glob(pattern))

    def watch(self, kind: str, pattern: str) -> str:
        route = self._route(kind, pattern)
        self._watch.counts[route] = self._watch.counts.get(route, 0) + 1
        self._changed.set()
        return route

    def unwatch(self, kind: str, pattern: str) -> None:
        route = self._route(kind, pattern)
        self._watch.counts[route] = max(0, self._watch.counts.get(route, 0) - 1)
        self._changed.set()

    async def settle(self, timeout: float) -> bool:
        """Wait until Redis confirmed every (un)subscription so far; False at once while disconnected
        (connecting again subscribes to everything watched) and when `timeout` passes."""
        return await self._wait_until(lambda: self._settled() or not self.connected, timeout) and self.connected

    def _settled(self) -> bool:
        return self.connected and self._watch.inbox_ready and self._watch.wanted == self._watch.confirmed

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            self._progress.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def publish(self, sender: str, topic: str, text: str) -> int:
        message = _envelope({"s": sender}, text)
        try:
            return int(await self._backend.publisher.publish(self._bus_prefix + topic, message))
        except CONNECTION_ERRORS as exc:
            raise self._backend.unavailable(f"publish on '{topic}'", exc) from None

    async def request(self, sender: str, topic: str, text: str, timeout: float) -> Reply | None:
        request_id = uuid.uuid4().hex
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[request_id] = pending
        message = _envelope({"id": request_id, "s": sender, "t": timeout, "r": self._inbox}, text)
        try:
            try:
                pending.receivers = int(await self._backend.publisher.publish(self._req_prefix + topic, message))
            except CONNECTION_ERRORS as exc:
                raise self._backend.unavailable(f"request on '{topic}'", exc) from None
            pending.settle_if_declined()
            try:
                return await asyncio.wait_for(pending.future, timeout + REPLY_GRACE_S)
            except TimeoutError:
                raise BusRequestError(
                    f"request on '{topic}' timed out: no answer within {timeout} s from the host that took it "
                    "(it stopped or lost Redis)",
                    code=TIMED_OUT,
                ) from None
        finally:
            del self._pending[request_id]

    async def aclose(self) -> None:
        if self._tasks is not None:
            await self._tasks.aclose()

    # receiving -------------------------------------------------------------------------------------
    async def _receive(self) -> None:
        """Hold the subscriber connection: subscribe to everything watched, hand over what arrives,
        and after a lost connection connect again (backing off) and subscribe again."""
        failures = 0
        while True:
            pubsub = self._backend.client.pubsub()
            try:
                await pubsub.subscribe(self._inbox)
                self._watch.asked = self._watch.wanted
                if self._watch.asked:
                    await pubsub.psubscribe(*self._watch.asked)
                self._pubsub = pubsub
                self._changed.set()  # watches changed while connecting are caught up on
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if failures:
                        log.warning("bus: Redis at %s is back; subscriptions restored", self._backend.where)
                        failures = 0
                    try:
                        self._handle(message)
                    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not from a plughost host
                        log.warning("bus: ignored a malformed message on %r: %s", message.get("channel"), exc)
            except (*CONNECTION_ERRORS, RedisError) as exc:
                if not failures:
                    log.warning("bus: lost Redis at %s (%s); reconnecting", self._backend.where, exc)
                failures += 1
            finally:
                self._pubsub = None
                self.connected = self._watch.inbox_ready = False
                self._watch.confirmed.clear()
                self._progress.set()
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S)) - 1])

    async def _follow_watches(self) -> None:
        """Subscribe to patterns watched since the last time and drop the ones no longer watched."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # `_receive` subscribes to everything watched when it connects
            wanted, asked = self._watch.wanted, self._watch.asked
            try:
                if wanted - asked:
                    await pubsub.psubscribe(*(wanted - asked))
                if asked - wanted:
                    await pubsub.punsubscribe(*(asked - wanted))
                self._watch.asked = wanted
            except CONNECTION_ERRORS:
                pass  # `_receive` notices too, connects again and subscribes to everything watched

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pmessage":
            route, channel = message["pattern"].decode(), message["channel"].decode()
            if channel.startswith(self._bus_prefix):
                payload = json.loads(message["data"])
                assert self._sink is not None
                self._sink.fan_out(payload["s"], channel[len(self._bus_prefix) :], payload["d"], route)
            elif channel.startswith(self._req_prefix) and self._tasks is not None:
                topic = channel[len(self._req_prefix) :]
                self._tasks.spawn(self._answer(route, topic, json.loads(message["data"])), name=f"bus request {topic}")
        elif kind == "message":
            self._on_reply(json.loads(message["data"]))
        elif kind == "psubscribe":
            self._watch.confirmed.add(message["channel"].decode())
        elif kind == "punsubscribe":
            self._watch.confirmed.discard(message["channel"].decode())
        elif kind == "subscribe":
            self._watch.inbox_ready = self.connected = True
        self._progress.set()

    def _on_reply(self, reply: dict[str, Any]) -> None:
        pending = self._pending.get(reply.get("id", ""))
        if pending is None or pending.future.done():
            return  # a late answer (the request timed out) or a decline after another's answer
        if "n" in reply:
            pending.declines += 1
            pending.settle_if_declined()
        elif "e" in reply:
            pending.future.set_result((reply["p"], Outcome(error=PluginError.from_json(reply["e"]))))
        else:
            pending.future.set_result((reply["p"], Outcome(reply.get("v"))))

    async def _answer(self, route: str, topic: str, request: dict[str, Any]) -> None:
        """Run a request this host got: decline, or claim it, run the replier and send its answer."""
        assert self._sink is not None
        request_id, reply_to, timeout = request["id"], request["r"], float(request["t"])
        client = self._backend.client
        try:
            replier = self._sink.find_replier(topic, route)
            if replier is None or not await client.set(
                self._backend.key("claim", request_id), self._backend.host_id, nx=True,
                px=math.ceil((timeout + REPLY_GRACE_S) * 1000),
            ):  # fmt: skip
                await self._backend.publisher.publish(reply_to, json.dumps({"id": request_id, "n": 1}))
                return
            outcome = await self._sink.answer(replier, request["s"], topic, request["d"], timeout)
            reply: dict[str, Any] = {"id": request_id, "p": replier.plugin_id}
            if outcome.error is not None:
                reply["e"] = outcome.error.to_json()
            else:
                reply["v"] = outcome.value
            try:
                text = json.dumps(reply, allow_nan=False)
            except (TypeError, ValueError) as exc:
                error = PluginError(PROTOCOL_ERROR, f"its answer is not JSON ({exc})")
                text = json.dumps({"id": request_id, "p": replier.plugin_id, "e": error.to_json()})
            await self._backend.publisher.publish(reply_to, text)
        except CONNECTION_ERRORS as exc:
            log.warning("bus: could not answer a request on '%s' (Redis at %s: %s)", topic, self._backend.where, exc)


__all__ = ["REPLY_GRACE_S", "RedisTransport", "redis_glob"]


def _envelope(fields: dict[str, Any], text: str) -> str:
    """`fields` and `"d"` (the data, already JSON `text`: encoded once) as one JSON object."""
    return json.dumps(fields, separators=(",", ":"))[:-1] + ',"d":' + text + "}"
