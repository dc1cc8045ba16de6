"""`EventWorker`: a node that handles the events gateways put on the event stream, exactly once
(`plughost.cluster.events`, docs/cluster.md)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from plughost.bot.config import BotConfig
from plughost.bot.errors import ActionFailed, ActionTimeout
from plughost.cluster.events import WORKERS_GROUP, StreamEntry, entries_read, is_query
from plughost.cluster.gateway import ensure_group
from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.sdk.bot import BotApi
from plughost.sdk.events import parse_event

if TYPE_CHECKING:
    from plughost.bot.config import BotSettings
    from plughost.bot.dispatch import Dispatcher
    from plughost.bot.lane import BotLane
    from plughost.cluster.events import EventStreamKeys
    from plughost.cluster.redis_backend import RedisBackend
    from plughost.cluster.settings import ClusterSettings
    from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.cluster.worker")
READ_BLOCK_MS = 1000
RETRY_DELAY_S = 1.0
ACTIONS_MAXLEN = 100_000

# KEYS: events stream, stats hash, done marker, the gateway's action stream.
# ARGV: group, entry id, done TTL (s), bot, event id, actions JSON ("" = none).
# The first commit of an event adds its actions and marks it done; a later one (the event was
# taken over from a node thought dead, which finished after all) only acknowledges it.
COMMIT_SCRIPT = """
local first = redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3])
if first then
  if ARGV[6] ~= '' then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'bot', ARGV[4], 'id', ARGV[5], 'actions', ARGV[6])
  end
  redis.call('HINCRBY', KEYS[2], 'handled', 1)
