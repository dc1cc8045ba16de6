"""One binder for every handler kind: a call's payload becomes the handler's arguments.

The rule is the same for hooks, `@method`, `@execute`, `@command`, routes and interceptors,
in-process and in a worker:

1. **by type** — `PluginContext`, `logging.Logger`, `BotApi` (bot handlers), an `Event` class
   (bot handlers; a route or interceptor typed for another event class is skipped for this
   event), `CommandContext` (commands), `PluginExecutionContext` (execute, methods); routes and
   interceptors also get `Message` (the event's message) and `dict` (the raw wire event); `http`
   handlers get `HttpRequest`;
2. **by conventional name**, for parameters without a type hint — `ctx`/`context` (the kind's
   context), `event`/`ev`/`e`, `bot`, `logger`/`log`, `request`/`req` (`http` handlers);
3. **as an argument** — a method's JSON arguments (validated from the type hints), a command's
   parsed arguments, the execution context of `execute`, a hook's context then its new config.

Defaults are honoured. A parameter that none of these can fill, or type hints that cannot be
resolved, are rejected when the decorator runs, with the function and parameter named.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_origin, get_type_hints

import regex
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from plughost.errors import InvocationError, PlugHostError
from plughost.sdk.argument_errors import describe_argument_errors
from plughost.sdk.bot import BotApi, CallbackBot, decode_allow, encode_answer
from plughost.sdk.call import INVALID_REQUEST, Action, Call
from plughost.sdk.commands import (
    CommandArgumentError,
    CommandContext,
    CommandDefinitionError,
    CommandPayload,
    coerce,
    is_optional,
    parse_text,
)
from plughost.sdk.context import PluginContext
from plughost.sdk.conversations import MessageContext
from plughost.sdk.events import Event, MessageEvent, parse_event
from plughost.sdk.http import HttpRequest, HttpResponse
from plughost.sdk.jsonio import PLAIN
from plughost.sdk.matchers import MatcherSpec, group_names, rematch
from plughost.sdk.message import Message, to_message
from plughost.sdk.models import PluginExecutionContext
from plughost.sdk.signature import argument_model, json_schema

HandlerKind = Literal[
    "hook", "method", "execute", "command", "route", "pre_handle", "after_completion", "http", "bus", "schedule",
    "matcher",
]  # fmt: skip
BOT_HANDLER_KINDS = frozenset({"command", "route", "pre_handle", "after_completion", "matcher"})
ROUTE_LIKE = frozenset({"route", "pre_handle", "after_completion", "matcher"})


class NotForThisCall(Exception):
    """Raised by a resolver when the handler does not apply to this call (typed for another event)."""


Resolver = Callable[["CallScope"], Any]
ParserLookup = Callable[[str], Callable[[str], Any] | None]

_EVENT_NAMES = frozenset({"event", "ev", "e"})
_LOGGER_NAMES = frozenset({"logger", "log"})
_CONTEXT_NAMES = frozenset({"ctx", "context"})
_REQUEST_NAMES = frozenset({"request", "req"})
_BUS_NAMES = frozenset({"data", "topic", "sender"})  # a bus message's parts, by name
_MATCH_TYPES = (re.Match, regex.Match)


def payload_event(payload: Any) -> Event | None:
    """The event a call's JSON payload carries (`payload["event"]`, parsed), or None when it has
    none; `EventParseError` when it does not parse."""
    raw = payload.get("event") if isinstance(payload, Mapping) else None
    return parse_event(raw) if isinstance(raw, Mapping) else None


class CallScope:
    """What one call offers a handler's parameters; the event, bot and command context are
    built only when a parameter asks for them."""

    __slots__ = ("_bot", "_command", "_event", "call", "plugin")

    def __init__(self, call: Call, plugin: PluginContext) -> None:
        self.call = call
        self.plugin = plugin
        self._event: Event | Literal[False] | None = False
        self._bot: CallbackBot | None = None
        self._command: CommandContext | None = None

    @property
    def payload(self) -> Any:
        return self.call.payload

    @property
    def event(self) -> Event | None:
        """The bot event of this call (parsed once), or None (console commands, methods)."""
        if self._event is False:
            event = self.call.event
            self._event = payload_event(self.payload) if event is None else event
        return self._event

    @property
    def bot(self) -> CallbackBot:
        """The bot a handler receives: sends are queued into the outcome, other actions run at once."""
        if self._bot is None:
            payload = self.payload if isinstance(self.payload, Mapping) else {}
            self._bot = CallbackBot(
                self.call.bot, bot_id=str(payload.get("bot_id") or ""), self_id=_int(payload.get("self_id"))
            )
        return self._bot

    @property
    def command(self) -> CommandContext:
        if self._command is None:
            payload = self.payload if isinstance(self.payload, Mapping) else {}
            if isinstance(payload, CommandPayload):  # in-process: the context it was made from
                command = payload.context
            else:
                context = payload.get("context")
                context = context if isinstance(context, Mapping) else {}
                command = CommandContext.from_json(context, payload.get("event"))
            command.bot = self.bot
            self._command = command
        return self._command

    def command_replies(self) -> list[Message]:
        """Replies queued with `ctx.reply(...)` during a command call."""
        return list(self._command.replies) if self._command is not None else []

    def sends(self) -> tuple[Action, ...]:
        """The actions queued during the call, in order."""
        return tuple(self._bot.outbox) if self._bot is not None and self._bot.outbox else ()


@dataclass(frozen=True, slots=True)
class Binding:
    """How a handler's parameters are filled; built once, when the decorator runs."""

    positional: tuple[Resolver, ...]
    keyword: tuple[tuple[str, Resolver], ...]
    variadic: Resolver | None = None
    arguments: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    argument_names: tuple[str, ...] = ()
    """The parameters filled from the call's arguments (the rest are filled by the host)."""
    event_only: type[Event] | None = None
    """Set for route-like handlers that take just the event (of this class): no scope needed."""
    takes_nothing: bool = field(init=False)

    def __post_init__(self) -> None:
        empty = not self.positional and not self.keyword and self.variadic is None and self.arguments is None
        object.__setattr__(self, "takes_nothing", empty)

    def bind(self, scope: CallScope) -> tuple[list[Any], dict[str, Any]] | None:
        """The arguments for this call; None when the handler does not apply (another event class)."""
        try:
            args = [resolve(scope) for resolve in self.positional]
            kwargs = {name: resolve(scope) for name, resolve in self.keyword} if self.keyword else {}
        except NotForThisCall:
            return None
        if self.variadic is not None:
            args.extend(self.variadic(scope))
        if self.arguments is not None:
            kwargs.update(_validated(self.arguments, scope.payload))
        return args, kwargs


