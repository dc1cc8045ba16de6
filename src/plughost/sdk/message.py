"""Chat messages: a `Message` is a list of OneBot v11 segments (`{"type", "data"}`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Segment:
    """One message segment. Unknown types are kept as they are."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str) -> Segment:
        return cls("text", {"text": text})

    @classmethod
    def at(cls, qq: int | str) -> Segment:
        return cls("at", {"qq": str(qq)})

    @property
    def is_text(self) -> bool:
        return self.type == "text"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": dict(self.data)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        return cls(str(data["type"]), dict(data.get("data") or {}))


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
        return "".join(str(s.data.get("text", "")) for s in self if s.type == "text")

    def texts(self) -> Iterator[str]:
        for s in self:
            if s.type == "text":
                yield str(s.data.get("text", ""))

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> Message:
        return cls(Segment.from_json(d) for d in data)

    def __add__(self, other: object) -> Message:  # type: ignore[override]
        if isinstance(other, str):
            return Message([*self, Segment.text(other)])
        if isinstance(other, Segment):
            return Message([*self, other])
        if isinstance(other, Iterable):
            return Message([*self, *other])
        return NotImplemented
