"""Bot request/response shapes (pure functions; the example plugins exercise the wire)."""

from __future__ import annotations

import json

import pytest

from plughost.runtime.native.bot import REQUEST_FIELDS, bot_request, bot_result

SEGMENTS = [{"type": "text", "data": {"text": "hi"}}]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, {"action": "ignore", "reply": None}),
        ({}, {"action": "ignore", "reply": None}),
        ({"action": "continue"}, {"action": "continue", "reply": None}),
        ("hello", {"action": "reply", "text": "hello", "reply": "hello"}),
        (SEGMENTS, {"action": "reply", "segments": SEGMENTS, "reply": SEGMENTS}),
        ({"Action": "REPLY", "Text": "x", "stop": True}, {"action": "reply", "text": "x", "stop": True, "reply": "x"}),
        ({"action": "approve", "remark": "welcome"}, {"action": "approve", "remark": "welcome", "reply": None}),
        ({"action": "reject", "reason": "no"}, {"action": "reject", "reason": "no", "reply": None}),
        ({"action": "allow"}, {"action": "allow", "reply": None}),
        ({"action": "block", "reason": "spam"}, {"action": "block", "reason": "spam", "reply": None}),
        ({"text": "implicit"}, {"action": "reply", "text": "implicit", "reply": "implicit"}),
    ],
)
def test_bot_results_are_normalised(result, expected) -> None:
    sends = [{"target": "group", "group_id": 1, "user_id": None, "message": SEGMENTS}]
    assert bot_result(result, sends) == {**expected, "sends": sends}


def test_unknown_actions_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown bot action 'explode'"):
        bot_result({"action": "explode"}, [])


def test_requests_carry_every_qimenbot_field() -> None:
    request = bot_request("on_poke", {"event": {"post_type": "notice"}, "group_id": 5, "extra": 1}, "cb-1")
    assert set(REQUEST_FIELDS) <= set(request)
    assert request["handler"] == "on_poke" and request["host_callback_id"] == "cb-1"
    assert json.loads(request["raw_event_json"]) == {"post_type": "notice"}
    assert request["group_id"] == 5 and request["extra"] == 1 and request["args"] == []
    assert bot_request("h", {"args": "a b  c"}, "x")["args"] == ["a", "b", "c"]


def test_command_engine_requests_are_translated() -> None:
    engine_request = {
        "context": {
            "sender": {"kind": "member", "user_id": 10, "group_id": 20, "nickname": "ann"},
            "command": "echo",
            "alias": "say",
            "message": SEGMENTS,
            "plugin_id": "p",
        },
        "args": {"count": 3, "flag": True, "text": SEGMENTS},
        "varargs": ["x", ["y", "z"]],
        "raw": None,
    }
    request = bot_request("echo", engine_request, "cb")
    assert request["args"] == ["3", "true", "hi", "x", "y", "z"]
    assert (request["command_name"], request["sender_id"], request["group_id"]) == ("echo", 10, 20)
    assert request["sender_nickname"] == "ann" and request["named_args"] == engine_request["args"]
    assert request["context"] == engine_request["context"]  # the engine's own fields stay
