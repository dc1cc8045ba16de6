"""What bot handlers return and the action client they receive.

Handlers answer with `Reply` (text or segments; `stop=False` replies and lets later plugins run),
`Approve` / `Reject` (requests), `Block` (stop silently) or `None` (continue). `BotApi` is the
OneBot v11 action client: every core action as a typed method, anything else via
`custom_action`. Inside a callback, sends are queued and flushed in order after it returns.

The JSON form of an answer (`encode_answer`; read back by the host with `decode_answer`) is what
every plugin answers a route call with, whatever its runtime; see docs/architecture.md.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plughost.errors import PlugHostError
from plughost.sdk.call import Action
from plughost.sdk.message import Message, MessageBuilder, Segment, to_message

MessageLike = Message | str | Segment | Iterable[Segment]
ActionReport = Callable[[Any, Exception | None], None]
"""Told the result of an action sent with `BotApi.post_action`: `(data, None)` or `(None, error)`."""

# QimenBot's action kinds (the numeric form native plugins may return)
ACTION_IGNORE, ACTION_REPLY, ACTION_APPROVE, ACTION_REJECT, ACTION_BLOCK = 0, 1, 2, 3, 4
SEND_ACTIONS = frozenset({"send_private_msg", "send_group_msg", "send_msg"})


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with a message in the event's chat; `stop` (default) ends the dispatch of this event."""

    message: Message
    stop: bool = True
    at_sender: bool = False

    @classmethod
    def of(cls, message: MessageLike, *, stop: bool = True, at_sender: bool = False) -> Reply:
        return cls(_message(message), stop, at_sender)


@dataclass(frozen=True, slots=True)
class Approve:
    """Approve a friend or group request (with an optional friend remark)."""

    remark: str = ""


@dataclass(frozen=True, slots=True)
class Reject:
    """Reject a friend or group request (with an optional reason)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """Stop dispatching this event without answering."""


Answer = Reply | Approve | Reject | Block


class BotAnswerError(PlugHostError, ValueError):
    """A plugin returned something that is not a valid bot answer."""

    code = "invalid_answer"


def _message(value: MessageLike) -> Message:
    """`to_message`, with an empty message for nothing (what a send or a reply carries)."""
    return to_message(value) or Message()


class ReplyBuilder(MessageBuilder):
    """`ReplyBuilder().text("hi ").at(123).face(1).build()` → a `Reply`."""

    def build(self, *, stop: bool = True, at_sender: bool = False) -> Reply:
        return Reply(self.build_message(), stop, at_sender)


class SendBuilder(MessageBuilder):
    """A proactive message: `SendBuilder.group(123).text("hi").send(bot)` (or `bot.group(123)…send()`)."""

    def __init__(self, target: str, target_id: int | str, bot: BotApi | None = None) -> None:
        super().__init__()
        self.target = target
        self.target_id = int(target_id)
        self.bot = bot

    @classmethod
    def group(cls, group_id: int | str, bot: BotApi | None = None) -> SendBuilder:
        return cls("group", group_id, bot)

    @classmethod
    def private(cls, user_id: int | str, bot: BotApi | None = None) -> SendBuilder:
        return cls("private", user_id, bot)

    async def send(self, bot: BotApi | None = None) -> Any:
        """Send (or, inside a callback, queue) the message; returns the action's data when sent."""
        target_bot = bot or self.bot
        if target_bot is None:
            raise PlugHostError("SendBuilder.send() needs a bot: pass send(bot) or start from bot.group()/private()")
        if self.target == "group":
            return await target_bot.send_group_msg(self.target_id, self.build_message())
        return await target_bot.send_private_msg(self.target_id, self.build_message())


