"""`EventGateway`: the node holding the OneBot connections relays their events to the workers
and performs the actions the workers send back (`plughost.cluster.events`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from plughost.bot.lane import BotLane, EventResult
from plughost.cluster.events import GATEWAY_GROUP, WORKERS_GROUP, entries_read
from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.sdk.call import Action

if TYPE_CHECKING:
    from plughost.bot.dispatch import Dispatcher
    from plughost.cluster.events import EventStreamKeys
    from plughost.cluster.redis_backend import RedisBackend
    from plughost.cluster.settings import ClusterSettings
    from plughost.sdk.events import Event
    from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.cluster.gateway")
ACTION_BATCH = 256
READ_BLOCK_MS = 1000
RETRY_DELAY_S = 1.0
REPLY_TTL_S = 120

# KEYS: events stream, stats hash. ARGV: max backlog, bot, gateway, event id, event JSON.
# The stream holds only events not yet handled (workers delete what they acknowledge), so its
# length is the backlog; MAXLEN ~ is a safety net far beyond it.
RELAY_SCRIPT = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], 'shed', 1)
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[1]) * 2, '*',
           'bot', ARGV[2], 'gateway', ARGV[3], 'id', ARGV[4], 'event', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'relayed', 1)
return 1
"""


class EventGateway:
    """Relays every event of this node's bots to the event stream; performs the workers' actions.

    `start` sets itself as the dispatcher's relay, creates the consumer groups and starts reading
    the action stream `<prefix>:bot:actions:<node>`. An event that finds the stream's backlog at
    `[cluster] max_backlog` (or Redis unreachable) is shed and counted on its bot's lane like a full
    queue. Actions are acknowledged after they were performed, so actions left by a gateway that
    stopped are performed when it starts again.
    """

    holds_connections = True

    def __init__(
        self, backend: RedisBackend, keys: EventStreamKeys, settings: ClusterSettings, dispatcher: Dispatcher,
        *, node: str,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.keys = keys
        self.settings = settings
        self.dispatcher = dispatcher
        self.node = node
        self.action_stream = keys.actions(node)
        self.relayed = 0
        self.shed = 0
        self.performed = 0
        self.failed_actions = 0
        self._ids = itertools.count(1)
        self._id_prefix = f"{node}:{os.getpid()}:{os.urandom(4).hex()}"
        self._relay_script = backend.client.register_script(RELAY_SCRIPT)

    async def start(self, tasks: TaskOwner) -> None:
        await ensure_group(self.backend, self.keys.events, WORKERS_GROUP)
        await ensure_group(self.backend, self.action_stream, GATEWAY_GROUP)
        self.dispatcher.relay = self.relay
        tasks.spawn(self._perform_actions(), name=f"cluster gateway {self.node}: actions")

    async def aclose(self) -> None:
        self.dispatcher.relay = None

    def status_lines(self) -> list[str]:
        return [
            f"cluster gateway '{self.node}': {self.relayed} events relayed, {self.shed} shed; "
            f"{self.performed} actions performed, {self.failed_actions} failed"
        ]

    async def relay(self, lane: BotLane, event: Event) -> EventResult:
        """Put `event` on the stream (the dispatcher's relay)."""
        event_id = f"{self._id_prefix}:{next(self._ids)}"
        try:
            added = await self._relay_script(
                keys=[self.keys.events, self.keys.stats],
                args=[self.settings.max_backlog, lane.key, self.node, event_id, json.dumps(event.raw)],
            )
        except (*CONNECTION_ERRORS, RedisError) as exc:
            log.error("bot '%s': an event was shed: Redis at %s is unreachable (%s)", lane.key, self.backend.where, exc)
            added = 0
        if not added:
            self.shed += 1
            lane.count_shed()
            return EventResult("failed")
        self.relayed += 1
        return EventResult("relayed")

    async def _perform_actions(self) -> None:
        """Perform the actions on the action stream: first those left pending by a previous run, then new ones."""
        start = "0"  # this consumer's pending entries, then ">"
        while True:
            try:
                start = await self._perform_batch(start)
            except (*CONNECTION_ERRORS, RedisError) as exc:
                log.warning("cluster gateway '%s': reading actions failed (%s); retrying", self.node, exc)
                await asyncio.sleep(RETRY_DELAY_S)
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):  # Redis restarted empty
                    await self._recreate_groups()

    async def _perform_batch(self, start: str) -> str:
        """Read and perform one batch; returns where the next read starts."""
        client = self.backend.client
        found = await client.xreadgroup(
            GATEWAY_GROUP, self.node, {self.action_stream: start}, count=ACTION_BATCH,
            block=None if start == "0" else READ_BLOCK_MS,
        )  # fmt: skip
        entries = entries_read(found)
        if not entries:
            return ">"
        async with asyncio.TaskGroup() as group:  # one event's actions in order; events side by side
            for _, fields in entries:
                group.create_task(self._perform(fields))
        ids = [entry_id for entry_id, _ in entries]
        async with client.pipeline(transaction=True) as pipe:
            pipe.xack(self.action_stream, GATEWAY_GROUP, *ids)
            pipe.xdel(self.action_stream, *ids)
            await pipe.execute()
        return start

    async def _recreate_groups(self) -> None:
        try:
            await ensure_group(self.backend, self.keys.events, WORKERS_GROUP)
            await ensure_group(self.backend, self.action_stream, GATEWAY_GROUP)
        except (*CONNECTION_ERRORS, RedisError):
            pass

    async def _perform(self, fields: dict[bytes, bytes]) -> None:
        try:
            bot = fields[b"bot"].decode()
            actions = [Action(a["action"], a.get("params") or {}) for a in json.loads(fields[b"actions"])]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            log.error("cluster gateway '%s': dropped an unreadable action entry (%s: %s)",
                      self.node, type(exc).__name__, exc)  # fmt: skip
            return
        reply = fields.get(b"reply")
        lane = self.dispatcher.lanes.get(bot)
        if reply is not None:
            await self._answer(reply.decode(), lane, bot, actions[0])
            return
        if lane is None:
            self.failed_actions += len(actions)
            log.warning("cluster gateway '%s': bot '%s' is not connected; %d action(s) dropped",
                        self.node, bot, len(actions))  # fmt: skip
            return
        errors = await self.dispatcher.deliver(lane, actions)
        self.performed += len(actions) - len(errors)
        self.failed_actions += len(errors)

    async def _answer(self, reply_key: str, lane: BotLane | None, bot: str, action: Action) -> None:
        """Perform a query and push its answer (or its error) to the asking worker."""
        answer: dict[str, Any]
        if lane is None:
            answer = {"error": f"bot '{bot}' is not connected to gateway '{self.node}'", "retcode": -1}
        else:
            try:
                answer = {"data": await lane.bot.call_action(action.action, action.params)}
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                answer = {"error": str(exc), "retcode": getattr(exc, "retcode", -1)}
        try:
            async with self.backend.client.pipeline(transaction=True) as pipe:
                pipe.rpush(reply_key, json.dumps(answer))
                pipe.expire(reply_key, REPLY_TTL_S)
                await pipe.execute()
        except (*CONNECTION_ERRORS, RedisError) as exc:  # the asking worker times out
            log.warning("cluster gateway '%s': answering %s failed (%s)", self.node, action.action, exc)


async def ensure_group(backend: RedisBackend, stream: str, group: str) -> None:
    """Create consumer group `group` on `stream` (and the stream) unless it exists."""
    try:
        await backend.client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


__all__ = ["EventGateway", "ensure_group"]
