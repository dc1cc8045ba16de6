"""Bot decorators for `Plugin`: `@plugin.route`, `@plugin.pre_handle`, `@plugin.after_completion`.

```python
@plugin.route("notice", "GroupPoke", "PrivatePoke")
async def on_poke(ev: NoticeEvent, bot: Bot) -> Reply | None: ...

@plugin.route("request", "Friend")
async def on_friend(ev: RequestEvent) -> Approve | Reject | None: ...

@plugin.pre_handle
async def filter_spam(ev: MessageEvent) -> bool: ...          # False blocks

@plugin.after_completion
async def log_it(ev: MessageEvent) -> None: ...
```

Handlers receive what their type hints ask for: the event (a handler typed for a narrower event
class is skipped for other events), the bot action client (`BotApi`), the plugin `logging.Logger`,
the raw wire event (`dict`), the `Message`, or the command context. Unannotated parameters are
matched by name (`event`/`ev`, `bot`, `logger`/`log`, `ctx`/`context`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from plughost.errors import PlugHostError
from plughost.sdk.bot import BotApi, BotRequest, CallbackBot, decode_allow, encode_answer
from plughost.sdk.descriptor import Descriptor, InterceptorSpec, RouteSpec
from plughost.sdk.events import ROUTES_BY_KIND, Event, parse_event
from plughost.sdk.message import Message

if TYPE_CHECKING:
    from plughost.sdk.plugin import Handler

F = TypeVar("F", bound=Callable[..., Any])
ROUTE_KINDS = ("message", "message_sent", "notice", "request", "meta")
EVENT, BOT, COMMAND, LOGGER = range(4)  # positions in the sources tuple
_NAME_SOURCES = {"event": EVENT, "ev": EVENT, "e": EVENT, "bot": BOT, "logger": LOGGER, "log": LOGGER,
                 "ctx": COMMAND, "context": COMMAND}  # fmt: skip
_SKIPPED = object()


class BotDecoratorsMixin:
    """Mixed into `Plugin`: bot routes and interceptors, added to the descriptor."""

    id: str
    add_handler: Callable[..., Handler]

    def _bot_state(self) -> tuple[list[RouteSpec], list[InterceptorSpec]]:
        state = self.__dict__.get("_bot_specs")
        if state is None:
            state = self.__dict__["_bot_specs"] = ([], [])
        return state

    def route(self, kind: str, *events: str) -> Callable[[F], F]:
        """Subscribe to routes of one kind (`notice`, `request`, `meta`, `message`, `message_sent`).

        No event names (or `"*"`) subscribes to every route of that kind, including `Unknown:…`.
        """
        if kind not in ROUTE_KINDS:
            raise PlugHostError(f"plugin '{self.id}': unknown route kind {kind!r}; use one of {', '.join(ROUTE_KINDS)}")
        for name in events:
            if name != "*" and name not in ROUTES_BY_KIND[kind] and not name.startswith("Unknown:"):
                known = ", ".join(sorted(ROUTES_BY_KIND[kind]))
                raise PlugHostError(f"plugin '{self.id}': {kind} has no route {name!r}; known routes: {known}")

        def register(func: F) -> F:
            name = self._unique_name(f"route.{kind}.{func.__name__}")
            self.add_handler(name, _wrap(func, "route"), _pass_request)
            self._bot_state()[0].append(RouteSpec(kind=kind, events=tuple(events), handler=name))  # type: ignore[arg-type]
            return func

        return register

    def pre_handle(self, func: F) -> F:
        """An interceptor run before commands and routes; returning False blocks the event."""
        return self._interceptor("pre_handle", func)

    def after_completion(self, func: F) -> F:
        """An interceptor run after the event was handled (in reverse priority order)."""
        return self._interceptor("after_completion", func)

    def _interceptor(self, stage: str, func: F) -> F:
        name = self._unique_name(f"{stage}.{func.__name__}")
        self.add_handler(name, _wrap(func, stage), _pass_request)
        self._bot_state()[1].append(InterceptorSpec(stage=stage, handler=name))  # type: ignore[arg-type]
        return func

    def _unique_name(self, base: str) -> str:
        handlers: Mapping[str, Any] = getattr(self, "handlers", {})
        name, n = base, 1
        while name in handlers:
            n += 1
            name = f"{base}#{n}"
        return name

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Add routes and interceptors (cooperative: other mixins chain through `super()`)."""
        parent = getattr(super(), "_extend_descriptor", None)
        if parent is not None:
            descriptor = parent(descriptor)
        routes, interceptors = self._bot_state()
        if not routes and not interceptors:
            return descriptor
        return dataclasses.replace(
            descriptor,
            routes=(*descriptor.routes, *routes),
            interceptors=(*descriptor.interceptors, *interceptors),
            capabilities=descriptor.capabilities | {"bot"},
        )


