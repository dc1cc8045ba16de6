"""Conversations: a command or matcher asks the user and waits for the answer.

```python
@plugin.on_message(keyword="weather")
async def weather(ctx: MessageContext) -> str:
    city = await ctx.prompt("Which city?", timeout=60)           # the same user's next message here
    days = await ctx.prompt("How many days?", type=int, retries=2)  # re-asked on a parse error
    return f"{city}: sunny for {days} days"
```

The waiting happens in the host (`plughost.bot.conversations`), whatever the plugin's runtime: a
prompt is the bot action `conversation.prompt` of the call, which the host answers once the same
user writes again in the same chat (that message is consumed, not dispatched). Failures raise a
`ConversationError`: `PromptTimeout`, `ConversationCancelled` (the plugin was disabled or
unloaded), `ConversationRefused` (the user already answers another conversation in that chat, or
the plugin has too many open) and `PromptUnanswered` (no valid answer after the retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plughost.errors import PlugHostError
from plughost.sdk.bot import BotApi, MessageLike
from plughost.sdk.call import USER_ERROR
from plughost.sdk.commands import coerce, type_name
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message, to_message

PROMPT_ACTION = "conversation.prompt"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 2


class ConversationError(PlugHostError):
    """A prompt that got no answer. Not the plugin's failure: uncaught, its message is the reply
    (`user_error`) and the circuit breaker does not count it."""

    code = USER_ERROR


class PromptTimeout(ConversationError, TimeoutError):
    """The user did not answer within the prompt's timeout."""


class ConversationCancelled(ConversationError):
    """The plugin was disabled, unloaded or reloaded while it waited for the answer."""


class ConversationRefused(ConversationError):
    """The user already answers another conversation in this chat, or the plugin has too many open."""


class PromptUnanswered(ConversationError):
    """Every answer failed to parse as the prompt's type (after its retries)."""


_ERRORS: dict[str, type[ConversationError]] = {
    "timed_out": PromptTimeout,
    "cancelled": ConversationCancelled,
    "refused": ConversationRefused,
    "unparsed": PromptUnanswered,
}


async def prompt(
    bot: BotApi | None,
    message: MessageLike | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    type: Any = str,
    retries: int = DEFAULT_RETRIES,
) -> Any:
    """Send `message` (if any) to the chat of the current call and return the same user's next
    message there, as `type` (`str`, `int`, `float`, `bool`, `Message`, or any type the command
    engine parses); a parse error re-asks up to `retries` times."""
    if bot is None:
        raise ConversationError("a prompt needs a chat: this call came without a bot (the console?)")
    if timeout <= 0:
        raise ValueError(f"prompt timeout must be positive, got {timeout!r}")
    if retries < 0:
        raise ValueError(f"prompt retries must be 0 or more, got {retries!r}")
    name = _parser_name(type)
    question = to_message(message) if message is not None else None
    params = {
        "message": question.to_json() if question is not None else None,
        "timeout": float(timeout),
        "type": name,
        "retries": int(retries),
    }
    answer = await bot.call_action(PROMPT_ACTION, params)
    if not isinstance(answer, Mapping):
        raise ConversationError(f"the host answered a prompt with {answer!r:.100}")
    error = answer.get("error")
    if isinstance(error, Mapping):
        raise _ERRORS.get(str(error.get("code")), ConversationError)(str(error.get("message") or "no answer"))
    if name == "message":
        return Message.from_json(answer.get("message") or [])
    return coerce(type, answer.get("value"))


def _parser_name(hint: Any) -> str:
    """The command parser a prompt's `type` names (`Message` answers the whole message)."""
    if isinstance(hint, type) and issubclass(hint, Message):
        return "message"
    name, _ = type_name(hint)
    return name


@dataclass
class MessageContext:
    """What a matcher handler gets as `ctx`: the event, the bot, the match and `prompt`."""

    event: MessageEvent | None
    bot: BotApi | None = field(default=None, compare=False)
    match: Mapping[str, Any] = field(default_factory=dict)
    to_me: bool = False

    @property
    def text(self) -> str:
        """The text the matcher matched (after the @bot mention and reply, see docs/bot.md)."""
        return str(self.match.get("text", ""))

    async def prompt(
        self,
        message: MessageLike | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        type: Any = str,
        retries: int = DEFAULT_RETRIES,
    ) -> Any:
        """Ask and wait for this user's next message in this chat (see `prompt`)."""
        return await prompt(self.bot, message, timeout=timeout, type=type, retries=retries)


__all__ = [
    "PROMPT_ACTION",
    "ConversationCancelled",
    "ConversationError",
    "ConversationRefused",
    "MessageContext",
    "PromptTimeout",
    "PromptUnanswered",
    "prompt",
]
