"""Reading what an implementation sends, defensively: frames, event bodies and handshake headers.

Anything that cannot be read raises `MalformedInput` with a short reason; the transports then
drop that one frame or request (counted per bot as `malformed` in `/status`) and keep the link.

Nesting is bounded in two steps. The JSON parser itself guards the stack: a document nested deeper
than Python's recursion limit raises `RecursionError`, reported as malformed. An event that parses
is then checked against the bot's `max_nesting` (default 64), because every later step — plugin
payloads, JSON for worker processes, logging — would otherwise walk it recursively again. The check
costs two byte counts per frame; only a frame with more brackets than the limit is walked (without
recursion).
"""

from __future__ import annotations

from typing import Any

from plughost.sdk import jsonio
from plughost.sdk.events import Event, EventParseError, parse_event
from plughost.sdk.message import json_kind

MAX_SELF_ID_DIGITS = 20
_PREVIEW = 24


class MalformedInput(ValueError):
    """One frame or request body that cannot be read; the message says why (never the whole input)."""


def load_json(data: str | bytes) -> Any:
    """The JSON value of a frame or body; `MalformedInput` when it is not JSON (or too deep to parse)."""
    try:
        return jsonio.loads(data)
    except RecursionError:
        raise MalformedInput(f"JSON nested too deeply to parse ({len(data)} bytes)") from None
    except ValueError as exc:  # JSONDecodeError, invalid UTF-8, integers past int()'s digit limit
        raise MalformedInput(f"not JSON: {str(exc)[:120]}") from None


def check_nesting(data: str | bytes, value: Any, limit: int) -> None:
    """`MalformedInput` when `value` (parsed from `data`) nests objects/arrays deeper than `limit`."""
    brackets = data.count(b"{") + data.count(b"[") if isinstance(data, bytes) else data.count("{") + data.count("[")
    if brackets <= limit:  # cannot be deeper than it has brackets (those inside strings included)
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    raise MalformedInput(f"event nested more than {limit} levels deep (the bot's max_nesting)")
                stack.append((child, depth + 1))


def read_event(data: str | bytes, value: Any, max_nesting: int) -> Event:
    """The event a parsed frame or body carries; `MalformedInput` for anything that is not a valid event."""
    if not isinstance(value, dict):
        raise MalformedInput(f"an event must be a JSON object, got {json_kind(value)}")
    check_nesting(data, value, max_nesting)
    try:
        return parse_event(value)
    except EventParseError as exc:
        raise MalformedInput(str(exc)[:300]) from None


def self_id_problem(raw: str) -> str | None:
    """Why an `X-Self-ID` header value is not an account id (ASCII digits, at most 20), or None."""
    if not raw:
        return "X-Self-ID header missing"
    if not (raw.isascii() and raw.isdigit()):
        shown = repr(raw[:_PREVIEW]) + ("…" if len(raw) > _PREVIEW else "")
        return f"X-Self-ID must be the account id in ASCII digits (at most {MAX_SELF_ID_DIGITS}), got {shown}"
    if len(raw) > MAX_SELF_ID_DIGITS:
        return f"X-Self-ID has {len(raw)} digits; an account id has at most {MAX_SELF_ID_DIGITS}"
    return None
