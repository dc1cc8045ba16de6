"""What executing a command produced, in the spec's order of checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from plughost.sdk.call import Action
from plughost.sdk.message import Message

if TYPE_CHECKING:
    from plughost.bot.commands.registry import CommandNode


class ResultKind(StrEnum):
    """Outcomes, in the order they are checked."""

    NOT_A_COMMAND = "not_a_command"
    """No trigger (prefix, mention, reply) and no bare command: the message is for routes."""
    UNKNOWN_COMMAND = "unknown_command"
    TOO_LONG = "too_long"
    """Over `[commands] max_length` characters or `max_arguments` arguments: refused before parsing."""
    SIGNATURE_MISMATCH = "signature_mismatch"
    PERMISSION_DENIED = "permission_denied"
    WRONG_SCOPE = "wrong_scope"
    PARSE_ERROR = "parse_error"
    EXECUTION_ERROR = "execution_error"
    SUCCESS = "success"


@dataclass
class CommandResult:
    """The outcome of one command call and the replies to deliver (in order)."""

    kind: ResultKind
    replies: list[Message] = field(default_factory=list)
    error: str = ""
    command: CommandNode | None = None
    usage: list[str] = field(default_factory=list)
    sends: list[Action] = field(default_factory=list)  # proactive sends the handler queued (chat only)

    @property
    def ok(self) -> bool:
        return self.kind is ResultKind.SUCCESS

    @property
    def handled(self) -> bool:
        """True when the message was taken as a command (whatever the outcome)."""
        return self.kind is not ResultKind.NOT_A_COMMAND

    @property
    def text(self) -> str:
        """All replies as plain text, one per line (non-text segments shown as `[type]`)."""
        return "\n".join(render_text(m) for m in self.replies)


def render_text(message: Message) -> str:
    parts: list[str] = []
    for segment in message:
        if segment.type == "text":
            parts.append(str(segment.data.get("text", "")))
        elif segment.type == "at":
            parts.append(f"@{segment.data.get('qq', '')}")
        else:
            parts.append(f"[{segment.type}]")
    return "".join(parts)