def _pass_request(request: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (request,), {}


def _wrap(func: Callable[..., Any], stage: str) -> Callable[[Any], Any]:
    """The invoke handler: resolve arguments from hints, call, answer in the caller's form."""
    resolvers = _resolvers(func)
    is_async = inspect.iscoroutinefunction(func)

    async def handler(request: Any) -> Any:
        in_process = isinstance(request, BotRequest)
        if in_process:
            event, bot, command, logger = request.event, request.bot, request.command, request.logger
        else:
            if not isinstance(request, Mapping) or not isinstance(request.get("event"), Mapping):
                raise PlugHostError(f"bot handler '{func.__name__}' needs a request object with an 'event' object")
            event = parse_event(request["event"])
            bot = CallbackBot(None, bot_id=str(request.get("bot_id", "")), self_id=int(request.get("self_id") or 0))
            command = request.get("command")
            logger = logging.getLogger(f"plughost.plugin.{func.__module__}")
        sources = (event, bot, command, logger)
        args = [resolve(sources) for resolve in resolvers]
        if any(a is _SKIPPED for a in args):  # typed for another event class: not for this event
            return _answer(stage, None, in_process, bot)
        try:
            result = await func(*args) if is_async else await asyncio.to_thread(func, *args)
        except Exception as exc:
            if not in_process and isinstance(bot, CallbackBot) and bot.outbox:
                exc.sends = [s.to_json() for s in bot.outbox]  # type: ignore[attr-defined]  # still sent by the host
            raise
        if in_process and stage == "route":
            return result
        return _answer(stage, result, in_process, bot)

    handler.__name__ = func.__name__
    handler.__doc__ = func.__doc__
    return handler


def _answer(stage: str, result: Any, in_process: bool, bot: BotApi) -> Any:
    if stage == "pre_handle":
        allow = decode_allow(result)
        if in_process:
            return allow
        return {"allow": allow, **_sends(bot)}
    if stage == "after_completion":
        return None if in_process else _sends(bot)
    return result if in_process else encode_answer(result, bot.outbox if isinstance(bot, CallbackBot) else ())


def _sends(bot: BotApi) -> dict[str, Any]:
    if isinstance(bot, CallbackBot) and bot.outbox:
        return {"sends": [s.to_json() for s in bot.outbox]}
    return {}


Resolver = Callable[[tuple[Any, ...]], Any]


def _resolvers(func: Callable[..., Any]) -> list[Resolver]:
    try:
        hints = get_type_hints(func)
    except Exception as exc:
        raise PlugHostError(f"bot handler '{func.__qualname__}': cannot resolve its type hints: {exc}") from exc
    resolvers: list[Resolver] = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        resolvers.append(_resolver(func, param.name, hints.get(param.name), param.default))
    return resolvers


def _resolver(func: Callable[..., Any], name: str, hint: Any, default: Any) -> Resolver:
    if isinstance(hint, type):
        if issubclass(hint, Event):
            event_type = hint
            return lambda s: s[EVENT] if isinstance(s[EVENT], event_type) else _SKIPPED
        if issubclass(hint, BotApi):
            return lambda s: s[BOT]
        if issubclass(hint, logging.Logger):
            return lambda s: s[LOGGER]
        if issubclass(hint, Message):
            return lambda s: getattr(s[EVENT], "message", Message())
        if issubclass(hint, dict):
            return lambda s: s[EVENT].raw
    source = _NAME_SOURCES.get(name)
    if source is not None:
        return lambda s: s[source]
    if hint is not None:  # another type (a command context): whatever the caller passed as the command
        return lambda s: s[COMMAND]
    if default is not inspect.Parameter.empty:
        return lambda s: default
    raise PlugHostError(
        f"bot handler '{func.__qualname__}': parameter '{name}' has no type hint and no known name; "
        "annotate it (event class, BotApi, logging.Logger, dict, Message) or give it a default"
    )
