"""Message segments, CQ codes (exact escaping, lossless round trip) and builders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plughost.sdk.bot import Reply, ReplyBuilder, SendBuilder
from plughost.sdk.message import CQCodeError, Message, MessageFormatError, Segment, escape, unescape

keys = st.from_regex(r"[A-Za-z0-9_.\-]{1,8}", fullmatch=True)
types = st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True).filter(lambda t: t != "text")
values = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
segments = st.one_of(
    st.builds(Segment.text, st.text(max_size=30)),
    st.builds(Segment, types, st.dictionaries(keys, values, max_size=4)),
)
messages = st.lists(segments, max_size=8).map(Message)


def test_escaping_is_exact() -> None:
    assert escape("a&b[c]d,e") == "a&amp;b&#91;c&#93;d,e"
    assert escape("a&b[c]d,e", comma=True) == "a&amp;b&#91;c&#93;d&#44;e"
    assert unescape("&amp;#91;") == "&#91;"
    assert unescape("&#91;CQ:at,qq=1&#93;") == "[CQ:at,qq=1]"


def test_cq_format_and_parse() -> None:
    msg = Message([Segment.text("hi [1], a&b"), Segment.at(123), Segment.image("x,y.png", url="http://h/a?b=1&c=[2]")])
    cq = msg.to_cq()
    assert cq == "hi &#91;1&#93;, a&amp;b[CQ:at,qq=123][CQ:image,file=x&#44;y.png,url=http://h/a?b=1&amp;c=&#91;2&#93;]"
    assert Message.from_cq(cq) == msg
    assert Message.from_cq("[CQ:face,id=1]x[CQ:shake]") == [Segment.face(1), Segment.text("x"), Segment("shake", {})]


def test_unknown_segment_types_are_preserved() -> None:
    raw = [{"type": "markdown", "data": {"content": "**x**", "nested": {"a": [1, 2]}}}]
    msg = Message.from_json(raw)
    assert not msg[0].is_known
    assert msg.to_json() == raw
    assert Message.from_cq("[CQ:mface,emoji_id=7,key=k]")[0] == Segment("mface", {"emoji_id": "7", "key": "k"})


def test_malformed_cq_is_literal_text_or_a_clear_error() -> None:
    text = "look [CQ:at,qq=1 and [CQ:face,id=2]"
    lenient = Message.from_cq(text)
    assert lenient == [Segment.text("look [CQ:at,qq=1 and "), Segment.face(2)]
    with pytest.raises(CQCodeError, match=r"position 5 \(parameters must be key=value"):
        Message.from_cq(text, strict=True)
    with pytest.raises(CQCodeError, match="no closing"):
        Message.from_cq("[CQ:at,qq=1", strict=True)


@given(messages)
def test_segments_to_cq_round_trip(msg: Message) -> None:
    assert Message.from_cq(msg.to_cq()) == msg.normalized()


@given(messages)
def test_cq_string_round_trip(msg: Message) -> None:
    cq = msg.to_cq()
    assert Message.from_cq(cq).to_cq() == cq


@given(st.text(max_size=60))
def test_any_text_survives_as_text(text: str) -> None:
    assert Message.from_cq(Message(text).to_cq()).plain_text() == text


@given(messages)
def test_plain_text_is_the_text_of_the_text_segments_whatever_their_number(msg: Message) -> None:
    for part in (msg, Message(msg[:1]), Message()):  # one segment takes a short cut
        assert part.plain_text() == "".join(s.data["text"] for s in part if s.type == "text")


def test_plain_text_and_render() -> None:
    msg = Message.from_cq("[CQ:reply,id=9][CQ:at,qq=1] hello [CQ:image,file=a.png] world")
    assert msg.plain_text() == " hello  world"
    assert msg.render() == "[reply to 9][@1] hello [image: a.png] world"


def test_parse_accepts_every_form() -> None:
    expected = Message([Segment.text("a"), Segment.at("all")])
    assert Message.parse("a[CQ:at,qq=all]") == expected
    assert Message.parse(expected.to_json()) == expected
    assert Message.parse(None) == Message()
    assert Message.parse({"type": "face", "data": {"id": "1"}}) == [Segment.face(1)]


def test_reply_builder_covers_every_segment() -> None:
    reply = (
        ReplyBuilder().text("t").at(5).at_all().face(1).image_url("http://i").image_base64("QUJD")
        .record("r.amr").video("v.mp4").file("f.txt", "name.txt").reply(77).build()
    )  # fmt: skip
    assert isinstance(reply, Reply) and reply.stop
    assert [s.type for s in reply.message] == [
        "text", "at", "at", "face", "image", "image", "record", "video", "file", "reply"
    ]  # fmt: skip
    assert reply.message[5].data["file"] == "base64://QUJD"
    assert reply.message[2].data["qq"] == "all"


async def test_send_builder_requires_a_bot() -> None:
    with pytest.raises(Exception, match="needs a bot"):
        await SendBuilder.group(1).text("x").send()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
segment_like = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "at", "", "image"]), "data": json_values}),
    st.fixed_dictionaries({"type": json_values}),
    json_values,
)


@given(st.lists(segment_like, max_size=4))
def test_a_segment_array_parses_as_the_general_path_parses_it(items: list[object]) -> None:
    """A list takes a fast path; a tuple of the same items takes the general one: same answer."""
    try:
        expected = Message.parse(tuple(items))
    except MessageFormatError as exc:
        with pytest.raises(MessageFormatError) as got:
            Message.parse(items)
        assert str(got.value) == str(exc)
    else:
        parsed = Message.parse(items)
        assert parsed == expected and [type(s) for s in parsed] == [Segment] * len(parsed)
        for segment in parsed:
            with pytest.raises(AttributeError):
                segment.type = "changed"  # type: ignore[misc]  # still frozen
