"""Which chat an event belongs to, and the manifest's `permissions.channels` rules."""

from __future__ import annotations

from collections.abc import Sequence

from plughost.sdk.events import Event, MessageEvent, NoticeEvent
from plughost.sdk.senders import CommandSender


def channel_of(event: Event) -> str:
    """The chat an event belongs to: `group:<id>`, `private:<id>`, `request`, `meta` …"""
    group_id = getattr(event, "group_id", None)
    if isinstance(event, MessageEvent | NoticeEvent) and group_id:
        return f"group:{group_id}"
    if isinstance(event, MessageEvent | NoticeEvent):
        return f"private:{getattr(event, 'user_id', 0) or 0}"
    return event.route_kind


def channel_allowed(patterns: Sequence[str], channel: str) -> bool:
    """`permissions.channels` semantics: `*` all, `group` any group, `group:123` one group, `private`,
    `private:456`, `request`, `meta`, `notice` (any notice chat). Empty = all."""
    head = channel.split(":", 1)[0]
    return any(pattern in ("*", channel, head) for pattern in patterns)


def chat_of_sender(sender: CommandSender) -> str:
    """The chat a command came from: `group:<id>` for group members, `private:<user id>` for friends,
    temp chats and strangers, `console` for the console."""
    if sender.is_console:
        return "console"
    if sender.in_group:
        return f"group:{sender.group_id}"
    return f"private:{sender.user_id}"
