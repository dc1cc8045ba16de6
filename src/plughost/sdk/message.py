"""Chat messages: a `Message` is a list of OneBot v11 segments (`{"type", "data"}`).

Every segment type of OneBot v11 has a constructor on `Segment`; unknown types are kept as they
are. `Message.from_cq` / `Message.to_cq` convert to and from CQ-code strings
(`[CQ:type,k=v,…]`) with exact escaping; the round trip is lossless for string-valued data.
`MessageBuilder` is the fluent chain (`text`, `at`, `at_all`, `face`, `image_url`, …).
`to_message` turns whatever a handler answers or sends into a `Message` (or None for nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from plughost.errors import PlugHostError

KNOWN_TYPES = frozenset(
    {
        "text", "face", "image", "record", "video", "at", "rps", "dice", "shake", "poke", "anonymous",
        "share", "contact", "location", "music", "reply", "forward", "node", "json", "xml", "file",
    }
)  # fmt: skip


class CQCodeError(PlugHostError, ValueError):
    """A CQ-code string is malformed (only raised by `Message.from_cq(..., strict=True)`)."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        excerpt = text[max(0, position - 10) : position + 20]
        super().__init__(f"malformed CQ code at position {position} ({reason}) near {excerpt!r}")


class MessageFormatError(PlugHostError, ValueError):
    """A value is not a message: not a segment array, a segment object or a CQ-code string, or a
    segment without a string `type` or with `data` that is not an object."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One message segment. Unknown types are kept as they are."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)

    # constructors for every OneBot v11 segment type --------------------------------------------
    @classmethod
    def text(cls, text: str) -> Segment:
        return cls("text", {"text": text})

    @classmethod
    def at(cls, qq: int | str) -> Segment:
        """Mention a user (`qq="all"` mentions everyone)."""
        return cls("at", {"qq": str(qq)})

    @classmethod
    def at_all(cls) -> Segment:
        return cls("at", {"qq": "all"})

    @classmethod
    def face(cls, id: int | str) -> Segment:
        return cls("face", {"id": str(id)})

    @classmethod
    def image(cls, file: str, *, url: str | None = None, type: str | None = None) -> Segment:
        data = {"file": file}
        if url is not None:
            data["url"] = url
        if type is not None:
            data["type"] = type
        return cls("image", data)

    @classmethod
    def record(cls, file: str) -> Segment:
        return cls("record", {"file": file})

    @classmethod
    def video(cls, file: str) -> Segment:
        return cls("video", {"file": file})

    @classmethod
    def file(cls, file: str, *, name: str | None = None) -> Segment:
        return cls("file", {"file": file} if name is None else {"file": file, "name": name})

    @classmethod
    def reply(cls, message_id: int | str) -> Segment:
        return cls("reply", {"id": str(message_id)})

    @classmethod
    def poke(cls, type: int | str, id: int | str) -> Segment:
        return cls("poke", {"type": str(type), "id": str(id)})

    @classmethod
    def share(cls, url: str, title: str, content: str | None = None, image: str | None = None) -> Segment:
        data = {"url": url, "title": title}
        if content is not None:
            data["content"] = content
        if image is not None:
            data["image"] = image
        return cls("share", data)

    @classmethod
    def contact(cls, type: str, id: int | str) -> Segment:
        """Recommend a friend (`type="qq"`) or a group (`type="group"`)."""
        return cls("contact", {"type": type, "id": str(id)})

    @classmethod
    def location(cls, lat: float | str, lon: float | str, title: str | None = None) -> Segment:
        data = {"lat": str(lat), "lon": str(lon)}
        if title is not None:
            data["title"] = title
        return cls("location", data)

    @classmethod
    def music(cls, type: str, id: int | str) -> Segment:
        """A music share from a platform (`qq`, `163`, `xm`)."""
        return cls("music", {"type": type, "id": str(id)})

    @classmethod
    def forward(cls, id: str) -> Segment:
        return cls("forward", {"id": id})

    @classmethod
    def node(cls, id: int | str) -> Segment:
        """A forward node referring to an existing message."""
        return cls("node", {"id": str(id)})

    @classmethod
    def json(cls, data: str) -> Segment:
        return cls("json", {"data": data})

    @classmethod
    def xml(cls, data: str) -> Segment:
        return cls("xml", {"data": data})

    # inspection ---------------------------------------------------------------------------------
    @property
    def is_text(self) -> bool:
        return self.type == "text"

    @property
    def is_known(self) -> bool:
        """False for segment types that OneBot v11 does not define (kept verbatim anyway)."""
        return self.type in KNOWN_TYPES

    def render(self) -> str:
        """A short human-readable rendering (`[@123]`, `[image: a.png]`) for consoles and logs."""
        d = self.data
        match self.type:
            case "text":
                return str(d.get("text", ""))
            case "at":
                return "[@all]" if str(d.get("qq")) == "all" else f"[@{d.get('qq')}]"
            case "face":
                return f"[face {d.get('id')}]"
            case "reply":
                return f"[reply to {d.get('id')}]"
            case "image" | "record" | "video" | "file":
                return f"[{self.type}: {d.get('url') or d.get('file')}]"
        inner = ",".join(f"{k}={v}" for k, v in d.items())
        return f"[{self.type}{': ' + inner if inner else ''}]"

    # conversions --------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": dict(self.data)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        """A segment from its OneBot JSON (`{"type": str, "data": object}`); `MessageFormatError` otherwise."""
        if not isinstance(data, Mapping):
            raise MessageFormatError(f"a segment must be an object with 'type' and 'data', got {json_kind(data)}")
        if "type" not in data:
            raise MessageFormatError("a segment needs a 'type' (and 'data')")
        kind = data["type"]
        if not isinstance(kind, str) or not kind:
            raise MessageFormatError(f"a segment's 'type' must be a non-empty string, got {json_kind(kind)}")
        payload = data.get("data")
        if payload is None:
            return cls(kind, {})
        if not isinstance(payload, Mapping):
            raise MessageFormatError(f"the 'data' of a {kind!r} segment must be an object, got {json_kind(payload)}")
        return cls(kind, dict(payload))

    def to_cq(self) -> str:
        """This segment as CQ code (a text segment becomes escaped plain text)."""
        if self.type == "text":
            return escape(str(self.data.get("text", "")))
        if not self.data:
            return f"[CQ:{self.type}]"
        params = ",".join(f"{k}={escape(_cq_value(v), comma=True)}" for k, v in self.data.items())
        return f"[CQ:{self.type},{params}]"


class Message(list[Segment]):
    """A chat message: an ordered list of segments."""

    def __init__(self, segments: Iterable[Segment] | str | Segment | None = None) -> None:
        if segments is None:
            super().__init__()
        elif isinstance(segments, str):
            super().__init__([Segment.text(segments)] if segments else [])
        elif isinstance(segments, Segment):
            super().__init__([segments])
        else:
            super().__init__(segments)

    def plain_text(self) -> str:
        """The concatenated text of all text segments."""
        if len(self) == 1:  # most messages: read by every interceptor of every message event
            only = self[0]
            return str(only.data.get("text", "")) if only.type == "text" else ""
        return "".join([str(s.data.get("text", "")) for s in self if s.type == "text"])

    def texts(self) -> Iterator[str]:
        for s in self:
            if s.type == "text":
                yield str(s.data.get("text", ""))

    def render(self) -> str:
        """A human-readable rendering of the whole message (see `Segment.render`)."""
        return "".join(s.render() for s in self)

    def normalized(self) -> Message:
        """Adjacent text segments merged and empty text segments dropped (what a CQ round trip yields)."""
        out = Message()
        for seg in self:
            if seg.type == "text":
                text = str(seg.data.get("text", ""))
                if not text:
                    continue
                if out and out[-1].type == "text":
                    out[-1] = Segment.text(str(out[-1].data["text"]) + text)
                    continue
                out.append(Segment.text(text))
            else:
                out.append(seg)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> Message:
        return cls(Segment.from_json(d) for d in data)

    @classmethod
    def parse(cls, value: Any) -> Message:
        """Accept a `Message`, a segment array (OneBot JSON), one segment object or a CQ string.

        Anything else (a number, a bool, an array of non-segments …) raises `MessageFormatError`.
        """
        if type(value) is list:  # every message event's segment array: checked inline, ~2x faster
            return cls(_from_array(value))
        if isinstance(value, Message):
            return value
        if isinstance(value, str):
            return cls.from_cq(value)
        if isinstance(value, Segment):
            return cls(value)
        if isinstance(value, Mapping):
            return cls([Segment.from_json(value)])
        if value is None:
            return cls()
        if not isinstance(value, list | tuple):
            raise MessageFormatError(
                f"a message must be a segment array, a segment or a CQ string, got {json_kind(value)}"
            )
        return cls(s if isinstance(s, Segment) else Segment.from_json(s) for s in value)

    def to_cq(self) -> str:
        """The message as a CQ-code string."""
        return "".join(s.to_cq() for s in self)

    @classmethod
    def from_cq(cls, text: str, *, strict: bool = False) -> Message:
        """Parse a CQ-code string. Malformed codes stay literal text unless `strict` (then `CQCodeError`)."""
        out = cls()
        pos = 0
        length = len(text)
        while pos < length:
            start = text.find("[CQ:", pos)
            if start < 0:
                _append_text(out, unescape(text[pos:]))
                break
            match = _CQ_CODE.match(text, start)
            if match is None:
                if strict:
                    raise CQCodeError(text, start, _diagnose(text, start))
                _append_text(out, unescape(text[pos : start + 4]))
                pos = start + 4
                continue
            if start > pos:
                _append_text(out, unescape(text[pos:start]))
            out.append(_segment_from_match(match))
            pos = match.end()
        return out

    def __add__(self, other: object) -> Message:  # type: ignore[override]
        if isinstance(other, str):
            return Message([*self, Segment.text(other)])
        if isinstance(other, Segment):
            return Message([*self, other])
        if isinstance(other, Iterable):
            return Message([*self, *other])
        return NotImplemented


class MessageBuilder:
    """Fluent message construction (QimenBot's reply builder): `MessageBuilder().text("hi").at(1).build()`."""

    def __init__(self) -> None:
        self.message = Message()

    def segment(self, segment: Segment) -> Self:
        self.message.append(segment)
        return self

    def text(self, text: str) -> Self:
        return self.segment(Segment.text(text))

    def at(self, user_id: int | str) -> Self:
        return self.segment(Segment.at(user_id))

    def at_all(self) -> Self:
        return self.segment(Segment.at_all())

    def face(self, id: int | str) -> Self:
        return self.segment(Segment.face(id))

    def image_url(self, url: str) -> Self:
        return self.segment(Segment.image(url))

    def image_base64(self, data: str) -> Self:
        """An image from base64 data (the `base64://` scheme is added when missing)."""
        return self.segment(Segment.image(data if data.startswith("base64://") else f"base64://{data}"))

    def record(self, file: str) -> Self:
        return self.segment(Segment.record(file))

    def video(self, file: str) -> Self:
        return self.segment(Segment.video(file))

    def file(self, file: str, name: str | None = None) -> Self:
        return self.segment(Segment.file(file, name=name))

    def reply(self, message_id: int | str) -> Self:
        return self.segment(Segment.reply(message_id))

    def build_message(self) -> Message:
        return Message(self.message)


def to_message(value: Any) -> Message | None:
    """The `Message` for what a handler answers or sends; None for nothing (None or "").

    Accepts a `Message`, plain text (never CQ-parsed), a `Segment`, segments (objects or their
    OneBot JSON), a `MessageBuilder`, or any builder with a `to_message()` or `build()` method.
    Anything else becomes its text.
    """
    if value is None:
        return None
    if isinstance(value, Message):
        return value
    if isinstance(value, str):
        return Message(value) if value else None
    if type(value) is list and all(type(item) is dict for item in value):  # OneBot JSON: a reply's segments
        return Message(_from_array(value))
    if isinstance(value, Segment):
        return Message(value)
    if isinstance(value, MessageBuilder):
        return value.build_message()
    for attr in ("to_message", "build"):
        method = getattr(value, attr, None)
        if callable(method):
            return to_message(method())
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
        if all(isinstance(s, Segment | Mapping) for s in items):
            return Message(s if isinstance(s, Segment) else Segment.from_json(s) for s in items)
    return Message(str(value))


# CQ-code escaping ----------------------------------------------------------------------------------
_ESCAPE_TEXT = str.maketrans({"&": "&amp;", "[": "&#91;", "]": "&#93;"})
_ESCAPE_VALUE = str.maketrans({"&": "&amp;", "[": "&#91;", "]": "&#93;", ",": "&#44;"})
_UNESCAPE = re.compile(r"&(?:amp|#91|#93|#44);")
_UNESCAPES = {"&amp;": "&", "&#91;": "[", "&#93;": "]", "&#44;": ","}
_CQ_CODE = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[A-Za-z0-9_.\-]+=[^,\[\]]*)*)\]")
_PARAM = re.compile(r",([A-Za-z0-9_.\-]+)=([^,\[\]]*)")


