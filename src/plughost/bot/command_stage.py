"""The dispatcher's command stage backed by the command engine (`CommandService`)."""

from __future__ import annotations

from typing import Any

from plughost.bot.answers import reply_action
from plughost.bot.commands.engine import Triggered
from plughost.bot.commands.results import CommandResult, ResultKind
from plughost.bot.commands.service import CommandService
from plughost.bot.triggers import CommandInvocation
from plughost.sdk.bot import Answer, Block, BotApi, Reply
from plughost.sdk.call import Action
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message
from plughost.sdk.senders import CommandSender, GroupRole

_ROLES: dict[str, GroupRole] = {"owner": "owner", "admin": "admin", "member": "member"}


def sender_of(event: MessageEvent, bot_self_id: int | None = None) -> CommandSender:
    """The command sender of a chat message: group member, friend, temp chat or stranger."""
    sender = event.sender
    nickname = sender.card or sender.nickname
    bot_id = bot_self_id or event.self_id or None
    raw: dict[str, Any] = event.raw
    if event.is_group and event.group_id:
        role: GroupRole = _ROLES.get(sender.role, "member")
        return CommandSender("member", event.user_id, event.group_id, nickname, bot_id, role, event=raw)
    if event.sub_type == "friend":
        return CommandSender.friend(event.user_id, nickname=nickname, bot_id=bot_id)
    group_id = (sender.model_extra or {}).get("group_id") or raw.get("temp_source") or raw.get("group_id")
    if event.sub_type == "group" and isinstance(group_id, int) and group_id:
        return CommandSender.temp(group_id, event.user_id, nickname=nickname, bot_id=bot_id)
    return CommandSender.stranger(event.user_id, nickname=nickname, bot_id=bot_id)


def _addressed_chat(invocation: CommandInvocation, result: CommandResult) -> bool:
    """A message that starts with @bot and no command prefix, whose first word is not a command."""
    return invocation.trigger == "mention" and not invocation.prefix and result.kind is ResultKind.UNKNOWN_COMMAND


class EngineCommandStage:
    """Runs triggered messages through the command engine and turns results into answers.

    Not a command → None (the event goes on to message routes); unknown commands stay silent in
    chat unless the engine produced a reply — or, when the message starts with @bot and the
    service has an `addressed` handler (the agent), that handler answers it; wrong scope → handled
    silently (`Block`); every other outcome replies (first reply as the answer, further replies
    queued in order).
    """

    def __init__(self, service: CommandService) -> None:
        self.service = service
        self._bare_for: tuple[list[Any] | None, bool] = (None, True)  # (command list, any prefix-optional)

    def _bare_commands_exist(self, commands: list[Any]) -> bool:
        seen, found = self._bare_for
        if seen is not commands:  # the registry was rebuilt
            found = any(node.spec.prefix_optional for node in commands)
            self._bare_for = (commands, found)
        return found

    async def handle(self, invocation: CommandInvocation, bot: BotApi, outbox: list[Action]) -> Answer | None:
        event = invocation.event
        bare = invocation.trigger == "bare" and not invocation.any_command
        engine = self.service.refresh()
        if bare and not self._bare_commands_exist(engine.registry.commands):
            return None  # ordinary chat text and no command accepts it without a prefix
        sender = sender_of(event, bot.self_id or None)
        result = await engine.run(sender, Triggered(invocation.text, bare=bare), event.message, bot, event)
        addressed = self.service.addressed
        if addressed is not None and _addressed_chat(invocation, result):  # "@bot <not a command>"
            result = CommandResult(ResultKind.SUCCESS, await addressed(sender, invocation.text, event, bot))
        return self._answer(result, event, outbox)

    @staticmethod
    def _answer(result: CommandResult, event: MessageEvent, outbox: list[Action]) -> Answer | None:
        if result.kind is ResultKind.NOT_A_COMMAND:
            return None
        replies: list[Message | None] = [*result.replies] or [None]
        first, *rest = replies
        for message in filter(None, rest):  # sent in order after the first reply, with the handler's sends
            action = reply_action(event, Reply(message))
            if action is not None:
                outbox.append(action)
        outbox.extend(result.sends)
        if first is None:
            return None if result.kind is ResultKind.UNKNOWN_COMMAND else Block()
        return Reply(first)
