"""Mirai's command tokenizer as a single-pass scanner (linear time on any input).

Rules (text segments are tokenized separately; non-text segments are arguments of their own):

- arguments are separated by whitespace that is not escaped;
- `\\x` escapes any character x (the backslash is dropped); a trailing lone backslash is kept;
- a double-quoted argument opens only at the start of an argument and closes only at a `"` that
  is not preceded by a backslash and is followed by whitespace or the end of the text; its
  contents are kept raw. A quote that never closes is an ordinary character;
- a standalone `--` at the start of an argument and followed by whitespace stops parsing: the
  rest of the text segment after that whitespace, verbatim, is one argument (none when empty).

Escape pairs are consumed left to right, so `\\\\ ` is an escaped backslash followed by a
separator. Whitespace is Unicode whitespace (`str.isspace`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from plughost.sdk.message import Message, Segment

Argument = str | Segment
"""A text argument (str) or a non-text segment (image, @, …)."""

_PLAIN = re.compile(r"[^\s\\]+")
_SPACE = re.compile(r"\s+")
_QUOTE_END = re.compile(r'(?<!\\)"(?=\s|\Z)')


def tokenize_text(text: str) -> list[str]:
    """Split one text segment into arguments."""
    out: list[str] = []
    n = len(text)
    i = 0
    no_close_after = n + 1  # a quote opened at or after this index can never close
    plain_match = _PLAIN.match
    space_match = _SPACE.match
    while True:
        m = space_match(text, i)
        if m is not None:
            i = m.end()
        if i >= n:
            return out
        ch = text[i]
        if ch == "-" and text.startswith("--", i) and i + 2 < n and text[i + 2].isspace():
            rest = text[space_match(text, i + 2).end() :]  # type: ignore[union-attr]
            if rest:
                out.append(rest)
            return out
        if ch == '"' and i < no_close_after:
            close = _QUOTE_END.search(text, i + 1)
            if close is not None:
                out.append(text[i + 1 : close.start()])
                i = close.end()
                continue
            no_close_after = i
        # an ordinary argument: plain runs and escapes until unescaped whitespace
        parts: list[str] = []
        while i < n:
            m = plain_match(text, i)
            if m is not None:
                parts.append(m.group())
                i = m.end()
                continue
            ch = text[i]
            if ch == "\\":
                if i + 1 < n:
                    parts.append(text[i + 1])
                    i += 2
                else:
                    parts.append("\\")
                    i += 1
                continue
            break  # whitespace
        out.append("".join(parts))


def tokenize(message: Message | str | Iterable[Segment]) -> list[Argument]:
    """Split a message into arguments: text segments by `tokenize_text`, other segments as they are."""
    if isinstance(message, str):
        return list(tokenize_text(message))
    out: list[Argument] = []
    for segment in message:
        if segment.type == "text":
            out.extend(tokenize_text(str(segment.data.get("text", ""))))
        else:
            out.append(segment)
    return out


def quote(argument: str) -> str:
    """Text that `tokenize_text` turns back into exactly `[argument]`."""
    if not argument:
        return '""'
    escaped = "".join("\\" + c if c.isspace() or c in '\\"' else c for c in argument)
    if escaped.startswith("--"):
        escaped = "\\" + escaped
    return escaped


def join_arguments(arguments: Iterable[str]) -> str:
    """Quote each argument and join with spaces (the inverse of `tokenize_text`)."""
    return " ".join(quote(a) for a in arguments)