def compile_binding(func: Callable[..., Any], kind: HandlerKind, *, parsers: ParserLookup | None = None,
                    raw: bool = False, matcher: MatcherSpec | None = None) -> Binding:  # fmt: skip
    """The binding of `func` for handlers of `kind`; raises `PlugHostError` naming what is wrong."""
    where = f"{kind} handler '{getattr(func, '__qualname__', func)}'"
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise PlugHostError(f"{where}: its signature cannot be read: {exc}") from None
    try:
        hints = get_type_hints(func)
    except Exception as exc:
        raise PlugHostError(
            f"{where}: cannot resolve its type hints ({type(exc).__name__}: {exc}); import the annotated types "
            "at module level, not under TYPE_CHECKING"
        ) from None
    # methods take their arguments by keyword (the argument model's fields); every other kind is
    # filled in signature order, positionally up to the keyword-only parameters
    by_position = kind != "method" or any(p.kind is p.POSITIONAL_ONLY for p in signature.parameters.values())
    positional: list[Resolver] = []
    keyword: list[tuple[str, Resolver]] = []
    variadic: Resolver | None = None
    argument_names: list[str] = []
    free = _FreeArguments(kind, raw)
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            if kind == "command":
                raise CommandDefinitionError(f"{where}: **{param.name} is not supported")
            continue
        hint = hints.get(param.name)
        resolver = _matched(where, param, hint, matcher) if matcher is not None else None
        resolver = resolver or _injected(kind, param.name, hint)
        if resolver is None and param.kind is param.VAR_POSITIONAL:
            if kind == "command":
                variadic = _command_varargs(hint, parsers)
                argument_names.append(param.name)
            continue
        if resolver is None:
            resolver = free.take(where, param, hint, parsers)
            if kind == "command" or resolver is None:
                argument_names.append(param.name)
        else:
            free.saw(resolver)
        if resolver is None:  # a method argument, validated by the argument model
            continue
        if by_position and param.kind is not param.KEYWORD_ONLY:
            positional.append(resolver)
        else:
            keyword.append((param.name, resolver))
    model = None
    if kind == "method":
        model = argument_model(func, only=argument_names) if argument_names else None
    schema = json_schema(model) if kind == "method" else None
    binding = Binding(tuple(positional), tuple(keyword), variadic, model, schema, tuple(argument_names))
    event_only = _only_the_event(kind, binding)
    return replace(binding, event_only=event_only) if event_only is not None else binding