class BotApi(ABC):
    """OneBot v11 action client. Subclasses implement `call_action`; everything else builds on it."""

    bot_id: str = ""
    self_id: int = 0

    @abstractmethod
    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one action and return its `data`; raises a typed error on `failed`, timeout or disconnect."""

    async def post_action(self, action: str, params: Mapping[str, Any], report: ActionReport) -> None:
        """Send an action without waiting for its response where the transport allows: `report` is
        told its data or its error once known (never raised here). Over a WebSocket this returns when
        the frame is on its way; any other bot waits for `call_action`."""
        try:
            data = await self.call_action(action, params)
        except Exception as exc:
            report(None, exc)
        else:
            report(data, None)

    def for_plugin(self, plugin_id: str) -> BotApi:
        """The bot a call of `plugin_id` gets (the host's conversation bot counts that plugin's
        prompts); itself by default."""
        return self

    def group(self, group_id: int | str) -> SendBuilder:
        return SendBuilder.group(group_id, self)

    def private(self, user_id: int | str) -> SendBuilder:
        return SendBuilder.private(user_id, self)

    # messages -----------------------------------------------------------------------------------
    async def send_private_msg(self, user_id: int, message: MessageLike, *, auto_escape: bool = False) -> Any:
        return await self.call_action(
            "send_private_msg",
            {"user_id": int(user_id), "message": _message(message).to_json(), "auto_escape": auto_escape},
        )

    async def send_group_msg(self, group_id: int, message: MessageLike, *, auto_escape: bool = False) -> Any:
        return await self.call_action(
            "send_group_msg",
            {"group_id": int(group_id), "message": _message(message).to_json(), "auto_escape": auto_escape},
        )

    async def send_msg(
        self,
        message: MessageLike,
        *,
        message_type: str | None = None,
        user_id: int | None = None,
        group_id: int | None = None,
    ) -> Any:
        params: dict[str, Any] = {"message": _message(message).to_json()}
        for key, value in (("message_type", message_type), ("user_id", user_id), ("group_id", group_id)):
            if value is not None:
                params[key] = value
        return await self.call_action("send_msg", params)

    async def send_group_rich(self, group_id: int, segments: Iterable[Segment]) -> Any:
        return await self.send_group_msg(group_id, Message(segments))

    async def send_private_rich(self, user_id: int, segments: Iterable[Segment]) -> Any:
        return await self.send_private_msg(user_id, Message(segments))

    async def delete_msg(self, message_id: int) -> Any:
        return await self.call_action("delete_msg", {"message_id": message_id})

    async def get_msg(self, message_id: int) -> Any:
        return await self.call_action("get_msg", {"message_id": message_id})

    async def get_forward_msg(self, id: str) -> Any:
        return await self.call_action("get_forward_msg", {"id": id})

    async def send_like(self, user_id: int, times: int = 1) -> Any:
        return await self.call_action("send_like", {"user_id": user_id, "times": times})

    # group management ---------------------------------------------------------------------------
    async def set_group_kick(self, group_id: int, user_id: int, reject_add_request: bool = False) -> Any:
        return await self.call_action(
            "set_group_kick", {"group_id": group_id, "user_id": user_id, "reject_add_request": reject_add_request}
        )

    async def set_group_ban(self, group_id: int, user_id: int, duration: int = 30 * 60) -> Any:
        return await self.call_action("set_group_ban", {"group_id": group_id, "user_id": user_id, "duration": duration})

    async def set_group_whole_ban(self, group_id: int, enable: bool = True) -> Any:
        return await self.call_action("set_group_whole_ban", {"group_id": group_id, "enable": enable})

    async def set_group_admin(self, group_id: int, user_id: int, enable: bool = True) -> Any:
        return await self.call_action("set_group_admin", {"group_id": group_id, "user_id": user_id, "enable": enable})

    async def set_group_card(self, group_id: int, user_id: int, card: str = "") -> Any:
        return await self.call_action("set_group_card", {"group_id": group_id, "user_id": user_id, "card": card})

    async def set_group_name(self, group_id: int, group_name: str) -> Any:
        return await self.call_action("set_group_name", {"group_id": group_id, "group_name": group_name})

    async def set_group_leave(self, group_id: int, is_dismiss: bool = False) -> Any:
        return await self.call_action("set_group_leave", {"group_id": group_id, "is_dismiss": is_dismiss})

    async def set_group_special_title(
        self, group_id: int, user_id: int, special_title: str = "", duration: int = -1
    ) -> Any:
        return await self.call_action(
            "set_group_special_title",
            {"group_id": group_id, "user_id": user_id, "special_title": special_title, "duration": duration},
        )

    # requests -----------------------------------------------------------------------------------
    async def set_friend_add_request(self, flag: str, approve: bool = True, remark: str = "") -> Any:
        return await self.call_action("set_friend_add_request", {"flag": flag, "approve": approve, "remark": remark})

    async def set_group_add_request(self, flag: str, sub_type: str, approve: bool = True, reason: str = "") -> Any:
        return await self.call_action(
            "set_group_add_request", {"flag": flag, "sub_type": sub_type, "approve": approve, "reason": reason}
        )

    # information --------------------------------------------------------------------------------
    async def get_login_info(self) -> Any:
        return await self.call_action("get_login_info")

    async def get_stranger_info(self, user_id: int, no_cache: bool = False) -> Any:
        return await self.call_action("get_stranger_info", {"user_id": user_id, "no_cache": no_cache})

    async def get_friend_list(self) -> Any:
        return await self.call_action("get_friend_list")

    async def get_group_info(self, group_id: int, no_cache: bool = False) -> Any:
        return await self.call_action("get_group_info", {"group_id": group_id, "no_cache": no_cache})

    async def get_group_list(self) -> Any:
        return await self.call_action("get_group_list")

    async def get_group_member_info(self, group_id: int, user_id: int, no_cache: bool = False) -> Any:
        return await self.call_action(
            "get_group_member_info", {"group_id": group_id, "user_id": user_id, "no_cache": no_cache}
        )

    async def get_group_member_list(self, group_id: int) -> Any:
        return await self.call_action("get_group_member_list", {"group_id": group_id})

    async def get_status(self) -> Any:
        return await self.call_action("get_status")

    async def get_version_info(self) -> Any:
        return await self.call_action("get_version_info")

    async def custom_action(self, action: str, **params: Any) -> Any:
        """Any action the implementation offers beyond the core set."""
        return await self.call_action(action, params)


Bot = BotApi  # what handlers annotate: `async def on_poke(ev: NoticeEvent, bot: Bot)`


class CallbackBot(BotApi):
    """The bot a handler receives: sends are queued in `outbox` (they travel in the call's outcome
    and the host sends them after the callback, in order); other actions go to `target` at once."""

    def __init__(self, target: BotApi | None, *, bot_id: str = "", self_id: int = 0) -> None:
        self.target = target
        self.bot_id = target.bot_id if target is not None and target.bot_id else bot_id
        self.self_id = target.self_id if target is not None and target.self_id else self_id
        self.outbox: list[Action] = []

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        if action in SEND_ACTIONS:
            self.outbox.append(Action(action, dict(params or {})))
            return None
        if self.target is None:
            raise PlugHostError(
                f"action '{action}' needs a bot connection, and this call came without one (the console, "
                "or a transport that cannot carry bot actions back to the host)"
            )
        return await self.target.call_action(action, params, timeout=timeout)


# the JSON form of answers, the same for every runtime -------------------------------------------------
def encode_answer(answer: Any) -> dict[str, Any]:
    """A route handler's answer as JSON: `{"action": ignore|reply|approve|reject|block, …}`."""
    out: dict[str, Any]
    if answer is None:
        out = {"action": "ignore"}
    elif isinstance(answer, Reply):
        out = {"action": "reply", "segments": answer.message.to_json(), "stop": answer.stop}
        if answer.at_sender:
            out["at_sender"] = True
    elif isinstance(answer, Approve):
        out = {"action": "approve", "remark": answer.remark}
    elif isinstance(answer, Reject):
        out = {"action": "reject", "reason": answer.reason}
    elif isinstance(answer, Block):
        out = {"action": "block"}
    elif isinstance(answer, str | Message | Segment):
        out = {"action": "reply", "segments": _message(answer).to_json(), "stop": True}
    else:
        raise BotAnswerError(
            f"a bot handler returned {type(answer).__name__}; expected Reply, Approve, Reject, Block or None"
        )
    return out


