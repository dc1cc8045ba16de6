"""Every decoder of outside input, fed arbitrary JSON values and bytes: it answers, or it raises its
module's documented error with a message — never anything else.

| decoder | documented error |
|---|---|
| `sdk.events.parse_event` | `EventParseError` |
| `adapters.onebot.wire.load_json` + `read_event` (frames and bodies) | `MalformedInput` |
| `PluginManifest.model_validate` / `load_manifest` | pydantic `ValidationError` / `ManifestError` |
| `runtime.native.envelope.decode_reply` | `NativeCallError` |
| `sdk.bot.decode_answer` / `decode_allow` | `BotAnswerError` |
| `sdk.call.Outcome.from_json` / `actions_from_json` | none (a protocol-error outcome) / `ActionFormatError` |
| `runtime.invoke_lane.FrameReader` / `parse_call` | `InvokeLaneProtocolError` |
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from plughost.adapters.onebot.wire import MalformedInput, load_json, read_event
from plughost.errors import ManifestError
from plughost.runtime import invoke_lane
from plughost.runtime.invoke_lane import HEADER, InvokeLaneClosed, InvokeLaneProtocolError, Kind
from plughost.runtime.native.envelope import NativeCallError, decode_reply
from plughost.sdk.bot import Answer, BotAnswerError, decode_allow, decode_answer
from plughost.sdk.call import Action, ActionFormatError, Outcome, actions_from_json
from plughost.sdk.events import Event, EventParseError, MessageEvent, parse_event
from plughost.sdk.manifest import PluginManifest, load_manifest

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
DEEP = "[" * 100_000 + "]" * 100_000
NEAR_THE_LIMIT = "[" * 900 + "]" * 900  # parses; walking it again deeper in the stack may not
HUGE_INT = "1" * 5000  # past int()'s digit limit


def objects(known: dict[str, st.SearchStrategy[Any]], fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like the real thing: some known keys with fitting or arbitrary values."""
    optional = {name: JSON for name in fields if name not in known}
    return st.fixed_dictionaries(known, optional=optional).flatmap(
        lambda base: st.dictionaries(st.text(max_size=8), JSON, max_size=3).map(lambda extra: {**extra, **base})
    )


def rejected(exc: BaseException) -> None:
    """A rejection names what was wrong."""
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


# events ---------------------------------------------------------------------------------------
SEGMENT = st.fixed_dictionaries({"type": st.sampled_from(["text", "at", "image", "face", ""]) | JSON}, optional={
    "data": st.dictionaries(st.sampled_from(["text", "qq", "file", "id"]), JSON, max_size=3) | JSON,
})  # fmt: skip
EVENTS = objects(
    {"post_type": st.sampled_from(["message", "message_sent", "notice", "request", "meta_event", "x"]) | JSON},
    [
        "time",
        "self_id",
        "message_type",
        "sub_type",
        "message_id",
        "user_id",
        "group_id",
        "raw_message",
        "font",
        "sender",
        "anonymous",
        "notice_type",
        "request_type",
        "meta_event_type",
        "comment",
        "flag",
        "status",
        "interval",
        "operator_id",
        "target_id",
        "duration",
    ],
).flatmap(lambda event: (st.lists(SEGMENT, max_size=3) | SEGMENT | JSON).map(lambda m: {**event, "message": m}))


@FUZZ
@given(JSON | EVENTS)
@example({"post_type": "message", "message": {}})
@example({"post_type": "message", "message": [{"type": "text", "data": [1]}]})
@example({"post_type": "message", "message": 12345})
@example({"post_type": "notice", "notice_type": "notify", "sub_type": "poke", "group_id": [1]})
@example({"post_type": ["message"], "message": "hi"})
def test_parse_event(value: Any) -> None:
    try:
        event = parse_event(value)
    except EventParseError as exc:
        rejected(exc)
    else:
        assert isinstance(event, Event) and event.route
        event.to_wire()
        if isinstance(event, MessageEvent):
            event.message.plain_text()


@FUZZ
@given(st.binary(max_size=120) | (JSON | EVENTS).map(lambda v: json.dumps(v).encode()))
@example(DEEP.encode())
@example(('{"post_type": "message", "message": ' + NEAR_THE_LIMIT + "}").encode())
@example(f'{{"post_type": "message", "user_id": {HUGE_INT}}}'.encode())
@example(b'{"post_type": "message", "message": "\xff"}')
def test_onebot_frames(frame: bytes) -> None:
    """What the OneBot transports do with a frame or request body: an event, or `MalformedInput`."""
    try:
        event = read_event(frame, load_json(frame), max_nesting=64)
    except MalformedInput as exc:
        rejected(exc)
    else:
        assert isinstance(event, Event)