def _injected(kind: HandlerKind, name: str, hint: Any) -> Resolver | None:
    """Rules 1 and 2: the parameter is filled by the host (context, logger, bot, event …)."""
    if kind == "bus" and name in _BUS_NAMES:  # a bus message's parts by name, whatever their type hint
        return _bus_part(name)
    inner = _optional_inner(hint)
    if kind == "schedule" and (
        name == "bot" if hint is None else isinstance(inner, type) and issubclass(inner, BotApi)
    ):
        return _bot  # a schedule's bot: sends go through the host's outbox
    if isinstance(inner, type):
        if issubclass(inner, PluginContext):
            return _plugin_context
        if issubclass(inner, logging.Logger):
            return _logger
        if issubclass(inner, PluginExecutionContext) and kind in ("execute", "method"):
            return _execution_context
        if issubclass(inner, HttpRequest) and kind == "http":
            return _http_request
        if kind in BOT_HANDLER_KINDS:
            if issubclass(inner, BotApi):
                return _bot
            if issubclass(inner, Event):
                return _event_of_type(inner, kind == "command")
            if issubclass(inner, CommandContext) and kind == "command":
                return _command_context
            if kind in ROUTE_LIKE and issubclass(inner, Message):
                return _event_message
            if kind in ROUTE_LIKE and issubclass(inner, dict):
                return _raw_event
        return None
    if hint is not None:
        return None
    if name in _LOGGER_NAMES:
        return _logger
    if name in _CONTEXT_NAMES:
        return _CONTEXT_OF_KIND.get(kind)
    if kind == "http" and name in _REQUEST_NAMES:
        return _http_request
    if kind in BOT_HANDLER_KINDS:
        if name in _EVENT_NAMES:
            return _any_event
        if name == "bot":
            return _bot
    return None