def decode_answer(value: Any) -> Answer | None:
    """Read a route answer: its JSON form (plughost's, or QimenBot's numeric `action_kind`), a
    plain text or segment list (a reply), or null (continue)."""
    if value is None:
        return None
    if isinstance(value, str):
        return Reply(Message(value)) if value else None
    if isinstance(value, list):
        return Reply(_parse_segments(value)) if value else None
    if type(value) is not dict and not isinstance(value, Mapping):
        raise BotAnswerError(f"bot answer must be an object or None, got {type(value).__name__}")
    action = value.get("action", value.get("action_kind", "ignore"))
    if isinstance(action, int):
        action = {ACTION_IGNORE: "ignore", ACTION_REPLY: "reply", ACTION_APPROVE: "approve",
                  ACTION_REJECT: "reject", ACTION_BLOCK: "block"}.get(action, f"#{action}")  # fmt: skip
    message_text = str(value.get("message", "") or value.get("text", "") or "")
    match action:
        case "ignore" | "continue" | "allow" | "":
            return None
        case "reply":
            segments = value.get("segments") or value.get("segments_json") or value.get("reply")
            if isinstance(segments, str) and segments.lstrip().startswith("["):
                try:
                    segments = json.loads(segments)
                except RecursionError:
                    raise BotAnswerError("reply segments are nested too deeply to read") from None
                except ValueError as exc:
                    raise BotAnswerError(f"reply segments are not valid JSON: {exc}") from None
            elif isinstance(segments, str):  # a text reply under `reply`
                message_text, segments = message_text or segments, None
            message = _parse_segments(segments) if segments else Message(message_text)
            return Reply(message, bool(value.get("stop", True)), bool(value.get("at_sender", False)))
        case "approve":
            return Approve(str(value.get("remark", message_text) or ""))
        case "reject":
            return Reject(str(value.get("reason", message_text) or ""))
        case "block":
            return Block()
    raise BotAnswerError(f"unknown bot answer action {action!r}; expected ignore, reply, approve, reject or block")


def _parse_segments(value: Any) -> Message:
    try:
        return Message.parse(value)
    except ValueError as exc:  # MessageFormatError, CQCodeError
        raise BotAnswerError(f"reply segments are malformed: {exc}") from None


def decode_allow(value: Any) -> bool:
    """A `pre_handle` answer: a bool, `{"allow": true|false|1|0}` or `{"action": "allow"|"block"}`."""
    if value is True or value is False:
        return value
    if value is None:
        return True
    if type(value) is dict or isinstance(value, Mapping):
        if "allow" in value:
            return bool(value["allow"])
        action = value.get("action")
        if action in ("allow", "block"):
            return bool(action == "allow")
    raise BotAnswerError(f"pre_handle must answer a bool or {{'allow': bool}}, got {value!r}")
