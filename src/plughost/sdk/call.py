"""The one call contract: every runtime takes a `Call` and answers an `Outcome`.

```python
outcome = await handle.call(Call("forecast", {"city": "Oslo"}))
outcome.value    # the handler's answer, JSON-shaped
outcome.sends    # bot actions queued during the call (also when it failed)
outcome.error    # a `PluginError` value, or None
```

The payload is JSON-shaped whatever the runtime: method arguments, LurkBot's execution context,
a command's arguments, a bot event request or an HTTP request (see docs/architecture.md for each
kind's shape).
In-process and out-of-process plugins receive the same payload and answer the same outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plughost.errors import InvocationError, PlugHostError

if TYPE_CHECKING:
    from plughost.sdk.bot import BotApi
    from plughost.sdk.events import Event

CallKind = Literal[
    "method", "execute", "command", "route", "pre_handle", "after_completion", "http", "bus", "schedule", "matcher"
]  # fmt: skip
CALL_KINDS: tuple[CallKind, ...] = (
    "method", "execute", "command", "route", "pre_handle", "after_completion", "http", "bus", "schedule", "matcher"
)  # fmt: skip
BOT_KINDS = frozenset({"command", "route", "pre_handle", "after_completion", "schedule", "matcher"})

# error codes of `PluginError.code`
PLUGIN_ERROR = "plugin_error"  # the handler raised
BAD_ARGUMENT = "bad_argument"  # a user's argument was rejected (`CommandArgumentError`): not a plugin failure
USER_ERROR = "user_error"  # the handler answered bad input with `UserError`: not a plugin failure
INVALID_REQUEST = "invalid_request"  # the payload does not fit the handler's signature
UNKNOWN_HANDLER = "unknown_handler"
INVALID_ANSWER = "invalid_answer"  # the handler answered something its kind does not allow
TIMED_OUT = "timed_out"
CRASHED = "crashed"
UNAVAILABLE = "unavailable"  # not loaded, disabled, stopping, restarting
ISOLATED = "isolated"  # the circuit breaker is open
PROTOCOL_ERROR = "protocol_error"
NOT_FAILURES = frozenset({BAD_ARGUMENT, USER_ERROR, INVALID_REQUEST, UNKNOWN_HANDLER, UNAVAILABLE, ISOLATED})
"""Codes that do not count against the plugin's circuit breaker: the caller's or the user's
mistakes, and calls that never reached the plugin."""


@dataclass(frozen=True, slots=True)
class Action:
    """A OneBot action queued during a call (`send_group_msg`, …), sent by the host after it."""

    action: str
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "params": dict(self.params)}


ActionSink = Callable[[str, Sequence[Action]], None]
"""Where bot actions a plugin makes outside any call go: `sink(plugin_id, actions)`, called on the
host's event loop (the host sends them through a connected bot, in order)."""


@dataclass(frozen=True, slots=True)
class PluginError:
    """Why a call failed: a value, never an exception with attributes.

    `type` is the exception type that failed in the plugin (when one did); `detail` carries
    what the code needs (`retry_after_s`, `exit_code`, `timeout_s`, …).
    """

    code: str
    message: str
    type: str = ""
    retryable: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.type and self.code == PLUGIN_ERROR else self.message

    @property
    def counts_as_failure(self) -> bool:
        """True when the circuit breaker should count this error."""
        return self.code not in NOT_FAILURES

    @classmethod
    def from_exception(cls, exc: BaseException) -> PluginError:
        """The error of a handler that raised `exc` (its message and type name are kept)."""
        code = getattr(exc, "code", None)
        if not isinstance(code, str) or not code:
            code = PLUGIN_ERROR
        message = str(exc) or type(exc).__name__
        return cls(code, message, type(exc).__name__, bool(getattr(exc, "retryable", False)))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message, "type": self.type}
        if self.retryable:
            data["retryable"] = True
        if self.detail:
            data["detail"] = dict(self.detail)
        return data

    @classmethod
    def from_json(cls, data: Any) -> PluginError:
        """Read an error object from the wire; anything malformed becomes a protocol error."""
        if not isinstance(data, Mapping):
            return cls(PROTOCOL_ERROR, f"malformed error object from the plugin: {data!r:.200}")
        detail = data.get("detail")
        code = str(data.get("code") or PLUGIN_ERROR)
        return cls(
            code,
            str(data.get("message") or "") or f"the plugin reported {code!r} without a message",
            str(data.get("type") or ""),
            bool(data.get("retryable")),
            dict(detail) if isinstance(detail, Mapping) else {},
        )

    def exception(self) -> InvocationError:
        """This error as an exception, for callers that want one (`Outcome.unwrap`)."""
        return InvocationError(str(self), code=self.code, retryable=self.retryable)