class _FreeArguments:
    """Rule 3: parameters the host does not fill come from the call's arguments.

    Hooks take (context, new config) and `execute` its execution context positionally, whatever
    the parameters are called (LurkBot's style), unless a typed parameter already took them.
    """

    def __init__(self, kind: HandlerKind, raw: bool) -> None:
        self.kind = kind
        self.raw = raw
        self.raw_taken = False
        self.primary_taken = False
        self.config_taken = False

    def saw(self, resolver: Resolver) -> None:
        """A parameter was filled by rule 1 or 2 with `resolver`."""
        if resolver is _PRIMARY.get(self.kind):
            self.primary_taken = True

    def take(self, where: str, param: inspect.Parameter, hint: Any, parsers: ParserLookup | None) -> Resolver | None:
        kind = self.kind
        if kind == "method":
            return None
        if kind == "command":
            if self.raw and not self.raw_taken:
                self.raw_taken = True
                return _raw_message
            return _command_argument(param.name, hint, param.default, parsers)
        primary = _PRIMARY.get(kind)
        if primary is not None and not self.primary_taken:
            self.primary_taken = True
            return primary
        if kind == "hook" and not self.config_taken:
            self.config_taken = True
            return _payload
        if param.default is not inspect.Parameter.empty:
            default = param.default
            return lambda scope: default
        what = {
            "hook": "lifecycle hooks get (ctx: PluginContext, config: dict)",
            "execute": "execute handlers get one PluginExecutionContext",
            "http": "http handlers get (request: HttpRequest), PluginContext and logging.Logger",
            "bus": "bus handlers get `data`, `topic`, `sender` by name, PluginContext and logging.Logger by type",
            "schedule": "schedule handlers get `bot` (BotApi), `ctx` (PluginContext) and `logger` (logging.Logger)",
        }.get(
            kind, "annotate it (an Event class, Bot, logging.Logger, Message, dict, PluginContext) or give it a default"
        )
        raise PlugHostError(f"{where}: nothing can fill parameter '{param.name}': {what}")


def _matched(where: str, param: inspect.Parameter, hint: Any, matcher: MatcherSpec) -> Resolver | None:
    """A matcher handler's `match` (the match object, regexes only), `ctx` (`MessageContext`) and
    its regex's named groups by name (converted to their type hints)."""
    inner = _optional_inner(hint)
    typed_context = isinstance(inner, type) and issubclass(inner, MessageContext)
    if typed_context or (hint is None and param.name in _CONTEXT_NAMES):
        return _message_context
    wants_match = param.name == "match" if hint is None else (get_origin(inner) or inner) in _MATCH_TYPES
    if wants_match:
        if matcher.type != "regex":
            raise PlugHostError(f"{where}: parameter '{param.name}' asks for a match object, which only regex= "
                                "matchers give")  # fmt: skip
        return _match_object(matcher)
    if param.name in group_names(matcher):
        return _named_group(param.name, hint, param.default)
    return None


def _message_context(scope: CallScope) -> MessageContext:
    payload = scope.payload if isinstance(scope.payload, Mapping) else {}
    event = scope.event
    match = payload.get("match")
    return MessageContext(event if isinstance(event, MessageEvent) else None, scope.bot,
                          match if isinstance(match, Mapping) else {}, bool(payload.get("to_me")))  # fmt: skip


def _match_object(matcher: MatcherSpec) -> Resolver:
    def resolve(scope: CallScope) -> Any:
        match = scope.payload.get("match") if isinstance(scope.payload, Mapping) else None
        return rematch(matcher, match) if isinstance(match, Mapping) else None

    return resolve


def _named_group(name: str, hint: Any, default: Any) -> Resolver:
    def resolve(scope: CallScope) -> Any:
        match = scope.payload.get("match") if isinstance(scope.payload, Mapping) else None
        named = match.get("named") if isinstance(match, Mapping) else None
        value = named.get(name) if isinstance(named, Mapping) else None
        if value is None:
            return None if default is inspect.Parameter.empty else default
        try:
            return coerce(hint, value)
        except (TypeError, ValueError) as exc:
            raise InvocationError(f"group '{name}' = {value!r} is not a valid {getattr(hint, '__name__', hint)}: "
                                  f"{exc}", code=INVALID_REQUEST) from None  # fmt: skip

    return resolve


# resolvers ------------------------------------------------------------------------------------
def _plugin_context(scope: CallScope) -> PluginContext:
    return scope.plugin


def _logger(scope: CallScope) -> logging.Logger:
    return scope.plugin.logger


