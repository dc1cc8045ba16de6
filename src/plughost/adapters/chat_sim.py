"""Console chat simulation: try routes, interceptors, roles, scopes and chat commands without QQ.

In the console (console-only commands, see `plughost.adapters.console_commands`):

    /as group 123 456 [owner|admin|member]   type as user 456 in group 123
    /as private 456                          type as user 456 in a private chat
    /as console                              back to console commands
    /poke [target]                           the current user pokes the bot (or target)
    /friend-request [comment]                the current user asks to be the bot's friend
    /group-request [add|invite] [comment]    the current user asks to join the current group

While a chat is selected every other line is a message from that user (CQ codes allowed:
`[CQ:at,qq=10000] /help`), run through the real dispatcher on a simulated bot whose replies and
actions are printed with their segments rendered readably. A handler that asks the user something
(`ctx.prompt`) hands the console back at once: the next line typed is the answer, and the
handler goes on (its later replies are printed when they come).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plughost.bot.channels import channel_of
from plughost.bot.config import BotConfig, inherit_command_settings
from plughost.bot.lane import BotLane, EventResult
from plughost.sdk.bot import BotApi
from plughost.sdk.commands import UserError
from plughost.sdk.events import Event, parse_event
from plughost.sdk.message import Message
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.host import Host

SIM_BOT_ID = "console"
SIM_SELF_ID = 10000


class ConsoleBot(BotApi):
    """The simulated bot: prints what it is asked to do and answers like an implementation."""

    def __init__(self, output: Callable[[str], None], bot_id: str = SIM_BOT_ID) -> None:
        self.bot_id = bot_id
        self.self_id = SIM_SELF_ID
        self.output = output
        self._message_ids = itertools.count(1)

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        p = dict(params or {})
        if action in ("send_group_msg", "send_private_msg", "send_msg"):
            target = f"group {p['group_id']}" if p.get("group_id") else f"private {p.get('user_id')}"
            self.output(f"bot → {target}: {Message.parse(p.get('message')).render()}")
            return {"message_id": next(self._message_ids)}
        if action == "set_friend_add_request":
            verdict = "approved" if p.get("approve") else "rejected"
            detail = p.get("remark") if p.get("approve") else ""
            self.output(f"bot {verdict} the friend request{f' (remark: {detail})' if detail else ''}")
            return None
        if action == "set_group_add_request":
            verdict = "approved" if p.get("approve") else "rejected"
            reason = "" if p.get("approve") else p.get("reason", "")
            self.output(f"bot {verdict} the group request{f' (reason: {reason})' if reason else ''}")
            return None
        if action == "get_login_info":
            return {"user_id": SIM_SELF_ID, "nickname": "plughost"}
        self.output(f"bot action {action} {json.dumps(p, ensure_ascii=False)}")
        return None


@dataclass
class Chat:
    kind: str  # group | private
    user_id: int
    group_id: int | None = None
    role: str = "member"

    def describe(self) -> str:
        if self.kind == "group":
            return f"group {self.group_id} as {self.user_id} ({self.role})"
        return f"private chat with {self.user_id}"


class ChatSimulator:
    """Handles the simulation commands of the console and turns typed lines into chat events."""

    def __init__(self, host: Host, output: Callable[[str], None]) -> None:
        self.host = host
        self.output = output
        self.bot = ConsoleBot(output)
        self.chat: Chat | None = None
        self._lane: BotLane | None = None
        self._ids = itertools.count(int(time.time()) % 1_000_000 * 1000)
        self._owner: TaskOwner | None = None  # events whose handler waits for an answer (the host's child)
        self._asking: dict[tuple[str, str, int], asyncio.Task[Any]] = {}

    @property
    def prompt(self) -> str | None:
        """The console prompt while a chat is selected."""
        if self.chat is None:
            return None
        where = f"group {self.chat.group_id}" if self.chat.kind == "group" else "private"
        return f"{where} {self.chat.user_id}> "

    def lane(self) -> BotLane:
        if self._lane is None:
            self._lane = simulated_lane(self.host, self.bot)
        return self._lane

    # simulation commands (declared as console-only commands in `plughost.adapters.console_commands`)
    def join(self, chat: Chat | None) -> str:
        """Type as `chat`'s user from now on (None: back to console commands)."""
        self.chat = chat
        if chat is None:
            return "back to the console"
        return f"now chatting in {chat.describe()}; /as console to go back"

    async def poke(self, target: int = SIM_SELF_ID) -> None:
        await self._dispatch(poke_event(self._require_chat(), target))

    async def friend_request(self, comment: str) -> None:
        chat = self._require_chat()
        await self._dispatch(friend_request_event(chat, comment, f"sim-friend-{next(self._ids)}"))

    async def group_request(self, sub_type: str, comment: str) -> None:
        chat = self._require_chat()
        if chat.group_id is None:
            raise UserError("group requests need a group chat: /as group <group_id> <user_id>")
        await self._dispatch(group_request_event(chat, sub_type, comment, f"sim-group-{next(self._ids)}"))

    async def message(self, text: str) -> None:
        """A line typed while a chat is selected: a message from that chat's user."""
        await self._dispatch(message_event(self._require_chat(), text, next(self._ids)))

    def _require_chat(self) -> Chat:
        if self.chat is None:
            raise UserError("pick a chat first: /as group <group_id> <user_id> or /as private <user_id>")
        return self.chat

    async def _dispatch(self, wire: dict[str, Any]) -> None:
        """Run one event; return when it is handled, or when a handler asks its user something (the
        handler goes on as a task of the host, and the next line answers it)."""
        lane = self.lane()
        if wire.get("post_type") != "message":
            await self._run(lane, wire)
            return
        key = (lane.key, channel_of(parse_event(wire)), int(wire["user_id"]))
        conversations = self.host.dispatcher.conversations
        question = conversations.next_question(key)
        try:
            task = self._tasks().spawn(self._run(lane, wire), name="simulated event")
            await asyncio.wait((task, question), return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # it asked: the user answers with the next line
                self._asking[key] = task
                task.add_done_callback(
                    lambda done: self._asking.pop(key, None) if self._asking.get(key) is done else None
                )
            elif task.result() == "conversation" and (asking := self._asking.get(key)) is not None:
                await asyncio.wait((asking, question), return_when=asyncio.FIRST_COMPLETED)  # answered: its next step
        finally:
            question.cancel()

    def _tasks(self) -> TaskOwner:
        if self._owner is None:
            self._owner = self.host.tasks.child("console chat")
        return self._owner

    async def _run(self, lane: BotLane, wire: dict[str, Any]) -> str:
        event, outcome = await dispatch_simulated(self.host, lane, wire)
        if outcome.status == "blocked":
            self.output(f"(blocked by {outcome.answered_by})")
        elif outcome.status == "unhandled" and not outcome.sent:
            self.output(f"(no plugin answered the {event.route} event)")
        for error in outcome.errors:
            self.output(f"(error: {error})")
        return outcome.status


# simulated events, shared with the web console's chat sandbox --------------------------------------
def simulated_lane(host: Host, bot: ConsoleBot) -> BotLane:
    """The dispatcher lane of a simulated bot (attached on first use; commands configured as `[commands]`)."""
    lanes = host.dispatcher.lanes
    if bot.bot_id in lanes:
        return lanes[bot.bot_id]
    config = inherit_command_settings(
        BotConfig(id=bot.bot_id, transport="ws-reverse", bind="127.0.0.1:0", self_id=SIM_SELF_ID),
        host.bot_settings.commands,
    )
    return host.dispatcher.attach(bot.bot_id, config, bot)


async def dispatch_simulated(host: Host, lane: BotLane, wire: dict[str, Any]) -> tuple[Event, EventResult]:
    """Run one simulated OneBot event through the real dispatcher."""
    event: Event = parse_event({"time": int(time.time()), "self_id": SIM_SELF_ID, **wire})
    return event, await host.dispatcher.process(lane, event)


def message_event(chat: Chat, text: str, message_id: int) -> dict[str, Any]:
    """A message from the chat's user (CQ codes in `text` allowed)."""
    sender: dict[str, Any] = {"user_id": chat.user_id, "nickname": f"user{chat.user_id}"}
    event: dict[str, Any] = {
        "post_type": "message",
        "message_id": message_id,
        "user_id": chat.user_id,
        "message": text,
        "raw_message": text,
        "font": 0,
        "sender": sender,
    }
    if chat.kind == "group":
        sender["role"] = chat.role
        event.update(message_type="group", sub_type="normal", group_id=chat.group_id)
    else:
        event.update(message_type="private", sub_type="friend")
    return event


def poke_event(chat: Chat, target: int = SIM_SELF_ID) -> dict[str, Any]:
    return {
        "post_type": "notice",
        "notice_type": "notify",
        "sub_type": "poke",
        "group_id": chat.group_id or 0,
        "user_id": chat.user_id,
        "target_id": target,
    }


def friend_request_event(chat: Chat, comment: str, flag: str) -> dict[str, Any]:
    return {"post_type": "request", "request_type": "friend", "user_id": chat.user_id, "comment": comment, "flag": flag}


def group_request_event(chat: Chat, sub_type: str, comment: str, flag: str) -> dict[str, Any]:
    return {
        "post_type": "request",
        "request_type": "group",
        "sub_type": sub_type,
        "group_id": chat.group_id,
        "user_id": chat.user_id,
        "comment": comment,
        "flag": flag,
    }