# manifests ------------------------------------------------------------------------------------
MANIFEST_KEYS = [
    "id", "name", "version", "description", "author", "repository", "type", "runtime", "entry", "entry_point",
    "binary", "main_class", "enabled", "auto_start", "priority", "permissions", "limits", "isolation",
    "dependencies", "tags", "keywords", "config_schema", "handshake", "start_timeout", "min_port", "max_port",
    "auto_mtls",
]  # fmt: skip
MANIFESTS = objects({}, MANIFEST_KEYS) | objects({"id": st.sampled_from(["ok", "a.b", "", "-x"])}, MANIFEST_KEYS)


@FUZZ
@given(JSON | MANIFESTS)
@example({"name": "p", "main_class": "M", "entry": ["x"]})
@example({"id": "p", "entry": "a", "binary": "b"})
def test_manifest_model(value: Any) -> None:
    try:
        PluginManifest.model_validate(value)
    except ValidationError as exc:
        rejected(exc)


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifests")


@FUZZ
@given(
    st.sampled_from(["plugin.json", "plugin.toml"]),
    st.binary(max_size=200)
    | (JSON | MANIFESTS).map(lambda v: json.dumps(v).encode())
    | st.text(max_size=200).map(str.encode),
)
@example("plugin.json", DEEP.encode())
@example("plugin.json", f'{{"id": "p", "priority": {HUGE_INT}}}'.encode())
@example("plugin.toml", f"id = 'p'\npriority = {HUGE_INT}\n".encode())
@example("plugin.toml", ("a = " + "[" * 5000 + "]" * 5000).encode())
@example("plugin.toml", ("a = " + "{b = " * 3000 + "1" + "}" * 3000).encode())
@example("plugin.json", b"\xff\xfe")
def test_load_manifest(manifest_dir: Path, name: str, content: bytes) -> None:
    path = manifest_dir / name
    path.write_bytes(content)
    try:
        manifest = load_manifest(path, default_id="fallback")
    except ManifestError as exc:
        rejected(exc)
        assert all(issue.file == str(path) for issue in exc.issues)
    else:
        assert manifest.id


# native replies ---------------------------------------------------------------------------------
ENVELOPES = objects(
    {"ok": st.booleans() | JSON},
    ["result", "error", "OK", "Result", "Error"],
) | objects({"ok": st.just(False), "error": objects({}, ["code", "message", "retryable", "http_status"])}, [])


@FUZZ
@given(
    st.binary(max_size=80) | (JSON | ENVELOPES).map(lambda v: json.dumps(v).encode()),
    st.integers(-3, 3),
)
@example(DEEP.encode(), 0)
@example(DEEP.encode(), 1)
@example(f'{{"ok": true, "result": {HUGE_INT}}}'.encode(), 0)
@example(f'{{"ok": false, "error": {{"message": {NEAR_THE_LIMIT}}}}}'.encode(), 0)
@example(f'{{"ok": false, "error": {{"code": {NEAR_THE_LIMIT}}}}}'.encode(), 2)
def test_decode_reply(data: bytes, rc: int) -> None:
    try:
        decode_reply("fuzz", "m", rc, data)
    except NativeCallError as exc:
        rejected(exc)
    else:
        assert rc == 0


# bot answers ------------------------------------------------------------------------------------
ANSWERS = objects(
    {"action": st.sampled_from(["ignore", "reply", "approve", "reject", "block", "allow", "", "?"]) | JSON},
    ["segments", "segments_json", "reply", "message", "text", "stop", "at_sender", "remark", "reason", "allow"],
) | objects({"action_kind": st.integers(-1, 5) | JSON}, ["message", "segments_json"])


@FUZZ
@given(JSON | ANSWERS | st.lists(SEGMENT, max_size=3))
@example([1, 2])
@example([{}])
@example({"action": "reply", "segments": [{"type": "text", "data": [1]}]})
@example({"action": "reply", "segments_json": "[1, 2]"})
@example({"action": "reply", "segments_json": "[" + DEEP})
@example({"action": "reply", "segments_json": NEAR_THE_LIMIT})
@example({"action": [1]})
def test_decode_answer_and_allow(value: Any) -> None:
    try:
        answer = decode_answer(value)
    except BotAnswerError as exc:
        rejected(exc)
    else:
        assert answer is None or isinstance(answer, Answer)
    try:
        assert decode_allow(value) in (True, False)
    except BotAnswerError as exc:
        rejected(exc)


