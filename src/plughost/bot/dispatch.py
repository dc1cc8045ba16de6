"""The bot dispatch pipeline.

adapter → `Event` → dedup (message id) → `pre_handle` interceptors in priority order (the first
block stops and skips `after_completion`; a failing interceptor fails open and counts on the
breaker) → command triggers via the command stage → or route handlers: every subscribed plugin in
priority order until a terminal answer (reply+stop, approve, reject, block) → `after_completion`
in reverse order → outbox flush (sends queued during the callbacks, in order, even if one failed).
The event's actions are posted (`BotApi.post_action`): its worker does not wait for their responses,
which are accounted for as they come; the event counts as finished once the last has come.

Each bot has a lane: a bounded queue and a fixed number of workers, so work in flight is bounded;
an event that finds the queue full is shed, counted and logged (never dropped silently).
Plugins are always called through the plugin directory's guarded `call` (timeouts, breaker),
with the same `Call` payload whatever their runtime; their outcomes are read by one codec
(`decode_allow`, `decode_answer`; sends travel in the outcome).
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from plughost.bot.answers import failure_reply, quick_operation, reply_action, request_action
from plughost.bot.channels import channel_allowed, channel_of
from plughost.bot.config import BotConfig
from plughost.bot.connection import BotConnection
from plughost.bot.conversations import ConversationBot, Conversations
from plughost.bot.lane import BotLane, EventResult
from plughost.bot.matching import CompiledMatcher, MatcherTable, MatchText
from plughost.bot.triggers import CommandInvocation, detect_command
from plughost.errors import PlugHostError
from plughost.sdk.bot import (
    SEND_ACTIONS,
    Answer,
    Approve,
    BotAnswerError,
    BotApi,
    Reject,
    Reply,
    decode_allow,
    decode_answer,
)  # fmt: skip
from plughost.sdk.call import ISOLATED, Action, Call, CallKind, Outcome, SharedPayload
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.events import Event, MessageEvent, RequestEvent
from plughost.sdk.message import Message
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.bot.dispatch")
_DESCRIPTOR = operator.attrgetter("descriptor")
ROUTE_CACHE_LIMIT = 512
_NOTHING_OFF: frozenset[str] = frozenset()


class PluginView(Protocol):
    """What the dispatcher needs to know about an enabled plugin."""

    @property
    def id(self) -> str: ...
    @property
    def descriptor(self) -> Descriptor | None: ...
    @property
    def manifest(self) -> Any: ...


class PluginDirectory(Protocol):
    """The plugin manager as seen by the dispatcher."""

    def enabled_plugins(self) -> Sequence[PluginView]:
        """Enabled plugins, highest priority first."""
        ...

    def call(self, plugin_id: str, call: Call) -> Awaitable[Outcome]:
        """A guarded call (timeout, breaker, metrics); failures are in the outcome."""
        ...


class ChatSwitchLookup(Protocol):
    """Per-chat plugin switches as the dispatcher sees them (`plughost.core.chat_switches`)."""

    def off_in(self, chat: str) -> frozenset[str]:
        """Ids of the plugins switched off in `chat` (a cached set)."""
        ...


EventRelay = Callable[[BotLane, Event], Awaitable[EventResult]]
"""Takes an event elsewhere instead of running the pipeline here (a cluster gateway, `plughost.cluster.gateway`)."""


class CommandStage(Protocol):
    """The command engine as seen by the dispatcher.

    Returns None when the invocation is not a command (the event then goes to message routes),
    a `Reply` to answer, or `Block()` when the command was handled without a reply; further
    replies and the sends the command queued go to `outbox`.
    """

    async def handle(self, invocation: CommandInvocation, bot: BotApi, outbox: list[Action]) -> Answer | None: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    plugin_id: str
    handler: str
    kind: CallKind
    channels: tuple[str, ...]
    matcher: CompiledMatcher | None = None


@dataclass
class _Index:
    """Handlers of the enabled plugins, ordered by priority (built once per plugin-set change)."""

    signature: tuple[Any, ...]
    pre_handle: list[_Entry]
    after_completion: list[_Entry]
    routes: dict[str, list[tuple[_Entry, frozenset[str]]]]
    by_route: dict[tuple[str, str, bool], list[_Entry]] = field(default_factory=dict)
    plugins: Sequence[PluginView] | None = None  # the sequence it was last checked against
    matchers: MatcherTable | None = None  # None: no plugin declares a matcher

    def for_route(self, kind: str, route: str, matchers: bool = False) -> list[_Entry]:
        """The handlers of a route in dispatch order; with `matchers`, the message matchers too
        (each plugin's matchers before its routes)."""
        key = (kind, route, matchers)
        found = self.by_route.get(key)
        if found is None:
            found = [
                e for e, names in self.routes.get(kind, ())
                if (matchers or e.matcher is None) and (not names or "*" in names or route in names)
            ]  # fmt: skip
            if len(self.by_route) < ROUTE_CACHE_LIMIT:  # `Unknown:…` names come from the wire: stay bounded
                self.by_route[key] = found
        return found


class Dispatcher:
    """Routes bot events to plugins.

    Each lane's workers are tasks of a child of `tasks` (a child of the host's owner in a `Host`).
    `start()` starts them (and those of lanes attached later), `aclose()` stops them all; on its
    own the dispatcher is an async context manager doing both.
    """

    def __init__(
        self,
        plugins: PluginDirectory,
        *,
        commands: CommandStage | None = None,
        tasks: TaskOwner | None = None,
        switches: ChatSwitchLookup | None = None,
    ) -> None:
        self.plugins = plugins
        self.commands = commands
        self.switches = switches
        """Per-chat switches: a plugin switched off in an event's chat gets none of its handlers called."""
        self.lanes: dict[str, BotLane] = {}
        self.conversations = Conversations()
        """Open conversations: a message that answers one is consumed before the pipeline runs."""
        self.tasks = tasks if tasks is not None else TaskOwner("dispatcher")
        self._index: _Index | None = None
        self._running = False
        self._detached: dict[str, BotLane] = {}  # their counters stay in status()
        self._loggers: dict[str, logging.Logger] = {}
        self._attached = asyncio.Event()
        self.connections: dict[str, BotConnection] = {}
        """Connection state of each configured bot, kept up to date by its transport."""
        self.relay: EventRelay | None = None
        """When set, each event (after dedup) goes to it instead of through the pipeline (a cluster gateway)."""

    def track_connection(self, bot_id: str, transport: str, where: str) -> BotConnection:
        """The connection state a transport reports to for `bot_id` (shown by `/status`)."""
        connection = self.connections[bot_id] = BotConnection(bot_id, transport, where)
        return connection

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the workers of every attached lane; lanes attached from now on start at once."""
        self._running = True
        for lane in self.lanes.values():
            self._start_lane(lane)

    async def aclose(self) -> None:
        """Stop every lane's workers (cancelled and awaited)."""
        self._running = False
        await self.tasks.aclose()

    # bots ---------------------------------------------------------------------------------------
    def attach(self, key: str, config: BotConfig, bot: BotApi) -> BotLane:
        """Register a connected bot; its workers start now (or when the dispatcher starts).

        A bot attached again under a key it had before continues its counters.
        """
        if key in self.lanes:
            raise PlugHostError(f"bot '{key}' is already attached to the dispatcher")
        before = self._detached.pop(key, None)
        lane = BotLane(key, config, bot, self, stats=before.stats if before is not None else None)
        self.lanes[key] = lane
        if self._running:
            self._start_lane(lane)
        self._attached.set()
        return lane

    def _start_lane(self, lane: BotLane) -> None:
        if not lane.started:
            lane.start(self.tasks.child(f"bot:{lane.key}"))

    async def wait_for_bot(self, key: str) -> BotLane:
        """Wait until a bot with this key is attached (a reverse-WS account connects) and return its lane."""
        while key not in self.lanes:
            self._attached.clear()
            await self._attached.wait()
        return self.lanes[key]

    async def detach(self, key: str) -> None:
        """Remove a bot (its connection ended): its workers are cancelled and awaited, events still
        queued are dropped; its counters stay in `status()` (as not attached)."""
        lane = self.lanes.pop(key, None)
        if lane is None:
            return
        self._detached[key] = lane
        await lane.stop()

    def status(self) -> list[dict[str, Any]]:
        """Counters of every bot, attached or not (shown by `/status`)."""
        return [lane.status() for lane in (*self.lanes.values(), *self._detached.values())]

    def status_lines(self) -> list[str]:
        """`/status` lines: each configured bot's connection, then one line per bot lane (traffic,
        shed and malformed events, failures)."""
        lines = [connection.summary() for connection in self.connections.values()]
        for row in self.status():
            gone = "" if row["attached"] else " (disconnected)"
            lines.append(
                f"bot {row['bot']}{gone}: {row['processed']} events, {row['answered']} answered, {row['shed']} shed, "
                f"{row['duplicates']} duplicates, {row['malformed']} malformed, {row['blocked']} blocked, "
                f"{row['queued']} queued, {row['in_flight']} in flight, "
                f"failures: {row['plugin_failures']} plugin / {row['send_failures']} send"
            )
        return lines

    def invalidate(self) -> None:
        """Forget the handler index (plugins changed); it is also rebuilt when the plugin set changes."""
        self._index = None

    # the pipeline ---------------------------------------------------------------------------------
    async def process(self, lane: BotLane, event: Event, *, quick: bool = False) -> EventResult:
        """Run one event through the pipeline. With `quick`, a final reply/approve/reject is returned as
        a quick operation (HTTP POST transport) instead of being sent as an action."""
        if lane.is_duplicate(event):
            lane.stats.duplicates += 1
            return EventResult("duplicate")
        if self.relay is not None:
            return await self.relay(lane, event)
        lane.stats.processed += 1
        if self.conversations.waiting and type(event) is MessageEvent and self.conversations.answer(lane.key, event):
            return EventResult("conversation")  # the answer to a prompt: consumed, not dispatched
        index = self._current_index()
        request = _EventCalls(lane, event, _request_fields(lane, event))
        channel = channel_of(event)
        if self.switches is not None:
            request.switched_off = self.switches.off_in(channel)
        result = EventResult("unhandled")

        if not await self._pre_handle(index, request, channel, result):
            lane.stats.blocked += 1
            result.status = "blocked"
        else:
            await self._handle(index, request, channel, result)
            if result.answer is not None:  # the reply goes out before after_completion runs
                lane.stats.answered += 1
                await self._apply(lane, event, result, quick)
            await self._after_completion(index, request, channel, result)
        for action in request.outbox:
            await self._post(lane, action, result)
        return result

    def _settled(self, entry: _Entry, request: _EventCalls, result: EventResult, outcome: Outcome) -> Outcome | None:
        """Take in the outcome of one handler's call: its sends join the event's outbox (also when it
        failed). None = it failed (its error is in `result.failures`). A plain function after the
        awaited call, not a coroutine around it: one coroutine less per call on the hot path."""
        if outcome.sends:
            request.outbox.extend(outcome.sends)
        error = outcome.error
        if error is None:
            return outcome
        lane = request.lane
        lane.stats.plugin_failures += 1
        result.errors.append(f"{entry.plugin_id}/{entry.handler}: {error}")
        result.failures.append(error)
        log.log(
            logging.DEBUG if error.code == ISOLATED else logging.WARNING,
            "bot '%s': plugin '%s' handler '%s' failed: %s", lane.key, entry.plugin_id, entry.handler, error,
        )  # fmt: skip
        return None

    async def _pre_handle(self, index: _Index, request: _EventCalls, channel: str, result: EventResult) -> bool:
        for entry in index.pre_handle:
            if entry.channels and not channel_allowed(entry.channels, channel):
                continue
            if entry.plugin_id in request.switched_off:
                continue
            outcome = self._settled(
                entry, request, result, await self.plugins.call(entry.plugin_id, request.call(entry))
            )
            if outcome is None:
                continue  # fail open; the guard counted the failure on the plugin's breaker
            try:
                allow = decode_allow(outcome.value)
            except BotAnswerError as exc:
                result.errors.append(f"{entry.plugin_id}/{entry.handler}: {exc}")
                continue
            if not allow:
                result.answered_by = entry.plugin_id
                return False
        return True

    async def _handle(self, index: _Index, request: _EventCalls, channel: str, result: EventResult) -> None:
        lane, event = request.lane, request.event
        if self.commands is not None and type(event) is MessageEvent and event.user_id != lane.bot.self_id:
            invocation = detect_command(event, lane.bot.self_id or event.self_id, lane.config.triggers)
            if invocation is not None:
                try:
                    answer = await self.commands.handle(invocation, self._conversing(request, result), request.outbox)
                except Exception as exc:
                    result.errors.append(f"command stage: {exc}")
                    log.exception("bot '%s': the command stage failed", lane.key)
                    answer = None
                if answer is not None:
                    result.status = "command"
                    result.answer = answer
                    return
        text, kinds = None, 0
        if index.matchers is not None and type(event) is MessageEvent and event.user_id != lane.bot.self_id:
            text = MatchText(event, lane.bot.self_id or event.self_id, lane.sent_ids)
            kinds = index.matchers.kinds(text)
        for entry in index.for_route(event.route_kind, event.route, kinds != 0):
            if entry.channels and not channel_allowed(entry.channels, channel):
                continue
            if entry.plugin_id in request.switched_off:
                continue
            matcher = entry.matcher
            if matcher is None:
                called = await self.plugins.call(entry.plugin_id, request.call(entry))
                outcome = self._settled(entry, request, result, called)
            elif matcher.bit & kinds and text is not None and (hit := matcher.hit(text)) is not None:
                extra = {"match": hit, "to_me": text.to_me}
                bot = self._conversing(request, result, entry.plugin_id)
                called = await self.plugins.call(entry.plugin_id, request.call(entry, extra, bot))
                outcome = self._settled(entry, request, result, called)
                if outcome is None and (failed := failure_reply(result.failures[-1])) is not None:
                    result.status, result.answered_by, result.answer = "matcher", entry.plugin_id, failed
                    return
            else:
                continue
            if outcome is None:
                continue
            try:
                answer = decode_answer(outcome.value)
            except BotAnswerError as exc:
                result.errors.append(f"{entry.plugin_id}/{entry.handler}: {exc}")
                continue
            if answer is None:
                continue
            result.status = "route" if matcher is None else "matcher"
            result.answered_by = entry.plugin_id
            if isinstance(answer, Reply) and not answer.stop:
                await self._post_reply(lane, event, answer, result)  # reply and continue
                continue
            result.answer = answer
            return

    def _conversing(self, request: _EventCalls, result: EventResult, plugin_id: str = "") -> ConversationBot:
        """The bot of a command or matcher call: its prompts wait in `conversations`."""
        lane, event = request.lane, request.event
        assert isinstance(event, MessageEvent)

        async def send(action: Action) -> None:
            await self._flush(lane, [action], result)

        return ConversationBot(lane.bot, self.conversations, event, bot=lane.key, capacity=lane.config.max_in_flight,
                               send=send, plugin_id=plugin_id)  # fmt: skip

    async def _after_completion(self, index: _Index, request: _EventCalls, channel: str, result: EventResult) -> None:
        for entry in reversed(index.after_completion):
            if entry.channels and not channel_allowed(entry.channels, channel):
                continue
            if entry.plugin_id in request.switched_off:
                continue
            self._settled(entry, request, result, await self.plugins.call(entry.plugin_id, request.call(entry)))

    async def _apply(self, lane: BotLane, event: Event, result: EventResult, quick: bool) -> None:
        answer = result.answer
        if quick:
            result.quick_operation = quick_operation(event, answer)
            if result.quick_operation is not None:
                return
        if isinstance(answer, Reply):
            await self._post_reply(lane, event, answer, result)
        elif isinstance(answer, Approve | Reject) and isinstance(event, RequestEvent):
            await self._post(lane, request_action(event, answer), result)

    async def _post_reply(self, lane: BotLane, event: Event, reply: Reply, result: EventResult) -> None:
        action = reply_action(event, reply)
        if action is None:
            result.errors.append(f"cannot reply to a {event.route} event: it has no chat")
            return
        await self._post(lane, action, result)

    async def _post(self, lane: BotLane, action: Action, result: EventResult) -> None:
        """Send one of an event's actions (in order, within the lane's rate limit) without holding the
        event's worker for the response: the bot reports it (`_posted`) when it comes."""
        await lane.limiter.acquire()
        result.unsettled += 1
        await lane.bot.post_action(action.action, action.params, partial(_posted, lane, action, result))

    async def _flush(self, lane: BotLane, outbox: list[Action], result: EventResult) -> None:
        """Send `outbox` in order, each action's response awaited (its failure is in `result` on return)."""
        for action in outbox:
            await lane.limiter.acquire()
            try:
                data = await lane.bot.call_action(action.action, action.params)
            except Exception as exc:
                _sent(lane, action, result, None, exc)
            else:
                _sent(lane, action, result, data, None)

    # sends outside any event --------------------------------------------------------------------------
    def lane_for(self, bot: str = "") -> BotLane | None:
        """The lane of the attached bot `bot`; with no id, the first attached bot (by id)."""
        if bot:
            return self.lanes.get(bot)
        return next((self.lanes[key] for key in sorted(self.lanes)), None)

    async def deliver(self, lane: BotLane, actions: Sequence[Action]) -> list[str]:
        """Send `actions` in order through `lane` (its rate limit applies); the errors of those that failed."""
        result = EventResult("outside")
        await self._flush(lane, list(actions), result)
        return result.errors

    def send_outside_calls(self, plugin_id: str, actions: Sequence[Action]) -> None:
        """Send bot actions a plugin made outside any event (a native plugin's `host.bot.send` from its
        own thread), in order, through the first connected bot. With no bot connected they are
        dropped with a warning (there is no chat to send them to)."""
        lane = next((self.lanes[key] for key in sorted(self.lanes)), None)
        if lane is None:
            log.warning("plugin '%s' sent %d message(s) while no bot is connected; dropped", plugin_id, len(actions))
            return
        self.tasks.spawn(self._send_outside(lane, plugin_id, list(actions)), name=f"sends of {plugin_id}")

    async def _send_outside(self, lane: BotLane, plugin_id: str, actions: list[Action]) -> None:
        result = EventResult("outside")
        await self._flush(lane, actions, result)
        for error in result.errors:
            log.warning("bot '%s': a send of plugin '%s' failed: %s", lane.key, plugin_id, error)

    # plugin index --------------------------------------------------------------------------------
    def _current_index(self) -> _Index:
        plugins = self.plugins.enabled_plugins()
        index = self._index
        if index is not None and index.plugins is plugins:  # the directory hands out the same sequence
            return index
        signature = tuple(map(_DESCRIPTOR, plugins))  # same descriptor objects in the same order: same index
        if index is None or index.signature != signature:
            index = self._index = build_index(plugins, signature)
        index.plugins = plugins
        return index

    def _logger(self, plugin_id: str) -> logging.Logger:
        logger = self._loggers.get(plugin_id)
        if logger is None:
            logger = self._loggers[plugin_id] = logging.getLogger(f"plughost.plugin.{plugin_id}")
        return logger


def _sent(lane: BotLane, action: Action, result: EventResult, data: Any, error: Exception | None) -> None:
    """Account for one of an event's actions once its response (or failure) is known."""
    if error is not None:
        result.errors.append(f"{action.action}: {error}")
        lane.send_failed(action.action, error)
        return
    result.sent.append(action)
    if action.action in SEND_ACTIONS:
        lane.remember_sent(data)


def _posted(lane: BotLane, action: Action, result: EventResult, data: Any, error: Exception | None) -> None:
    _sent(lane, action, result, data, error)
    result.settle_one()


def build_index(plugins: Sequence[PluginView], signature: tuple[Any, ...]) -> _Index:
    pre: list[_Entry] = []
    after: list[_Entry] = []
    routes: dict[str, list[tuple[_Entry, frozenset[str]]]] = {}
    compiled: list[CompiledMatcher] = []
    for plugin in plugins:
        descriptor = plugin.descriptor
        if descriptor is None:
            continue
        channels = tuple(_channels(plugin))
        for interceptor in descriptor.interceptors:
            entry = _Entry(plugin.id, interceptor.handler, interceptor.stage, channels)
            (pre if interceptor.stage == "pre_handle" else after).append(entry)
        for spec in descriptor.matchers:  # before the plugin's own message routes
            matcher = CompiledMatcher(plugin.id, spec)
            compiled.append(matcher)
            routes.setdefault("message", []).append(
                (_Entry(plugin.id, spec.handler, "matcher", channels, matcher), frozenset())
            )
        for route in descriptor.routes:
            routes.setdefault(route.kind, []).append(
                (_Entry(plugin.id, route.handler, "route", channels), frozenset(route.events))
            )
    return _Index(signature, pre, after, routes, matchers=MatcherTable(compiled) if compiled else None)


def _channels(plugin: PluginView) -> list[str]:
    manifest = plugin.manifest
    permissions = getattr(manifest, "permissions", None)
    return list(getattr(permissions, "channels", None) or [])


class _EventCalls:
    """One event on its way through the pipeline: the payload every handler gets (built once),
    its calls, the outbox its handlers' sends collect in, and the plugins switched off in its chat
    (every stage skips their handlers)."""

    __slots__ = ("event", "lane", "outbox", "payload", "switched_off")

    def __init__(self, lane: BotLane, event: Event, payload: SharedPayload) -> None:
        self.lane = lane
        self.event = event
        self.payload = payload
        self.outbox: list[Action] = []
        self.switched_off: frozenset[str] = _NOTHING_OFF

    def call(self, entry: _Entry, extra: Mapping[str, Any] | None = None, bot: BotApi | None = None) -> Call:
        payload = self.payload if extra is None else SharedPayload({**self.payload, **extra})
        return Call(entry.handler, payload, entry.kind, self.event, bot or self.lane.bot)


def _request_fields(lane: BotLane, event: Event) -> SharedPayload:
    fields = {**(event.__pydantic_extra__ or {}), **event.__dict__}  # the model's own fields win, as getattr's
    sender = fields.get("sender")
    message = fields.get("message")
    return SharedPayload(
        {
            "kind": event.route_kind,
            "route": event.route,
            "bot_id": lane.key,
            "self_id": event.self_id or lane.bot.self_id,
            "sender_id": str(fields.get("user_id") or ""),
            "group_id": str(fields.get("group_id") or ""),
            "message_text": message.plain_text() if isinstance(message, Message) else "",
            "sender_nickname": getattr(sender, "nickname", "") if sender is not None else "",
            "message_id": str(fields.get("message_id") or ""),
            "timestamp": event.time,
            "event": event.raw,
        }
    )