else
  redis.call('HINCRBY', KEYS[2], 'repeated', 1)
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if first then return 1 end
return 0
"""

_PENDING: contextvars.ContextVar[list[dict[str, Any]]] = contextvars.ContextVar("plughost_cluster_pending")
"""The actions of the event the current task handles (committed with its acknowledgement)."""


class RelayedBot(BotApi):
    """The bot a worker's pipeline sees: actions go back to the gateway holding the connection.

    While an event is handled, an action that changes something (`send_group_msg`, `set_group_ban`…)
    is held and committed with the event (it returns None: no message id); a query (`get_*`,
    `can_*`) is performed at once by the gateway and its answer awaited (`ActionTimeout` after the
    bot's `action_timeout_s`). Outside an event (a schedule) every action is sent at once.
    """

    def __init__(self, worker: EventWorker, bot_id: str, gateway: str, timeout: float) -> None:
        self.worker = worker
        self.bot_id = bot_id
        self.gateway = gateway
        self.timeout = timeout

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        request = {"action": action, "params": dict(params or {})}
        if is_query(action):
            return await self.worker.ask(self, request, timeout or self.timeout)
        pending = _PENDING.get(None)
        if pending is None:
            await self.worker.send_now(self, [request])
        else:
            pending.append(request)
        return None


class EventWorker:
    """Reads the event stream in the consumer group `workers` and handles each event once.

    Up to `[cluster] concurrency` events are handled at once. Events another node read but did
    not acknowledge within `claim_idle_ms` (it died, or is stuck) are taken over (XAUTOCLAIM). Each
    event's actions are committed with its acknowledgement (`COMMIT_SCRIPT`); its done marker
    keeps a taken-over event's actions from being sent twice.
    """

    holds_connections = False

    def __init__(
        self, backend: RedisBackend, keys: EventStreamKeys, settings: ClusterSettings, dispatcher: Dispatcher,
        bots: BotSettings, *, node: str,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.keys = keys
        self.settings = settings
        self.dispatcher = dispatcher
        self.configs = {bot.id: bot for bot in bots.bots}
        self.node = node
        self.consumer = f"{node}:{uuid.uuid4().hex[:8]}"
        """This process's name in the consumer group (a restarted node is a new consumer)."""
        self.handled = 0
        self.repeated = 0
        self.claimed = 0
        self.failed_commits = 0
        self._bots: dict[str, RelayedBot] = {}
        self._in_flight = 0
        self._room = asyncio.Event()
        self._tasks: TaskOwner | None = None
        self._commit = backend.client.register_script(COMMIT_SCRIPT)

    async def start(self, tasks: TaskOwner) -> None:
        await ensure_group(self.backend, self.keys.events, WORKERS_GROUP)
        self._tasks = tasks
        tasks.spawn(self._read(), name=f"cluster worker {self.consumer}: read")
        tasks.spawn(self._claim(), name=f"cluster worker {self.consumer}: claim")

    async def aclose(self) -> None:
        """Nothing to do: the host closes the tasks; events in flight stay unacknowledged and are
        taken over by another node after `claim_idle_ms`."""

    def status_lines(self) -> list[str]:
        return [
            f"cluster worker '{self.consumer}': {self.handled} events handled, {self.claimed} taken over, "
            f"{self.repeated} repeated (not sent again), {self.failed_commits} commits failed"
        ]

    # reading --------------------------------------------------------------------------------------
    async def _read(self) -> None:
        client = self.backend.client
        while True:
            free = await self._reserve()
            try:
                found = await client.xreadgroup(
                    WORKERS_GROUP, self.consumer, {self.keys.events: ">"}, count=free, block=READ_BLOCK_MS
                )
            except (*CONNECTION_ERRORS, RedisError) as exc:
                self._release(free)
                await self._after_error("reading events", exc)
                continue
            self._start_handling(entries_read(found), reserved=free, claimed=False)

    async def _claim(self) -> None:
        """Take over events other nodes left unacknowledged for `claim_idle_ms`."""
        client = self.backend.client
        idle = self.settings.claim_idle_ms
        while True:
            await asyncio.sleep(idle / 2000)  # an event is taken over between idle and 1.5 × idle
            cursor: bytes | str = "0-0"
            try:
                while True:
                    # not waiting for room (the reader holds it while it waits for new events): at most
                    # twice `concurrency` events are in flight
                    claimed: Any = await client.xautoclaim(
                        self.keys.events, WORKERS_GROUP, self.consumer, min_idle_time=idle, start_id=cursor,
                        count=self.settings.concurrency,
                    )  # fmt: skip
                    cursor = claimed[0]
                    entries: list[StreamEntry] = [(i, fields) for i, fields in claimed[1] if fields]  # not deleted
                    self._in_flight += len(entries)
                    if entries:
                        self.claimed += len(entries)
                        log.info("cluster worker '%s': took over %d event(s) left unacknowledged for %d ms",
                                 self.consumer, len(entries), idle)  # fmt: skip
                    self._start_handling(entries, reserved=len(entries), claimed=True)
                    if entries:
                        await client.hincrby(self.keys.stats, "claimed", len(entries))
                    if cursor in (b"0-0", "0-0"):
                        break
            except (*CONNECTION_ERRORS, RedisError) as exc:
                await self._after_error("taking over events", exc)

    async def _reserve(self) -> int:
        """Wait until fewer than `concurrency` events are in flight, then reserve every free place."""
        while self._in_flight >= self.settings.concurrency:
            self._room.clear()
            await self._room.wait()
        free = self.settings.concurrency - self._in_flight
        self._in_flight += free
        return free

    def _release(self, count: int = 1) -> None:
        self._in_flight -= count
        self._room.set()

    def _start_handling(self, entries: list[StreamEntry], *, reserved: int, claimed: bool) -> None:
        assert self._tasks is not None
        for entry_id, fields in entries:
            self._tasks.spawn(self._handle(entry_id, fields, claimed), name=f"cluster event {entry_id!r}")
        self._release(reserved - len(entries))

    async def _after_error(self, what: str, exc: BaseException) -> None:
        log.warning("cluster worker '%s': %s failed (%s); retrying", self.consumer, what, exc)
        await asyncio.sleep(RETRY_DELAY_S)
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):  # Redis restarted empty
            try:
                await ensure_group(self.backend, self.keys.events, WORKERS_GROUP)
            except (*CONNECTION_ERRORS, RedisError):
                pass

    # handling -------------------------------------------------------------------------------------
    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes], claimed: bool) -> None:
        try:
            await self._handle_entry(entry_id, fields, claimed)
        finally:
            self._release()

    async def _handle_entry(self, entry_id: bytes, fields: dict[bytes, bytes], claimed: bool) -> None:
        client = self.backend.client
        try:
            bot_key, gateway = fields[b"bot"].decode(), fields[b"gateway"].decode()
            event_id = fields[b"id"].decode()
            event = parse_event(json.loads(fields[b"event"]))
        except Exception as exc:  # never retried: acknowledged and dropped
            log.error("cluster worker '%s': dropped unreadable event entry %r (%s: %s)",
                      self.consumer, entry_id, type(exc).__name__, exc)  # fmt: skip
            async with client.pipeline(transaction=True) as pipe:
                pipe.xack(self.keys.events, WORKERS_GROUP, entry_id)
                pipe.xdel(self.keys.events, entry_id)
                await pipe.execute()
            return
        done_key = self.keys.done(event_id)
        if claimed and await client.exists(done_key):  # its first node finished after all
            await self._commit_actions(entry_id, done_key, bot_key, gateway, event_id, [])
            return
        lane = self._lane(bot_key, gateway, event.self_id)
        pending: list[dict[str, Any]] = []
        token = _PENDING.set(pending)
        try:
            await self.dispatcher.process(lane, event)
        except Exception:
            log.exception("cluster worker '%s': handling event %s failed; its actions so far are sent",
                          self.consumer, event_id)  # fmt: skip
        finally:
            _PENDING.reset(token)
        await self._commit_actions(entry_id, done_key, bot_key, gateway, event_id, pending)

    async def _commit_actions(self, entry_id: bytes, done_key: str, bot: str, gateway: str, event_id: str,
                              actions: list[dict[str, Any]]) -> None:  # fmt: skip
        try:
            first = await self._commit(
                keys=[self.keys.events, self.keys.stats, done_key, self.keys.actions(gateway)],
                args=[WORKERS_GROUP, entry_id, self.settings.done_ttl_s, bot, event_id,
                      json.dumps(actions) if actions else "", ACTIONS_MAXLEN],
            )  # fmt: skip
        except (*CONNECTION_ERRORS, RedisError) as exc:
            self.failed_commits += 1
            log.warning("cluster worker '%s': committing event %s failed (%s); another node takes it over after "
                        "%d ms", self.consumer, event_id, exc, self.settings.claim_idle_ms)  # fmt: skip
            return
        if first:
            self.handled += 1
        else:
            self.repeated += 1

    def _lane(self, bot_key: str, gateway: str, self_id: int) -> BotLane:
        """This node's lane for a gateway's bot (made on its first event)."""
        lane = self.dispatcher.lanes.get(bot_key)
        bot = self._bots.get(bot_key)
        if lane is None or bot is None:
            config = self.configs.get(bot_key.partition(":")[0]) or default_bot_config(bot_key)
            bot = self._bots[bot_key] = RelayedBot(self, bot_key, gateway, config.action_timeout_s)
            lane = self.dispatcher.attach(bot_key, config, bot)
        bot.gateway = gateway  # the gateway holding it now
        if self_id and not bot.self_id:
            bot.self_id = self_id
        return lane

    # actions back to the gateway -------------------------------------------------------------------
    async def send_now(self, bot: RelayedBot, actions: list[dict[str, Any]]) -> None:
        """Send actions made outside any event to the gateway at once."""
        await self.backend.client.xadd(
            self.keys.actions(bot.gateway), {"bot": bot.bot_id, "actions": json.dumps(actions)},
            maxlen=ACTIONS_MAXLEN, approximate=True,
        )  # fmt: skip

    async def ask(self, bot: RelayedBot, request: dict[str, Any], timeout: float) -> Any:
        """Have the gateway perform a query and wait for its answer."""
        client = self.backend.client
        reply = self.keys.reply(uuid.uuid4().hex)
        await client.xadd(
            self.keys.actions(bot.gateway), {"bot": bot.bot_id, "actions": json.dumps([request]), "reply": reply},
            maxlen=ACTIONS_MAXLEN, approximate=True,
        )  # fmt: skip
        found = await client.blpop([reply], timeout=timeout)
        if found is None:
            raise ActionTimeout(bot.bot_id, request["action"], timeout)
        answer = json.loads(found[1])
        if "error" in answer:
            raise ActionFailed(bot.bot_id, request["action"], int(answer.get("retcode") or -1), answer["error"])
        return answer.get("data")


def default_bot_config(bot_key: str) -> BotConfig:
    """The settings of a bot this worker has no `[[bots]]` entry for (defaults; no connection here)."""
    return BotConfig(id=bot_key.partition(":")[0], transport="ws-reverse", bind="127.0.0.1:0")


__all__ = ["EventWorker", "RelayedBot", "default_bot_config"]
