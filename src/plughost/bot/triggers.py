"""Command triggers (QimenBot order): mention, reply, prefix, bare — each switchable per bot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plughost.bot.config import TriggerConfig
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message, Segment

TriggerKind = Literal["mention", "reply", "prefix", "bare"]


@dataclass(frozen=True, slots=True)
class CommandInvocation:
    """A message that may be a command: `text` is what follows the trigger (and prefix, if any).

    For `bare` invocations only commands marked `prefix_optional` apply unless `any_command`
    (bare commands switched on for that chat type).
    """

    event: MessageEvent
    text: Message
    trigger: TriggerKind
    prefix: str = ""
    any_command: bool = True


def detect_command(event: MessageEvent, self_id: int, triggers: TriggerConfig) -> CommandInvocation | None:
    """The command invocation a message carries, or None when no trigger applies."""
    segments = list(event.message)
    if triggers.mention:
        rest = _strip_leading_self_mentions(segments, self_id)
        if rest is not None:
            return _optional_prefix(event, rest, "mention", triggers)
    if triggers.reply and segments and segments[0].type == "reply":
        rest = _strip_leading_self_mentions(segments[1:], self_id)
        return _optional_prefix(event, rest if rest is not None else _lstrip(segments[1:]), "reply", triggers)
    if triggers.prefix and segments and segments[0].type == "text":
        text = str(segments[0].data.get("text", ""))
        prefix = _longest_prefix(text, triggers.prefixes)
        if prefix is not None:
            body = _replace_first_text(segments, text[len(prefix) :])
            if _starts_with_word(body):
                return CommandInvocation(event, Message(body), "prefix", prefix)
    any_command = triggers.bare_group if event.is_group else triggers.bare_private
    if _starts_with_word(segments):
        return CommandInvocation(event, Message(_lstrip(segments)), "bare", any_command=any_command)
    return None


def _strip_leading_self_mentions(segments: list[Segment], self_id: int) -> list[Segment] | None:
    """Segments after the leading @self (and whitespace), or None when the message does not start with one."""
    index, found = 0, False
    while index < len(segments):
        seg = segments[index]
        if seg.type == "at" and str(seg.data.get("qq")) == str(self_id):
            found = True
        elif not (seg.type == "text" and not str(seg.data.get("text", "")).strip()):
            break
        index += 1
    return _lstrip(segments[index:]) if found else None


def _optional_prefix(
    event: MessageEvent, segments: list[Segment], trigger: TriggerKind, triggers: TriggerConfig
) -> CommandInvocation | None:
    if segments and segments[0].type == "text":
        text = str(segments[0].data.get("text", ""))
        prefix = _longest_prefix(text, triggers.prefixes)
        if prefix is not None and text[len(prefix) :].strip():
            return CommandInvocation(
                event, Message(_replace_first_text(segments, text[len(prefix) :])), trigger, prefix
            )
    if not _starts_with_word(segments):
        return None
    return CommandInvocation(event, Message(segments), trigger)


def _longest_prefix(text: str, prefixes: list[str]) -> str | None:
    best = None
    for prefix in prefixes:
        if prefix and text.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _replace_first_text(segments: list[Segment], text: str) -> list[Segment]:
    return [Segment.text(text), *segments[1:]] if text else list(segments[1:])


def _lstrip(segments: list[Segment]) -> list[Segment]:
    out = list(segments)
    while out and out[0].type == "text":
        stripped = str(out[0].data.get("text", "")).lstrip()
        if stripped:
            out[0] = Segment.text(stripped)
            break
        out.pop(0)
    return out


def _starts_with_word(segments: list[Segment]) -> bool:
    """True when the message starts with text whose first character is not whitespace (`/` alone is no command)."""
    if not segments or segments[0].type != "text":
        return False
    text = str(segments[0].data.get("text", ""))
    return bool(text) and not text[0].isspace()
