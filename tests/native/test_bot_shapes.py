"""Bot request/answer shapes over the C ABI (pure functions; the example plugins exercise the wire)."""

from __future__ import annotations

import pytest

from plughost.runtime.native.bot import bot_request, bot_value

SEGMENTS = [{"type": "text", "data": {"text": "hi"}}]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, None),
        ({}, None),
        ({"action": "continue"}, {"action": "continue"}),
        ("hello", "hello"),
        (SEGMENTS, SEGMENTS),
        ({"Action": "REPLY", "Text": "x", "stop": True}, {"action": "REPLY", "text": "x", "stop": True}),
        ({"action": "approve", "remark": "welcome"}, {"action": "approve", "remark": "welcome"}),
        ({"action": "block", "reason": "spam"}, {"action": "block", "reason": "spam"}),
        ({"text": "implicit"}, {"action": "reply", "text": "implicit"}),
    ],
)
def test_route_answers_keep_the_shape_the_host_reads(result, expected) -> None:
    assert bot_value("route", result) == expected


@pytest.mark.parametrize(
    ("result", "replies"),
    [
        (None, []),
        ({}, []),
        ("hello", [[{"type": "text", "data": {"text": "hello"}}]]),
        (SEGMENTS, [SEGMENTS]),
        ({"action": "reply", "text": "x"}, [[{"type": "text", "data": {"text": "x"}}]]),
        ({"reply": "legacy"}, [[{"type": "text", "data": {"text": "legacy"}}]]),
        ({"action": "ignore"}, []),
    ],
)
def test_command_answers_become_replies(result, replies) -> None:
    assert bot_value("command", result) == replies


def test_unknown_actions_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown bot action 'explode'"):
        bot_value("route", {"action": "explode"})


def test_route_requests_carry_every_qimenbot_field_and_the_event_once() -> None:
    payload = {
        "kind": "notice",
        "route": "GroupPoke",
        "group_id": "5",
        "sender_id": "7",
        "event": {"post_type": "notice"},
    }
    request = bot_request("route", "on_poke", payload, "cb-1")
    assert request["handler"] == "on_poke" and request["host_callback_id"] == "cb-1"
    assert request["event"] == {"post_type": "notice"}  # an object, not JSON inside JSON
    assert "raw_event_json" not in request
    assert (request["group_id"], request["sender_id"], request["route"]) == (5, 7, "GroupPoke")
    assert request["args"] == [] and request["command_name"] == ""


def test_command_requests_get_the_words_as_typed() -> None:
    payload = {
        "context": {
            "sender": {"kind": "member", "user_id": 10, "group_id": 20, "nickname": "ann"},
            "command": "echo",
            "alias": "say",
            "message": SEGMENTS,
            "plugin_id": "p",
        },
        "args": {"count": 3, "flag": True},
        "varargs": ["x"],
        "raw": None,
        "words": ["3", "yes", "x"],
        "event": None,
    }
    request = bot_request("command", "echo", payload, "cb")
    assert request["args"] == ["3", "yes", "x"]  # no typed round trip: what the user typed
    assert (request["command_name"], request["sender_id"], request["group_id"]) == ("echo", 10, 20)
    assert request["sender_nickname"] == "ann" and request["named_args"] == {"count": 3, "flag": True}