def _payload(scope: CallScope) -> Any:
    return scope.payload


def _bus_part(name: str) -> Resolver:
    """`data`, `topic` or `sender` (the publishing plugin's id) of a bus message."""

    def resolve(scope: CallScope) -> Any:
        payload = scope.payload
        return payload.get(name) if isinstance(payload, Mapping) else None

    return resolve


def _bot(scope: CallScope) -> BotApi:
    return scope.bot


def _command_context(scope: CallScope) -> CommandContext:
    return scope.command


def _any_event(scope: CallScope) -> Event | None:
    return scope.event


def _event_message(scope: CallScope) -> Message:
    message = getattr(scope.event, "message", None)
    return message if isinstance(message, Message) else Message()


def _raw_event(scope: CallScope) -> dict[str, Any]:
    event = scope.event
    return event.raw if event is not None else {}


def _http_request(scope: CallScope) -> HttpRequest:
    try:
        return HttpRequest.from_payload(scope.payload)
    except ValueError as exc:
        raise InvocationError(f"invalid http request: {exc}", code=INVALID_REQUEST) from None


def _execution_context(scope: CallScope) -> PluginExecutionContext:
    payload = scope.payload
    if isinstance(payload, PluginExecutionContext):
        return payload
    try:
        return PluginExecutionContext.model_validate(payload or {})
    except ValidationError as exc:
        raise InvocationError(f"invalid execution context: {exc}", code=INVALID_REQUEST) from None


class _EventOfType:
    """Resolves the call's event when it is an `event_type` (else None, or not for this call)."""

    __slots__ = ("event_type", "none_when_missing")

    def __init__(self, event_type: type[Event], none_when_missing: bool) -> None:
        self.event_type = event_type
        self.none_when_missing = none_when_missing

    def __call__(self, scope: CallScope) -> Any:
        event = scope.event
        if isinstance(event, self.event_type):
            return event
        if self.none_when_missing:
            return None
        raise NotForThisCall


def _event_of_type(event_type: type[Event], none_when_missing: bool) -> Resolver:
    return _EventOfType(event_type, none_when_missing)


def _only_the_event(kind: HandlerKind, binding: Binding) -> type[Event] | None:
    """The event class, for route-like handlers whose one parameter is the event (the hot path of
    the bot pipeline: such a handler needs no binding scope)."""
    if kind not in ROUTE_LIKE or binding.keyword or binding.variadic or len(binding.positional) != 1:
        return None
    resolve = binding.positional[0]
    if resolve is _any_event:
        return Event
    if isinstance(resolve, _EventOfType) and not resolve.none_when_missing:
        return resolve.event_type
    return None


def _raw_message(scope: CallScope) -> Message:
    raw = scope.payload.get("raw") if isinstance(scope.payload, Mapping) else None
    return Message.from_json(raw) if isinstance(raw, list) else Message()


def _command_argument(name: str, hint: Any, default: Any, parsers: ParserLookup | None) -> Resolver:
    convert = _converter(hint, parsers)
    optional = default is inspect.Parameter.empty and is_optional(hint)

    def resolve(scope: CallScope) -> Any:
        args = scope.payload.get("args") if isinstance(scope.payload, Mapping) else None
        if isinstance(args, Mapping) and name in args:
            return convert(args[name])
        if default is not inspect.Parameter.empty:
            return default
        if optional:
            return None
        raise InvocationError(f"missing argument '{name}'", code=INVALID_REQUEST)

    return resolve


def _command_varargs(hint: Any, parsers: ParserLookup | None) -> Resolver:
    convert = _converter(hint, parsers)

    def resolve(scope: CallScope) -> list[Any]:
        values = scope.payload.get("varargs") if isinstance(scope.payload, Mapping) else None
        return [convert(v) for v in values] if isinstance(values, list) else []

    return resolve


