"""A handler that takes only the event gets it parsed from a JSON payload (as a worker receives
calls) exactly as from the parsed event in-process; a payload whose event does not parse is an
error either way."""

from __future__ import annotations

import logging
from pathlib import Path

from plughost.sdk import MessageEvent, Plugin
from plughost.sdk.call import Call
from plughost.sdk.context import PluginContext
from plughost.sdk.events import parse_event
from plughost.sdk.runner import run_handler

WIRE = {
    "post_type": "message", "message_type": "group", "sub_type": "normal", "message_id": 7, "group_id": 3,
    "user_id": 5, "message": [{"type": "text", "data": {"text": "hello"}}], "raw_message": "hello", "font": 0,
    "self_id": 10001, "time": 1,
}  # fmt: skip


def _context(tmp_path: Path) -> PluginContext:
    return PluginContext("p", {}, tmp_path, tmp_path, logging.getLogger("test.runner"))


async def test_an_event_handler_reads_the_same_event_from_json_as_in_process(tmp_path: Path) -> None:
    plugin = Plugin(id="p", version="1.0.0")

    @plugin.route("message", "Group")
    async def seen(ev: MessageEvent) -> str:
        return f"{type(ev).__name__} {ev.group_id} {ev.plain_text()}"

    name = "route.message.seen"
    handler = plugin.handlers[name]
    context = _context(tmp_path)
    in_process = await run_handler(handler, Call(name, {"event": WIRE}, "route", parse_event(WIRE)), context, None)
    from_json = await run_handler(handler, Call(name, {"event": WIRE}, "route"), context, None)
    assert in_process.value == from_json.value
    assert from_json.value["segments"] == [{"type": "text", "data": {"text": "MessageEvent 3 hello"}}]
    notice = {"post_type": "notice", "notice_type": "group_upload", "group_id": 3, "user_id": 5, "time": 1}
    other = await run_handler(handler, Call(name, {"event": notice}, "route"), context, None)
    assert other.value is None and other.error is None  # not its event type: no answer, as in-process


async def test_an_event_that_does_not_parse_is_the_handlers_error(tmp_path: Path) -> None:
    plugin = Plugin(id="p", version="1.0.0")

    @plugin.route("message", "Group")
    async def seen(ev: MessageEvent) -> str:
        return "reached"

    name = "route.message.seen"
    handler = plugin.handlers[name]
    broken = {**WIRE, "message": 42}
    outcome = await run_handler(handler, Call(name, {"event": broken}, "route"), _context(tmp_path), None)
    assert outcome.value is None and outcome.error is not None
    assert "message" in outcome.error.message and outcome.error.type == "EventParseError"
