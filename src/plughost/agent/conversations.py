"""Per-conversation history for the chat agent, behind a small interface, and splitting long answers.

`ConversationStore` is what the chat surface needs (read a conversation's recent messages, add
to it, forget it). `MemoryConversations` keeps them in memory, bounded twice: at most
`max_messages` per conversation (oldest dropped first) and at most `max_conversations`
conversations (the least recently used dropped first). A shared-state store (the message bus
and state layer, when it exists) can implement the same protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class ConversationStore(Protocol):
    """Recent user and assistant messages (`{"role", "content"}`) of each conversation."""

    async def history(self, key: str) -> list[dict[str, Any]]:
        """The conversation's messages, oldest first ([] when unknown)."""
        ...

    async def append(self, key: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Add messages to the end of the conversation (the store may drop the oldest)."""
        ...

    async def forget(self, key: str) -> None: ...


class MemoryConversations:
    """A bounded in-memory `ConversationStore` (owned by whoever made it: the host's chat surface)."""

    def __init__(self, *, max_messages: int = 20, max_conversations: int = 1000) -> None:
        if max_messages < 0 or max_conversations < 1:
            raise ValueError("max_messages must be ≥ 0 and max_conversations ≥ 1")
        self.max_messages = max_messages
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    async def history(self, key: str) -> list[dict[str, Any]]:
        messages = self._conversations.get(key)
        if messages is None:
            return []
        self._conversations.move_to_end(key)
        return [dict(m) for m in messages]

    async def append(self, key: str, messages: Sequence[Mapping[str, Any]]) -> None:
        if self.max_messages == 0:
            return
        kept = self._conversations.setdefault(key, [])
        kept.extend(dict(m) for m in messages)
        del kept[: max(0, len(kept) - self.max_messages)]
        while kept and kept[0].get("role") != "user":  # a conversation starts with a question
            del kept[0]
        self._conversations.move_to_end(key)
        while len(self._conversations) > self.max_conversations:
            self._conversations.popitem(last=False)

    async def forget(self, key: str) -> None:
        self._conversations.pop(key, None)


def split_text(text: str, limit: int, *, max_parts: int | None = None) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at a paragraph, line, sentence or word
    boundary when there is one in the second half of a part; with `max_parts`, the last part
    says that the rest was cut."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    text = text.strip()
    parts: list[str] = []
    while text:
        if len(text) <= limit:
            parts.append(text)
            break
        cut = _boundary(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if max_parts is not None and len(parts) > max_parts:
        note = " … (cut)"
        parts = parts[:max_parts]
        last, room = parts[-1], max(0, limit - len(note))
        if len(last) > room:
            last = last[:room]
            last = last[: last.rfind(" ")] if " " in last else last
        parts[-1] = last.rstrip() + note
    return parts


def _boundary(text: str, limit: int) -> int:
    if text[limit].isspace():  # the part ends with a whole word
        return limit
    window = text[:limit]
    for separator in ("\n\n", "\n", ". ", "! ", "? ", "。", " "):
        index = window.rfind(separator)
        if index >= limit // 2:
            return index + len(separator)
    return limit
