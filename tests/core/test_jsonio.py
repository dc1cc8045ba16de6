"""`plughost.sdk.jsonio` answers exactly what the standard library's json answers, values and errors."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plughost.runtime.goplugin.values import json_bytes, json_default
from plughost.sdk import jsonio
from plughost.sdk.call import Action, Outcome, SharedPayload

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too: orjson would read those as floats
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()  # NaN and the infinities included
    | st.text()  # lone surrogates included
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)


def same(a: Any, b: Any) -> bool:
    """Equal, telling int from float, -0.0 from 0.0, and NaN equal to itself."""
    return repr(a) == repr(b)


@given(values)
def test_loads_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value)
    assert same(jsonio.loads(text), json.loads(text))
    assert same(jsonio.loads(text.encode()), json.loads(text.encode()))
    unescaped = json.dumps(value, ensure_ascii=False)
    assert same(jsonio.loads(unescaped), json.loads(unescaped))


@given(values)
def test_dumps_writes_what_json_writes(value: Any) -> None:
    assert same(json.loads(jsonio.dumps(value)), json.loads(json.dumps(value)))


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 123456789012345678901234567890}',  # orjson alone: 1.2345678901234568e+29
        '{"id": -9223372036854775809}',
        '{"id": 18446744073709551616}',
        '{"a": NaN, "b": Infinity, "c": -Infinity}',
        '{"big": 1e400}',
        '{"s": "\\ud800"}',
        '{"a": 1, "a": 2}',
        "  [1, 2.5, null, true, false]  ",
        '{"text": "你好 \\u4f60"}',
    ],
)
def test_loads_edge_cases(text: str) -> None:
    assert same(jsonio.loads(text), json.loads(text))
    assert same(jsonio.loads(text.encode()), json.loads(text.encode()))


@pytest.mark.parametrize("text", ["", "{", '{"a":}', "[1,]", "nul", '{"a": 1} x', b"\xff\xfe{", b'{"a": "\xff"}'])
def test_loads_refuses_what_json_refuses_with_the_same_error(text: str | bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ValueError) as got:
        jsonio.loads(text)
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)


def test_loads_of_a_document_nested_past_the_stack_raises_recursion_error_as_json_does() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        jsonio.loads(deep)


class _Payload(dict[str, Any]):
    __slots__ = ("context",)


class _Reordered(dict[str, Any]):
    def items(self) -> Any:
        return reversed(list(super().items()))


@pytest.mark.parametrize(
    "value",
    [
        {"a": float("nan"), "b": float("inf")},  # orjson alone writes null
        {1: "int key", "x": None},
        2**70,
        {"s": "\ud800"},
        [1, (2, 3)],
        {"text": "你好", "none": None},
        {"none": None, "deep": [1, {"x": (None, float("-inf"))}]},  # a null beside a non-finite float
        {"none": None, "largest": 1.7976931348623157e308, "smallest": -1.7976931348623157e308},
        {"none": None, "sub": type("Ratio", (float,), {})(float("nan"))},  # a float subclass
        [None, True, 0, "", 0.5],
        _Payload({"raw": None, "args": {"text": "hi"}}),  # a command's payload: orjson's bytes
        _Payload({"raw": None, "nan": float("nan")}),
        _Reordered({"raw": None, "a": 1}),  # reads its items its own way: json's bytes
    ],
)
def test_dumps_edge_cases(value: Any) -> None:
    assert same(json.loads(jsonio.dumps(value)), json.loads(json.dumps(value)))


def test_a_plain_dict_subclass_with_a_null_is_written_by_orjson() -> None:
    payload = _Payload({"raw": None, "text": "你好"})
    assert jsonio.dumps(payload) == orjson.dumps(dict(payload))  # not json's ASCII escapes
    assert (
        jsonio.dumps(_Reordered({"raw": None, "a": 1}))
        == json.dumps(_Reordered({"raw": None, "a": 1}), separators=(",", ":")).encode()
    )


def test_dumps_refuses_what_json_refuses() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for value in [object(), {"when": datetime.datetime(2026, 1, 1)}, Point(1), {frozenset(): 1}]:
        with pytest.raises(TypeError) as expected:
            json.dumps(value, default=json_default)
        with pytest.raises(TypeError) as got:
            jsonio.dumps(value, json_default)
        assert str(got.value) == str(expected.value)


def test_dumps_uses_default_for_what_json_sends_through_default() -> None:
    value = {"sends": [Action("send_msg", {"message": "hi"})], "ids": {3}, "pair": (1, 2)}
    assert json.loads(jsonio.dumps(value, json_default)) == json.loads(json.dumps(value, default=json_default))


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(None),
        Outcome(0),
        Outcome({"value": None}),
        Outcome(float("nan")),
        Outcome(2**80),
        Outcome.failed("plugin_error", "boom"),
        Outcome("x", (Action("send_msg", {"message": "hi"}),)),
    ],
)
def test_an_outcome_crosses_the_wire_unchanged(outcome: Outcome) -> None:
    back = Outcome.from_json(jsonio.loads(json_bytes(outcome.to_json())))
    assert same(back.value, outcome.value)
    assert back.sends == outcome.sends
    assert back.error == outcome.error


@given(st.dictionaries(st.text(), values, max_size=6))
def test_a_shared_payload_is_encoded_once_as_json_writes_it(fields: dict[str, Any]) -> None:
    payload = SharedPayload(fields)
    encoded = payload.encoded(json_bytes)
    assert same(json.loads(encoded), json.loads(json.dumps(fields)))
    assert payload.encoded(json_bytes) is encoded  # reused by every call that sends it
