"""The tokenizer follows Mirai's rules exactly, never raises, and quoting round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plughost.bot.commands.tokenizer import join_arguments, quote, tokenize, tokenize_text
from plughost.sdk.message import Message, Segment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the spec's documented examples
        ("Hello\\ world!", ["Hello world!"]),
        ('He"llo world!"', ['He"llo', 'world!"']),
        ('\\"Hello world!\\"', ['"Hello', 'world!"']),
        ("\\-- x", ["--", "x"]),
        ('"--" x', ["--", "x"]),
        ("123456--Hello", ["123456--Hello"]),
        # separators
        ("a b   c", ["a", "b", "c"]),
        ("  lead and trail  ", ["lead", "and", "trail"]),
        ("tab\tnewline\nx", ["tab", "newline", "x"]),
        ("全角\u3000空格", ["全角", "空格"]),
        ("", []),
        ("   ", []),
        # escapes
        ("a\\bc", ["abc"]),
        ("a\\\\ b", ["a\\", "b"]),
        ("x \\", ["x", "\\"]),
        ("\\ ", [" "]),
        ("a\\  b", ["a ", "b"]),
        # quotes: raw contents, open at argument start, close before whitespace/end
        ('"a b" c', ["a b", "c"]),
        ('"a\\ b"', ["a\\ b"]),
        ('"a\\" b"', ['a\\" b']),
        ('"a" b"', ["a", 'b"']),
        ('"a b"c', ['"a', 'b"c']),
        ('""', [""]),
        ('"', ['"']),
        ('"unclosed a b', ['"unclosed', "a", "b"]),
        ('x "y z"', ["x", "y z"]),
        # stop marker
        ("a -- b  c\\ d  ", ["a", "b  c\\ d  "]),
        ("-- rest of it", ["rest of it"]),
        ('a --  "q" x', ["a", '"q" x']),
        ("a -- ", ["a"]),
        ("a --", ["a", "--"]),
        ("--", ["--"]),
        ("a --b", ["a", "--b"]),
    ],
)
def test_rules(text: str, expected: list[str]) -> None:
    assert tokenize_text(text) == expected


def test_non_text_segments_are_separate_arguments_and_text_segments_tokenize_separately() -> None:
    image = Segment("image", {"file": "a.png"})
    at = Segment.at(42)
    message = Message([Segment.text('cmd a"b c'), at, Segment.text('"x y" -- keep  this'), image, Segment.text("z")])
    assert tokenize(message) == ["cmd", 'a"b', "c", at, "x y", "keep  this", image, "z"]


def test_stop_marker_ends_only_its_text_segment() -> None:
    at = Segment.at(1)
    assert tokenize(Message([Segment.text("-- a b"), at, Segment.text("c d")])) == ["a b", at, "c", "d"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    result = tokenize_text(text)
    assert all(isinstance(a, str) for a in result)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=8))
def test_quoting_round_trips(arguments: list[str]) -> None:
    assert tokenize_text(join_arguments(arguments)) == arguments


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_quote_of_one_argument_is_one_argument(argument: str) -> None:
    assert tokenize_text(quote(argument)) == [argument]


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        '"' * 200_000,
        '" ' * 200_000,
        "\\" * 500_001,
        "-- " * 100_000,
        '"a ' * 200_000,
        "a\\ " * 200_000,
    ],
)
def test_adversarial_megabyte_inputs_finish(text: str) -> None:
    # linear time: these complete in well under a second each (benchmarked in benchmarks/, not asserted)
    tokenize_text(text)


def test_quote_runs_follow_the_open_and_close_rules() -> None:
    # opens at the first quote, closes at the last one (followed by the end of the text)
    assert tokenize_text('"' * 5) == ['"' * 3]
    assert tokenize_text('"a"b') == ['"a"b']
    assert tokenize_text('" "') == [" "]
    assert tokenize_text('" " "') == [" ", '"']
