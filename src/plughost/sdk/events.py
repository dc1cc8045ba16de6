"""Typed OneBot v11 events and their route names (QimenBot's names, see `docs/bot.md`).

`parse_event(data)` turns one wire event (a JSON object) into a `MessageEvent`, `MessageSentEvent`,
`NoticeEvent`, `RequestEvent`, `MetaEvent` or `UnknownEvent`. Every event knows its `kind`
(`message`, `message_sent`, `notice`, `request`, `meta`) and its `route` (`GroupPoke`, `Friend`,
`Heartbeat`, …); types the table does not know are delivered as `Unknown:<type>[.<sub>]`.
Fields the models do not name are kept (`model_extra`) and `raw` is the original object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from plughost.errors import PlugHostError
from plughost.sdk.message import Message

NOTICE_ROUTES: dict[str, str] = {
    "group_upload": "GroupUpload",
    "group_admin.set": "GroupAdminSet",
    "group_admin.unset": "GroupAdminUnset",
    "group_decrease.leave": "GroupDecreaseLeave",
    "group_decrease.kick": "GroupDecreaseKick",
    "group_decrease.kick_me": "GroupDecreaseKickMe",
    "group_increase.approve": "GroupIncreaseApprove",
    "group_increase.invite": "GroupIncreaseInvite",
    "group_ban.ban": "GroupBanBan",
    "group_ban.lift_ban": "GroupBanLiftBan",
    "friend_add": "FriendAdd",
    "group_recall": "GroupRecall",
    "friend_recall": "FriendRecall",
    "notify.lucky_king": "NotifyLuckyKing",
    "notify.honor": "NotifyHonor",
    "notify.msg_emoji_like": "MessageEmojiLike",
    "group_msg_emoji_like": "GroupReaction",
    "group_card": "GroupCard",
    "offline_file": "OfflineFile",
    "client_status": "ClientStatus",
    "essence.add": "EssenceAdd",
    "essence.delete": "EssenceDelete",
}
REQUEST_ROUTES: dict[str, str] = {"friend": "Friend", "group.add": "GroupAdd", "group.invite": "GroupInvite"}
META_ROUTES: dict[str, str] = {
    "lifecycle.enable": "LifecycleEnable",
    "lifecycle.disable": "LifecycleDisable",
    "lifecycle.connect": "LifecycleConnect",
    "heartbeat": "Heartbeat",
}
#: Every route name each kind can produce (besides `Unknown:…`).
ROUTES_BY_KIND: dict[str, frozenset[str]] = {
    "message": frozenset({"Group", "Private"}),
    "message_sent": frozenset({"Group", "Private"}),
    "notice": frozenset({*NOTICE_ROUTES.values(), "GroupPoke", "PrivatePoke"}),
    "request": frozenset(REQUEST_ROUTES.values()),
    "meta": frozenset(META_ROUTES.values()),
}
_TYPE_FIELD = {"notice": "notice_type", "request": "request_type", "meta_event": "meta_event_type"}


class EventParseError(PlugHostError, ValueError):
    """A wire event is not a valid OneBot v11 event object."""


def route_of(data: Mapping[str, Any]) -> tuple[str, str]:
    """`(kind, route)` of a wire event, exactly per the route table; unknown → `Unknown:<type>[.<sub>]`."""
    post_type = str(data.get("post_type", ""))
    sub = data.get("sub_type")
    if post_type in ("message", "message_sent"):
        message_type = str(data.get("message_type", ""))
        if message_type in ("group", "private"):
            return post_type, message_type.capitalize()
        return post_type, _unknown(message_type, sub)
    type_field = _TYPE_FIELD.get(post_type)
    if type_field is None:
        return post_type or "unknown", _unknown(post_type, None)
    kind = "meta" if post_type == "meta_event" else post_type
    detail = str(data.get(type_field, ""))
    table = {"notice": NOTICE_ROUTES, "request": REQUEST_ROUTES, "meta": META_ROUTES}[kind]
    if kind == "notice" and detail == "notify" and sub == "poke":
        group_id = data.get("group_id")
        is_group = isinstance(group_id, int | str) and str(group_id).isdigit() and int(group_id) != 0
        return kind, "GroupPoke" if is_group else "PrivatePoke"
    if sub:
        route = table.get(f"{detail}.{sub}")
        if route is not None:
            return kind, route
    route = table.get(detail)
    if route is not None:
        return kind, route
    return kind, _unknown(detail, sub)


def _unknown(kind: str, sub: Any) -> str:
    return f"Unknown:{kind}.{sub}" if sub else f"Unknown:{kind}"


def _as_message(value: Any) -> Message:
    return Message.parse(value)


MessageField = Annotated[Message, BeforeValidator(_as_message)]


class Sender(BaseModel):
    """Who sent a message (fields as the implementation reports them)."""

    model_config = ConfigDict(extra="allow")

    user_id: int | None = None
    nickname: str = ""
    card: str = ""
    sex: str = ""
    age: int = 0
    area: str = ""
    level: str = ""
    role: str = ""  # owner | admin | member (groups only)
    title: str = ""


class Event(BaseModel):
    """Common fields of every OneBot v11 event."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True, populate_by_name=True)
    kind: ClassVar[str] = "unknown"

    time: int = 0
    self_id: int = 0
    post_type: str = ""
    route: str = Field(default="", exclude=True)
    # The wire object lives in `__pydantic_private__` (copied, compared and pickled with the event),
    # set by `parse_event`; a declared PrivateAttr would cost every event a post-init hook.

    @property
    def raw(self) -> dict[str, Any]:
        """The event exactly as it arrived on the wire (empty for an event built in code)."""
        private = self.__pydantic_private__
        return {} if private is None else private["_raw"]

    @property
    def route_kind(self) -> str:
        return type(self).kind if type(self) is not UnknownEvent else self.post_type or "unknown"

    def dedup_key(self) -> tuple[Any, ...] | None:
        """What identifies a duplicate delivery of this event (None: never deduplicated)."""
        return None

    def to_wire(self) -> dict[str, Any]:
        """The event as a wire object (the original one when it came from the wire)."""
        return self.raw or self.model_dump(mode="json", exclude_none=True)


