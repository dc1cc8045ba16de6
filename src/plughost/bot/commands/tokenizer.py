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

`text_after` gives what follows the first arguments of a message verbatim: a raw command's
arguments (the tokens only find where the command name ends; nothing after it is touched).
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
    return _scan(text, None)


def _scan(text: str, ends: list[int] | None) -> list[str]:
    """`tokenize_text`; with `ends`, also the index in `text` just past each argument."""
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
                if ends is not None:
                    ends.append(n)
            return out
        if ch == '"' and i < no_close_after:
            close = _QUOTE_END.search(text, i + 1)
            if close is not None:
                out.append(text[i + 1 : close.start()])
                i = close.end()
                if ends is not None:
                    ends.append(i)
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
        if ends is not None:
            ends.append(i)


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


def text_after(message: Message | str, count: int, *, tail: str = "") -> Message:
    """The message after its first `count` arguments (as `tokenize` splits it), verbatim.

    Whitespace, escapes, quotes and non-text segments are kept as they are; only the whitespace
    right after those arguments is dropped. `tail` is the unconsumed end of the last of them (the
    argument glued to a command name, `/echohello` → `hello`): it starts the result.
    """
    segments = [Segment.text(message)] if isinstance(message, str) else list(message)
    seen = 0
    for index, segment in enumerate(segments):
        if seen >= count:
            return _strip_leading(segments[index:])
        if segment.type != "text":
            seen += 1
            continue
        text = str(segment.data.get("text", ""))
        ends: list[int] = []
        _scan(text, ends)
        if seen + len(ends) >= count:
            end = ends[count - seen - 1]
            if not tail:
                head = text[end:]
            elif text[:end].endswith(tail):
                head = text[end - len(tail) :]
            else:  # the glued part was escaped or quoted: its parsed text
                head = tail + text[end:]
            return _strip_leading([Segment.text(head), *segments[index + 1 :]])
        seen += len(ends)
    return Message()


def _strip_leading(segments: list[Segment]) -> Message:
    """Drop the whitespace at the start of a message (whole blank text segments, then the rest)."""
    out = Message(segments)
    while out and out[0].type == "text":
        head = str(out[0].data.get("text", "")).lstrip()
        if head:
            out[0] = Segment.text(head)
            break
        del out[0]
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