def _converter(hint: Any, parsers: ParserLookup | None) -> Callable[[Any], Any]:
    """JSON value → the annotated type; a custom type goes through the plugin's own parser."""
    inner = _optional_inner(hint)
    type_name = inner.__name__ if isinstance(inner, type) else ""

    def convert(value: Any) -> Any:
        parser = parsers(type_name) if parsers is not None and type_name else None
        if parser is not None and isinstance(value, str):
            return parse_text(parser, value, type_name)
        try:
            return coerce(hint, value)
        except CommandArgumentError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvocationError(f"argument {value!r} is not a valid {type_name or 'value'}: {exc}",
                                  code=INVALID_REQUEST) from None  # fmt: skip

    return convert


def _validated(model: type[BaseModel], payload: Any) -> dict[str, Any]:
    try:
        validated = model.model_validate(payload if payload is not None else {})
    except ValidationError as exc:
        raise InvocationError(_validation_message(exc), code=INVALID_REQUEST) from None
    return {name: getattr(validated, name) for name in type(validated).model_fields}


def _validation_message(exc: ValidationError) -> str:
    return describe_argument_errors(exc)


_CONTEXT_OF_KIND: dict[str, Resolver] = {
    "hook": _plugin_context,
    "method": _plugin_context,
    "execute": _execution_context,
    "command": _command_context,
    "route": _plugin_context,
    "pre_handle": _plugin_context,
    "after_completion": _plugin_context,
    "http": _plugin_context,
    "bus": _plugin_context,
    "schedule": _plugin_context,
    "matcher": _plugin_context,
}


_PRIMARY: dict[str, Resolver] = {"hook": _plugin_context, "execute": _execution_context}


def _optional_inner(hint: Any) -> Any:
    if hint is None:
        return None
    args = getattr(hint, "__args__", None)
    if args and type(None) in args and len(args) == 2 and not isinstance(hint, type):
        return next(a for a in args if a is not type(None))
    return hint


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# answers --------------------------------------------------------------------------------------
Answer = Callable[[Any, "CallScope | None"], Any]
"""`(result, scope) -> the JSON answer`; the scope is None for handlers that take no parameters."""


def _route_answer(result: Any, scope: CallScope | None) -> Any:
    return None if result is None else encode_answer(result)


def _allow_answer(result: Any, scope: CallScope | None) -> Any:
    return decode_allow(result)


def _no_answer(result: Any, scope: CallScope | None) -> Any:
    return None


def _command_answer(result: Any, scope: CallScope | None) -> Any:
    replies = scope.command_replies() if scope is not None else []
    reply = to_message(result)
    if reply is not None:
        replies.append(reply)
    return [m.to_json() for m in replies]


def _json_answer(result: Any, scope: CallScope | None) -> Any:
    return jsonable(result)


def _schedule_answer(result: Any, scope: CallScope | None) -> Any:
    """A schedule may return a message: the host sends it to the schedule's chat."""
    message = to_message(result)
    return message.to_json() if message is not None else None


def _http_answer(result: Any, scope: CallScope | None) -> Any:
    return HttpResponse.of(result).to_value()


ANSWERS: dict[str, Answer] = {
    "route": _route_answer,
    "pre_handle": _allow_answer,
    "after_completion": _no_answer,
    "command": _command_answer,
    "method": _json_answer,
    "execute": _json_answer,
    "hook": _no_answer,
    "http": _http_answer,
    "bus": _json_answer,
    "schedule": _schedule_answer,
    "matcher": _route_answer,
}
"""The JSON answer of each handler kind (see docs/architecture.md)."""


def jsonable(value: Any) -> Any:
    """`value` in its JSON form (models, dataclasses, dates, enums, sets …), as it crosses a wire."""
    if type(value) in PLAIN:
        return value
    return to_jsonable_python(value, fallback=str)


__all__ = ["ANSWERS", "Binding", "CallScope", "HandlerKind", "NotForThisCall", "compile_binding", "jsonable"]
