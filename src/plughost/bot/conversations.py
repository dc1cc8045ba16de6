"""Conversations in the host: a handler's `prompt` waits here for the same user's next message.

A command or matcher call gets a `ConversationBot`: the bot action `conversation.prompt` (what
`ctx.prompt` sends, in-process or from a worker over its invoke lane) sends the question to the
event's chat and waits on a future keyed by (bot, chat, user). The dispatcher hands the next
message of that user in that chat to the future (`answer`) before anything else sees it; it is
consumed, not dispatched. Typed prompts parse the answer with the command engine's parsers and
re-ask on a parse error. Failures are answers (`{"error": {"code", "message"}}`) that the SDK
raises as `ConversationError`s, so they read the same from every runtime.

Bounds: at most `per_plugin` open conversations per plugin (a new one times the oldest out), and
at most half the lane's workers waiting at once per bot (a waiting handler holds a worker; the
other half keeps serving, so answers always find a worker). A second prompt for a user who
already answers one in that chat is refused. Disabling, unloading or reloading a plugin cancels
its conversations (`cancel_plugin`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from plughost.bot.answers import reply_action
from plughost.bot.channels import channel_of
from plughost.bot.commands.parsers import ParserRegistry
from plughost.sdk.binding import jsonable
from plughost.sdk.bot import BotApi, Reply
from plughost.sdk.call import Action
from plughost.sdk.commands import CommandArgumentError
from plughost.sdk.conversations import PROMPT_ACTION
from plughost.sdk.deadlines import CallDeadlines
from plughost.sdk.descriptor import ParamSpec
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message

log = logging.getLogger("plughost.bot.conversations")
PER_PLUGIN = 16
MAX_PROMPT_TIMEOUT_S = 3600.0
Key = tuple[str, str, int]  # (bot, chat, user)
Send = Callable[[Action], Awaitable[None]]


class _Waiting:
    __slots__ = ("future", "plugin_id")

    def __init__(self, plugin_id: str, future: asyncio.Future[Message]) -> None:
        self.plugin_id = plugin_id
        self.future = future


class _Ended(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Conversations:
    """Every open conversation of the dispatcher's bots."""

    def __init__(self, *, per_plugin: int = PER_PLUGIN, parsers: ParserRegistry | None = None) -> None:
        self.per_plugin = per_plugin
        self.parsers = parsers if parsers is not None else ParserRegistry()
        self.waiting: dict[Key, _Waiting] = {}
        self._by_plugin: dict[str, OrderedDict[Key, _Waiting]] = {}
        self._by_bot: dict[str, int] = {}
        self._watchers: dict[Key, list[asyncio.Future[None]]] = {}

    def next_question(self, key: Key) -> asyncio.Future[None]:
        """A future done when a handler next waits for an answer of `key` (bot, chat, user); cancel it when
        no longer wanted. (The console's chat simulation waits on it: a prompt hands the console back.)"""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        watchers = self._watchers.setdefault(key, [])
        watchers.append(future)
        future.add_done_callback(lambda done: self._unwatch(key, done))
        return future

    def _unwatch(self, key: Key, future: asyncio.Future[None]) -> None:
        watchers = self._watchers.get(key)
        if watchers is not None and future in watchers:
            watchers.remove(future)
            if not watchers:
                del self._watchers[key]

    def answer(self, bot: str, event: MessageEvent) -> bool:
        """Hand `event` to the conversation waiting for its user in its chat; True when one took it."""
        waiting = self.waiting.get((bot, channel_of(event), event.user_id))
        if waiting is None or waiting.future.done():
            return False
        waiting.future.set_result(event.message)
        return True

    def cancel_plugin(self, plugin_id: str, why: str) -> int:
        """End the plugin's open conversations (`ConversationCancelled` in its handlers): how many."""
        open_ = list(self._by_plugin.get(plugin_id, {}).values())
        for waiting in open_:
            if not waiting.future.done():
                waiting.future.set_exception(_Ended("cancelled", f"the conversation ended: plugin '{plugin_id}' {why}"))
        return len(open_)

    async def ask(
        self, plugin_id: str, bot: str, capacity: int, event: MessageEvent, params: Mapping[str, Any], send: Send
    ) -> dict[str, Any]:
        """Run one prompt: ask, wait, parse (re-asking up to `retries` times); the JSON answer."""
        try:
            timeout = float(params.get("timeout") or 60.0)
            retries = int(params.get("retries") or 0)
            type_name = str(params.get("type") or "str")
            if not 0 < timeout <= MAX_PROMPT_TIMEOUT_S:
                raise ValueError(f"timeout must be within (0, {MAX_PROMPT_TIMEOUT_S:g}] seconds")
            if type_name != "message" and self.parsers.get(type_name) is None:
                raise ValueError(f"no parser for type {type_name!r}")
            question = Message.parse(params["message"]) if params.get("message") else None
        except (TypeError, ValueError) as exc:
            return _error("refused", f"invalid prompt: {exc}")
        key = (bot, channel_of(event), event.user_id)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            waiting = self._open(plugin_id, key, capacity)  # before asking: an answer may come at once
        except _Ended as refused:
            return _error(refused.code, str(refused))
        try:
            for attempt in range(retries + 1):
                if question is not None:
                    await _say(send, event, question)
                self._waits_for(key)
                answer = await _answer(waiting.future, deadline, timeout)
                if type_name == "message":
                    return {"value": None, "message": answer.to_json()}
                try:
                    return {"value": jsonable(self._parse(type_name, answer)), "message": answer.to_json()}
                except CommandArgumentError as exc:
                    if attempt == retries:
                        return _error("unparsed", f"no valid answer after {retries + 1} tries: {exc}")
                    waiting.future = asyncio.get_running_loop().create_future()
                    await _say(send, event, Message(f"{exc}; please try again."))
        except _Ended as ended:
            return _error(ended.code, str(ended))
        finally:
            self._close(plugin_id, key, waiting)
        return _error("unparsed", "no valid answer")  # not reached: the loop returns

    def _open(self, plugin_id: str, key: Key, capacity: int) -> _Waiting:
        if key in self.waiting:
            other = self.waiting[key].plugin_id
            raise _Ended("refused", f"this user is already answering a question of plugin '{other}' in this chat")
        bot, limit = key[0], max(1, capacity // 2)
        if self._by_bot.get(bot, 0) >= limit:
            raise _Ended("refused", f"too many conversations are open on bot '{bot}' (at most {limit})")
        mine = self._by_plugin.setdefault(plugin_id, OrderedDict())
        if len(mine) >= self.per_plugin:  # the oldest times out first
            oldest = next(iter(mine.values()))
            if not oldest.future.done():
                oldest.future.set_exception(_Ended("timed_out", f"timed out: plugin '{plugin_id}' opened more "
                                                   f"than {self.per_plugin} conversations"))  # fmt: skip
        waiting = _Waiting(plugin_id, asyncio.get_running_loop().create_future())
        self.waiting[key] = mine[key] = waiting
        self._by_bot[bot] = self._by_bot.get(bot, 0) + 1
        return waiting

    def _waits_for(self, key: Key) -> None:
        """The handler asked `key` and now waits for the answer: wake `next_question` watchers."""
        for watcher in list(self._watchers.get(key, ())):
            if not watcher.done():
                watcher.set_result(None)

    def _close(self, plugin_id: str, key: Key, waiting: _Waiting) -> None:
        if self.waiting.get(key) is waiting:
            del self.waiting[key]
        mine = self._by_plugin.get(plugin_id)
        if mine is not None and mine.get(key) is waiting:
            del mine[key]
            if not mine:
                self._by_plugin.pop(plugin_id, None)
        self._by_bot[key[0]] -= 1

    def _parse(self, type_name: str, answer: Message) -> Any:
        parser = self.parsers.get(type_name)
        assert parser is not None  # checked before asking
        others = [s for s in answer if s.type != "text"]
        argument: Any = others[0] if others else answer.plain_text().strip()
        if argument == "":
            raise CommandArgumentError("expected an answer, got an empty message")
        return parser(argument, ParamSpec("answer", type_name))


async def _answer(future: asyncio.Future[Message], deadline: float, timeout: float) -> Message:
    try:
        async with asyncio.timeout_at(deadline):
            return await future
    except TimeoutError:
        raise _Ended("timed_out", f"no answer within {timeout:g} s") from None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _say(send: Send, event: MessageEvent, message: Message) -> None:
    action = reply_action(event, Reply(message))
    if action is not None:
        await send(action)


class ConversationBot(BotApi):
    """The bot of a command or matcher call: `conversation.prompt` runs in `conversations`, every
    other action on the lane's bot."""

    def __init__(
        self,
        target: BotApi,
        conversations: Conversations,
        event: MessageEvent,
        *,
        bot: str,
        capacity: int,
        send: Send,
        plugin_id: str = "",
    ) -> None:
        self.target = target
        self.bot_id, self.self_id = target.bot_id, target.self_id
        self.conversations = conversations
        self.event = event
        self.bot = bot
        self.capacity = capacity
        self.send = send
        self.plugin_id = plugin_id
        self.deadlines = CallDeadlines()
        """The call's deadlines (the guard's, a worker lane's): stopped while a prompt waits."""

    def for_plugin(self, plugin_id: str) -> BotApi:
        """This bot for a call of `plugin_id` (whose conversations it counts)."""
        bot = ConversationBot(self.target, self.conversations, self.event, bot=self.bot, capacity=self.capacity,
                              send=self.send, plugin_id=plugin_id)  # fmt: skip
        bot.deadlines = self.deadlines  # the same call: the same deadlines
        return bot

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        if action == PROMPT_ACTION:
            with self.deadlines.paused():  # waiting for a person is not the plugin's time
                return await self.conversations.ask(
                    self.plugin_id, self.bot, self.capacity, self.event, params or {}, self.send
                )
        return await self.target.call_action(action, params, timeout=timeout)


__all__ = ["ConversationBot", "Conversations"]