class SharedPayload(dict[str, Any]):
    """A payload many calls share — one event's, sent to every plugin that handles it. It is an
    ordinary JSON object; runtimes that send it over a wire encode it once (`encoded`)."""

    __slots__ = ("_encoded",)

    def encoded(self, encode: Callable[[Any], bytes]) -> bytes:
        """Its JSON, encoded with `encode` the first time and reused after (do not change it then)."""
        try:
            return self._encoded
        except AttributeError:
            # as a plain dict: JSON encoders treat a subclass with caution (`jsonio` would take the
            # standard library's encoder, 2-3x slower, for every event with a null in it)
            self._encoded: bytes = encode(dict(self))
            return self._encoded


@dataclass(slots=True)
class Call:
    """One call into a plugin (a value: build it, send it, do not change it — it is not frozen
    only because a frozen dataclass costs three times as much to build on the hot path).

    `event` is the parsed form of `payload["event"]` when the caller already has it (an
    in-process plugin then does not parse it again); `bot` runs the bot actions a handler
    makes that are not sends. Neither travels over the wire: they are the same data and a
    capability, not another shape of the request.
    """

    handler: str
    payload: Any = None
    kind: CallKind = "method"
    event: Event | None = None
    bot: BotApi | None = None


class Outcome:
    """What a call produced: the answer (JSON-shaped), the queued sends, and the error if it failed."""

    __slots__ = ("error", "sends", "value")

    def __init__(self, value: Any = None, sends: tuple[Action, ...] = (), error: PluginError | None = None) -> None:
        self.value = value
        self.sends = sends
        self.error = error

    @classmethod
    def failed(cls, code: str, message: str, *, sends: tuple[Action, ...] = (), **detail: Any) -> Outcome:
        return cls(None, sends, PluginError(code, message, detail=detail))

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """The value, or the error raised as `InvocationError`."""
        if self.error is not None:
            raise self.error.exception()
        return self.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return (self.value, self.sends, self.error) == (other.value, other.sends, other.error)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Outcome(value={self.value!r}, sends={self.sends!r}, error={self.error!r})"

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object (`value` left out when None, as most handlers answer)."""
        data: dict[str, Any] = {} if self.value is None else {"value": self.value}
        if self.sends:
            data["sends"] = [s.to_json() for s in self.sends]
        if self.error is not None:
            data["error"] = self.error.to_json()
        return data

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        """Read an outcome from the wire; a malformed one becomes a protocol error (its sends kept)."""
        if not isinstance(data, Mapping):
            return cls.failed(PROTOCOL_ERROR, f"malformed outcome from the plugin: {data!r:.200}")
        try:
            sends = actions_from_json(data.get("sends"))
        except ActionFormatError as exc:
            return cls.failed(PROTOCOL_ERROR, f"malformed sends from the plugin: {exc}")
        error = data.get("error")
        return cls(data.get("value"), sends, PluginError.from_json(error) if error is not None else None)


NOTHING = Outcome()
"""No answer (or none for this event). Shared: outcomes are values, never changed once made."""


class ActionFormatError(PlugHostError, ValueError):
    """Queued sends in a plugin's answer are not in either JSON form of `actions_from_json`."""


async def settled(outcome: Outcome) -> Outcome:
    """An awaitable that answers `outcome` (for calls decided before reaching a plugin)."""
    return outcome


def actions_from_json(items: Any) -> tuple[Action, ...]:
    """Queued actions in either JSON form: `{"action", "params"}`, or `host.bot.send`'s
    `{"target": "group"|"private", "group_id" | "user_id", "message"}`.

    Raises `ActionFormatError` (a `ValueError`) naming what is wrong with the first bad item.
    """
    if not items:
        return ()
    if not isinstance(items, list | tuple):
        raise ActionFormatError(f"sends must be a list, got {type(items).__name__}")
    out: list[Action] = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ActionFormatError(f"send #{n} must be an object, got {type(item).__name__}")
        if "action" in item:
            action, params = item["action"], item.get("params") or {}
            if not isinstance(action, str) or not action:
                raise ActionFormatError(f"send #{n}: 'action' must be a non-empty string")
            if not isinstance(params, Mapping):
                raise ActionFormatError(f"send #{n} ({action}): 'params' must be an object")
            out.append(Action(action, dict(params)))
            continue
        group = item.get("target") == "group" or (item.get("group_id") and item.get("target") != "private")
        target = "group_id" if group else "user_id"
        missing = [key for key in (target, "message") if key not in item]
        if missing:
            kind = "group" if group else "private"
            raise ActionFormatError(f"send #{n} (a {kind} message) needs {' and '.join(map(repr, missing))}")
        action = "send_group_msg" if group else "send_private_msg"
        out.append(Action(action, {target: item[target], "message": item["message"]}))
    return tuple(out)