def escape(text: str, *, comma: bool = False) -> str:
    """CQ escaping: `&`→`&amp;`, `[`→`&#91;`, `]`→`&#93;` (and `,`→`&#44;` inside values)."""
    return text.translate(_ESCAPE_VALUE if comma else _ESCAPE_TEXT)


def unescape(text: str) -> str:
    """Reverse of `escape` (one pass, so `&amp;#91;` becomes the literal `&#91;`)."""
    if "&" not in text:
        return text
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(0)], text)


def json_kind(value: Any) -> str:
    """What a malformed value is, for error messages (JSON's names; never the whole value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _cq_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_NEW_SEGMENT = object.__new__
_SET_TYPE = Segment.__dict__["type"].__set__  # the slots themselves: a frozen dataclass's own
_SET_DATA = Segment.__dict__["data"].__set__  # __init__ goes through object.__setattr__, twice as slow


def _from_array(items: list[Any]) -> list[Segment]:
    """The segments of a JSON segment array; anything but a well-formed segment object takes the
    general path (`Segment.from_json`, with its errors)."""
    segments = []
    for item in items:
        if type(item) is dict:
            kind, data = item.get("type"), item.get("data")
            if type(kind) is str and kind and type(data) is dict:
                segment = _NEW_SEGMENT(Segment)
                _SET_TYPE(segment, kind)
                _SET_DATA(segment, dict(data))
                segments.append(segment)
                continue
        segments.append(item if isinstance(item, Segment) else Segment.from_json(item))
    return segments


def _append_text(out: Message, text: str) -> None:
    if not text:
        return
    if out and out[-1].type == "text":
        out[-1] = Segment.text(str(out[-1].data["text"]) + text)
    else:
        out.append(Segment.text(text))


def _segment_from_match(match: re.Match[str]) -> Segment:
    kind, params = match.group(1), match.group(2)
    data = {key: unescape(value) for key, value in _PARAM.findall(params)} if params else {}
    if kind == "text":  # `[CQ:text,text=…]` is legal and means plain text
        return Segment.text(str(data.get("text", "")))
    return Segment(kind, data)


def _diagnose(text: str, start: int) -> str:
    close = text.find("]", start)
    if close < 0:
        return "no closing ']'"
    body = text[start + 4 : close]
    kind = body.split(",", 1)[0]
    if not kind or not re.fullmatch(r"[A-Za-z0-9_.\-]+", kind):
        return f"invalid segment type {kind!r}"
    return "parameters must be key=value separated by ','"
