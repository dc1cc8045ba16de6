"""plughost's bot methods over the C ABI: `bot.describe`, `bot.command`, `bot.route`,
`bot.pre_handle`, `bot.after_completion`.

Requests carry QimenBot's fields (every field present); handler names declared in
`bot.describe` are what `invoke` accepts, and map to the ABI method of their kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plughost.sdk.descriptor import Descriptor

BOT_CAPABILITY = "bot"
BOT_METHODS = ("bot.command", "bot.route", "bot.pre_handle", "bot.after_completion")
REQUEST_FIELDS: dict[str, Any] = {
    "handler": "",
    "args": [],
    "command_name": "",
    "sender_id": 0,
    "group_id": 0,
    "raw_event_json": "",
    "sender_nickname": "",
    "message_id": 0,
    "timestamp": 0,
}
ACTIONS = ("ignore", "continue", "reply", "approve", "reject", "allow", "block")


def handler_methods(descriptor: Descriptor) -> dict[str, str]:
    """Handler name → ABI method, from a descriptor built by `bot.describe`."""
    methods: dict[str, str] = {}
    for route in descriptor.routes:
        methods.setdefault(route.handler, "bot.route")
    for interceptor in descriptor.interceptors:
        methods.setdefault(interceptor.handler, f"bot.{interceptor.stage}")

    def add_commands(commands: Any) -> None:
        for command in commands:
            for overload in command.overloads:
                methods.setdefault(overload.handler, "bot.command")
            add_commands(command.subcommands)

    add_commands(descriptor.commands)
    return methods


def bot_request(handler: str, request: Any, callback_id: str) -> dict[str, Any]:
    """A bot call request with every QimenBot field present.

    `raw_event_json` is a JSON string; an `event` mapping in `request` is serialised into it.
    """
    data: dict[str, Any] = dict(request) if isinstance(request, Mapping) else {"args": request}
    if isinstance(data.get("context"), Mapping):
        data = _from_command_request(data)
    event = data.pop("event", None)
    if event is not None and not data.get("raw_event_json"):
        data["raw_event_json"] = json.dumps(event, ensure_ascii=False)
    out: dict[str, Any] = {key: data.pop(key, default) for key, default in REQUEST_FIELDS.items()}
    out["handler"] = out["handler"] or handler
    if isinstance(out["args"], str):
        out["args"] = out["args"].split()
    elif not isinstance(out["args"], list):
        out["args"] = [] if out["args"] is None else [out["args"]]
    out["args"] = [str(a) for a in out["args"]]
    if not isinstance(out["raw_event_json"], str):
        out["raw_event_json"] = json.dumps(out["raw_event_json"], ensure_ascii=False)
    out.update(data)
    out["host_callback_id"] = callback_id
    return out


def _from_command_request(data: dict[str, Any]) -> dict[str, Any]:
    """The command engine's request JSON (`context`, `args`, `varargs`, `raw`) → QimenBot fields.

    The engine's fields stay (its named `args` move to `named_args`).
    """
    context = data["context"]
    sender = context.get("sender") or {}
    named = data.get("args") or {}
    values = [*(named.values() if isinstance(named, Mapping) else named), *(data.get("varargs") or ())]
    out = {k: v for k, v in data.items() if k != "args"}
    out.update(
        args=[text for value in values for text in _texts(value)],
        named_args=named,
        command_name=str(context.get("command") or ""),
        sender_id=sender.get("user_id") or 0,
        group_id=sender.get("group_id") or 0,
        sender_nickname=str(sender.get("nickname") or ""),
    )
    return out


def _texts(value: Any) -> list[str]:
    """An argument as command words: messages/segments as their text, lists flattened."""
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) and "type" in v for v in value):
            return ["".join(str(v.get("data", {}).get("text", "")) for v in value)]
        return [text for item in value for text in _texts(item)]
    if isinstance(value, Mapping) and "type" in value:
        return [str(value.get("data", {}).get("text", ""))]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def bot_result(result: Any, sends: list[dict[str, Any]]) -> dict[str, Any]:
    """Normalise a bot reply to `{"action", …, "reply", "sends": [...]}`.

    A bare string is a text reply; a list is a segment reply; null/{} means ignore. `reply` is
    the text or segments to send (None when there is nothing to say), the shape the command
    engine understands.
    """
    if result is None or result == {}:
        out: dict[str, Any] = {"action": "ignore"}
    elif isinstance(result, str):
        out = {"action": "reply", "text": result}
    elif isinstance(result, list):
        out = {"action": "reply", "segments": result}
    elif isinstance(result, Mapping):
        out = {str(k).lower(): v for k, v in result.items()}
        action = str(out.get("action") or ("reply" if "text" in out or "segments" in out else "ignore")).lower()
        if action not in ACTIONS:
            raise ValueError(f"unknown bot action {action!r}; expected one of {', '.join(ACTIONS)}")
        out["action"] = action
    else:
        out = {"action": "reply", "text": str(result)}
    if "reply" not in out:
        out["reply"] = out.get("segments") or out.get("text") or None
    out["sends"] = sends
    return out