class MessageEvent(Event):
    """A private or group message."""

    kind: ClassVar[str] = "message"

    message_type: str = "private"
    sub_type: str = ""
    message_id: int = 0
    user_id: int = 0
    group_id: int | None = None
    message: MessageField = Field(default_factory=Message)
    raw_message: str = ""
    font: int = 0
    sender: Sender = Field(default_factory=Sender)
    anonymous: dict[str, Any] | None = None

    @property
    def is_group(self) -> bool:
        return self.message_type == "group"

    @property
    def is_private(self) -> bool:
        return self.message_type == "private"

    def plain_text(self) -> str:
        return self.message.plain_text()

    def dedup_key(self) -> tuple[Any, ...] | None:
        return (self.post_type, self.message_id) if self.message_id else None


class MessageSentEvent(MessageEvent):
    """A message the bot account itself sent (from another client)."""

    kind: ClassVar[str] = "message_sent"


class NoticeEvent(Event):
    """A notice (group upload, admin change, poke, recall, …)."""

    kind: ClassVar[str] = "notice"

    notice_type: str = ""
    sub_type: str = ""
    user_id: int | None = None
    group_id: int | None = None
    operator_id: int | None = None
    target_id: int | None = None
    message_id: int | None = None
    duration: int | None = None

    @property
    def is_group(self) -> bool:
        return bool(self.group_id)


class RequestEvent(Event):
    """A friend request or a group join/invite request; answer with `Approve` or `Reject`."""

    kind: ClassVar[str] = "request"

    request_type: str = ""
    sub_type: str = ""
    user_id: int = 0
    group_id: int | None = None
    comment: str = ""
    flag: str = ""


class MetaEvent(Event):
    """Lifecycle and heartbeat events."""

    kind: ClassVar[str] = "meta"

    meta_event_type: str = ""
    sub_type: str = ""
    status: dict[str, Any] | None = None
    interval: int | None = None


class UnknownEvent(Event):
    """An event whose `post_type` OneBot v11 does not define; delivered anyway."""


_MODELS: dict[str, type[Event]] = {
    "message": MessageEvent,
    "message_sent": MessageSentEvent,
    "notice": NoticeEvent,
    "request": RequestEvent,
    "meta_event": MetaEvent,
}


def parse_event(data: Mapping[str, Any]) -> Event:
    """Validate one wire event; raises `EventParseError` with the offending fields."""
    if not isinstance(data, Mapping):
        raise EventParseError(f"an event must be a JSON object, got {type(data).__name__}")
    post_type = data.get("post_type", "")
    model = _MODELS.get(post_type, UnknownEvent) if isinstance(post_type, str) else UnknownEvent
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        what = f"{post_type[:40]!r} event" if isinstance(post_type, str) else "event"
        raise EventParseError(f"invalid {what}: {fields}") from exc
    if isinstance(event, MessageEvent) and event.message_type == "group" and not event.group_id:
        # its answer would go to the sender in private: the group it was said in is unknown
        raise EventParseError(f"invalid {post_type!r} event: group_id: a group message needs a non-zero group_id")
    event.__dict__["route"] = route_of(data)[1]  # a field set without pydantic's __setattr__ (no validation)
    object.__setattr__(event, "__pydantic_private__", {"_raw": dict(data)})
    return event