# outcomes and queued sends ----------------------------------------------------------------------
SENDS = st.lists(
    objects({"action": st.sampled_from(["send_group_msg", "x"]) | JSON}, ["params"])
    | objects({"target": st.sampled_from(["group", "private"]) | JSON}, ["group_id", "user_id", "message"])
    | JSON,
    max_size=3,
)
OUTCOMES = objects({}, ["value", "error"]).flatmap(lambda o: (SENDS | JSON).map(lambda s: {**o, "sends": s}))


@FUZZ
@given(JSON | OUTCOMES)
@example({"error": {}})
@example({"error": {"message": ""}})
@example({"sends": [{"target": "group"}]})
@example({"sends": [{"action": ["x"]}]})
def test_outcome_from_json(value: Any) -> None:
    outcome = Outcome.from_json(value)
    assert isinstance(outcome, Outcome)
    assert all(isinstance(send, Action) and send.action for send in outcome.sends)
    if outcome.error is not None:
        rejected(Exception(outcome.error.message))
        assert outcome.error.code


@FUZZ
@given(SENDS | JSON)
@example([{"target": "private"}])
@example([{"group_id": 1}])
@example([{"action": ""}])
def test_actions_from_json(value: Any) -> None:
    try:
        actions = actions_from_json(value)
    except ActionFormatError as exc:
        rejected(exc)
    else:
        assert all(isinstance(a, Action) and isinstance(a.action, str) and a.action for a in actions)


# the invoke lane ----------------------------------------------------------------------------------
def framed(kind: int, call_id: int, body: bytes, announced: int | None) -> bytes:
    return HEADER.pack(len(body) if announced is None else announced, call_id, kind) + body


FRAME_BODIES = (
    st.binary(max_size=40)
    | (JSON | objects({"id": st.integers() | JSON}, ["action", "params", "data", "error"])).map(
        lambda v: json.dumps(v).encode()
    )
    | st.tuples(st.integers(0, 70), st.binary(max_size=40)).map(lambda t: struct.pack("!H", t[0]) + t[1])
    | st.just(DEEP.encode())
)
FRAMES = st.lists(
    st.builds(
        framed,
        st.integers(0, 255) | st.sampled_from([int(k) for k in Kind]),
        st.integers(0, 2**32 - 1),
        FRAME_BODIES,
        st.none() | st.none() | st.integers(0, 2**32 - 1),
    ),
    max_size=4,
).map(b"".join)


def read_lane(data: bytes) -> list[tuple[Kind, int, bytes]]:
    """Every frame of `data`, split as a connection splits them (in two pieces, as bytes may
    arrive), decoded as each side decodes it."""
    reader = invoke_lane.FrameReader()
    middle = len(data) // 2
    frames = reader.feed(data[:middle]) + reader.feed(data[middle:])
    for kind, _, body in frames:
        if kind is Kind.CALL:
            name, request = invoke_lane.parse_call(body)
            assert isinstance(name, str) and isinstance(request, bytes)
        elif kind in (Kind.ACTION, Kind.ACTION_RESULT):
            invoke_lane._action_id(invoke_lane._json_object(body, kind.name))
    if reader.error is not None:
        raise reader.error
    return frames


@FUZZ
@given(st.binary(max_size=120) | FRAMES)
@example(framed(Kind.ACTION, 1, DEEP.encode(), None))
@example(framed(Kind.ACTION_RESULT, 1, f'{{"id": {HUGE_INT}}}'.encode(), None))
@example(framed(Kind.CALL, 1, b"\x00\x05ab", None))
@example(framed(Kind.CALL, 1, b"\x00\x02\xff\xfe{}", None))
@example(framed(99, 1, b"", None))
@example(framed(Kind.RESULT, 1, b"", 2**31))
def test_invoke_lane_frames(data: bytes) -> None:
    try:
        frames = read_lane(data)
    except InvokeLaneProtocolError as exc:
        rejected(exc)
    else:
        assert all(isinstance(kind, Kind) for kind, _, _ in frames)


def test_the_fuzz_targets_reject_with_their_own_errors() -> None:
    """The documented types are what the callers catch (a sanity check of the table above)."""
    assert issubclass(EventParseError, ValueError) and issubclass(BotAnswerError, ValueError)
    assert issubclass(ActionFormatError, ValueError) and issubclass(InvokeLaneClosed, ConnectionError)
    with pytest.raises(InvokeLaneProtocolError, match="too short"):
        invoke_lane.parse_call(b"\x00")
