"""plughost's bot methods over the C ABI: `bot.describe`, `bot.command`, `bot.route`,
`bot.matcher`, `bot.pre_handle`, `bot.after_completion`.

A bot call's request carries QimenBot's fields, every one present, built from the call's payload
(the same payload every runtime receives): `handler`, `args` (a command's argument words, as the
user typed them), `named_args`, `command_name`, `sender_id`, `group_id`, `sender_nickname`,
`message_id`, `timestamp`, the wire `event` (an object, embedded once) and `host_callback_id`;
a matcher's call also carries `match` (`{"type", "pattern", "text", "start", "end", "groups",
"named"}`) and `to_me`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plughost.sdk.bot import Reply, decode_answer

BOT_CAPABILITY = "bot"
ACTIONS = ("ignore", "continue", "reply", "approve", "reject", "allow", "block")


def bot_request(kind: str, handler: str, payload: Any, callback_id: str) -> dict[str, Any]:
    """The `bot.<kind>` request for a call with this payload."""
    data: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
    event = data.get("event")
    request: dict[str, Any] = {
        "handler": handler,
        "args": [],
        "named_args": {},
        "command_name": "",
        "sender_id": _int(data.get("sender_id")),
        "group_id": _int(data.get("group_id")),
        "sender_nickname": str(data.get("sender_nickname") or ""),
        "message_id": _int(data.get("message_id")),
        "timestamp": _int(data.get("timestamp")),
        "event": event if isinstance(event, Mapping) else None,
        "host_callback_id": callback_id,
    }
    if kind == "command":
        context = _mapping(data.get("context"))
        sender = _mapping(context.get("sender"))
        words = data.get("words")
        request.update(
            args=[str(w) for w in words] if isinstance(words, list) else [],
            named_args=dict(data.get("args") or {}),
            command_name=str(context.get("command") or ""),
            sender_id=_int(sender.get("user_id")),
            group_id=_int(sender.get("group_id")),
            sender_nickname=str(sender.get("nickname") or ""),
        )
    else:
        for key in ("kind", "route", "bot_id", "self_id", "message_text", "chat", "scheduled_at", "match", "to_me"):
            if key in data:
                request[key] = data[key]
    return request


def bot_value(kind: str, result: Any) -> Any:
    """A native answer in the form every runtime answers `kind` with.

    Routes and interceptors answer with the JSON the host reads for every runtime (checked
    here: an unknown action is the plugin's error); a command's answer becomes its replies.
    """
    if isinstance(result, Mapping):
        result = {str(k).lower(): v for k, v in result.items()}
        action = str(result.get("action") or "").lower()
        if action and action not in ACTIONS:
            raise ValueError(f"unknown bot action {action!r}; expected one of {', '.join(ACTIONS)}")
        if not action and ("text" in result or "segments" in result or "reply" in result):
            result["action"] = "reply"
    if kind != "command":
        return None if result == {} else result
    answer = decode_answer(result or None)
    return [answer.message.to_json()] if isinstance(answer, Reply) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
