"""What a plugin offers, independent of the runtime that hosts it.

A Python plugin builds its `Descriptor` from decorators, a native plugin returns it as JSON from
`bot.describe` (+ `plugin.register`), a process plugin sends it over gRPC. The manager and the
dispatcher only ever see descriptors and handles. `to_json`/`from_json` give the wire shape that
native and process plugins use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from plughost.sdk.http import HttpRouteSpec, checked_spec
from plughost.sdk.matchers import MatcherError, MatcherSpec
from plughost.sdk.schedules import ScheduleError, ScheduleSpec

Role = Literal["anyone", "admin", "owner"]
Scope = Literal["all", "group", "private"]
RouteKind = Literal["message", "message_sent", "notice", "request", "meta"]
InterceptorStage = Literal["pre_handle", "after_completion"]

ROLES: tuple[Role, ...] = ("anyone", "admin", "owner")
SCOPES: tuple[Scope, ...] = ("all", "group", "private")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of a command overload.

    `type` names a parser: str, int, float, bool, enum, datetime, date, time, user, group,
    permission_id, permittee_id, message, segment, any — or a custom type's name. `custom` says
    the plugin parses the argument itself: the host hands over the word as it is.
    """

    name: str
    type: str = "str"
    required: bool = True
    default: Any = None
    variadic: bool = False
    choices: tuple[str, ...] = ()
    custom: bool = False


@dataclass(frozen=True, slots=True)
class CommandOverload:
    """One callable form of a command: the handler to invoke and its parameters."""

    handler: str
    params: tuple[ParamSpec, ...] = ()
    raw: bool = False
    description: str = ""
    """What this form does, where it differs from the command's description (empty: the command's)."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command (simple, raw, or composite with nested subcommands)."""

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    usage: str = ""
    category: str = ""
    role: Role = "anyone"
    scope: Scope = "all"
    prefix_optional: bool = False
    overloads: tuple[CommandOverload, ...] = ()
    subcommands: tuple[CommandSpec, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A message-bus handler: `subscribe` (every matching message) or `reply` (answers requests)."""

    topic: str
    handler: str
    mode: Literal["subscribe", "reply"] = "subscribe"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A handler subscribed to event routes of one kind (`notice` + `GroupPoke`, …)."""

    kind: RouteKind
    events: tuple[str, ...]
    handler: str


@dataclass(frozen=True, slots=True)
class InterceptorSpec:
    """A `pre_handle` or `after_completion` interceptor."""

    stage: InterceptorStage
    handler: str


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A callable method/tool (Jank's Execute(method, args), LLM tools)."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """Everything a plugin offers. Handler names are what a `Call` names."""

    id: str
    version: str = "0.0.0"
    commands: tuple[CommandSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    interceptors: tuple[InterceptorSpec, ...] = ()
    methods: tuple[MethodSpec, ...] = ()
    capabilities: frozenset[str] = frozenset()
    priority: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    http: tuple[HttpRouteSpec, ...] = ()
    """HTTP routes and resources served by the management server (see `plughost.sdk.http`)."""
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    """Message-bus subscriptions and request handlers (see `plughost.core.bus`)."""
    schedules: tuple[ScheduleSpec, ...] = ()
    """Handlers the host runs on a cron expression or an interval (see `plughost.sdk.schedules`)."""
    matchers: tuple[MatcherSpec, ...] = ()
    """Message matchers: keyword, prefix, suffix, whole-text and regex handlers (see `plughost.sdk.matchers`)."""

    def method(self, name: str) -> MethodSpec | None:
        """The method called `name`, if declared."""
        return next((m for m in self.methods if m.name == name), None)

    def offers(self) -> list[str]:
        """What it offers, counted for people: `["2 commands", "1 route", "3 matchers", "execute"]`."""
        counts = {
            "command": len(self.commands),
            "method": len(self.methods),
            "route": len(self.routes),
            "matcher": len(self.matchers),
            "interceptor": len(self.interceptors),
            "schedule": len(self.schedules),
            "HTTP route": len(self.http),
            "subscription": len(self.subscriptions),
        }
        offers = [f"{n} {noun}{'' if n == 1 else 's'}" for noun, n in counts.items() if n]
        return [*offers, "execute"] if "execute" in self.capabilities else offers

    def to_json(self) -> dict[str, Any]:
        """The JSON shape used by `bot.describe` and the worker's Describe RPC."""
        data = asdict(self)
        data["capabilities"] = sorted(self.capabilities)
        data["metadata"] = dict(self.metadata)
        return cast(dict[str, Any], _lists(data))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, id: str | None = None) -> Descriptor:
        """Build a descriptor from its JSON shape; missing parts default to empty.

        HTTP routes must already be normalised (a resource under this plugin's own base): one
        that is not raises ValueError; so does an invalid schedule (`ScheduleError`, naming the plugin)
        or matcher (`MatcherError`: a bad regex, an empty pattern …).
        """
        plugin_id = str(id or data.get("id", ""))
        return cls(
            id=plugin_id,
            version=str(data.get("version", "0.0.0")),
            commands=tuple(_command(c) for c in data.get("commands", ()) or ()),
            routes=tuple(
                RouteSpec(kind=r["kind"], events=tuple(r.get("events", ())), handler=r["handler"])
                for r in data.get("routes", ()) or ()
            ),
            interceptors=tuple(
                InterceptorSpec(stage=i["stage"], handler=i["handler"]) for i in data.get("interceptors", ()) or ()
            ),
            methods=tuple(
                MethodSpec(
                    name=m["name"],
                    description=m.get("description", ""),
                    input_schema=dict(m.get("input_schema", {}) or {}),
                )
                for m in data.get("methods", ()) or ()
            ),
            capabilities=frozenset(data.get("capabilities", ()) or ()),
            priority=int(data.get("priority", 0) or 0),
            metadata=dict(data.get("metadata", {}) or {}),
            http=tuple(checked_spec(plugin_id, HttpRouteSpec.from_json(h)) for h in data.get("http", ()) or ()),
            subscriptions=tuple(
                SubscriptionSpec(topic=str(b["topic"]), handler=str(b["handler"]), mode=b.get("mode", "subscribe"))
                for b in data.get("subscriptions", ()) or ()
            ),
            schedules=_schedules(plugin_id, data.get("schedules", ()) or ()),
            matchers=_matchers(plugin_id, data.get("matchers", ()) or ()),
        )


def _matchers(plugin_id: str, items: Any) -> tuple[MatcherSpec, ...]:
    if not isinstance(items, list | tuple):
        raise MatcherError(f"plugin '{plugin_id}': 'matchers' must be a list, got {type(items).__name__}")
    try:
        return tuple(MatcherSpec.from_json(m) for m in items)
    except MatcherError as exc:
        raise MatcherError(f"plugin '{plugin_id}': {exc}") from None


def _schedules(plugin_id: str, items: Any) -> tuple[ScheduleSpec, ...]:
    try:
        return tuple(ScheduleSpec.from_json(s) for s in items)
    except ScheduleError as exc:
        raise ScheduleError(f"plugin '{plugin_id}': {exc}") from None


def _command(data: Mapping[str, Any]) -> CommandSpec:
    return CommandSpec(
        name=data["name"],
        aliases=tuple(data.get("aliases", ()) or ()),
        description=data.get("description", ""),
        usage=data.get("usage", ""),
        category=data.get("category", ""),
        role=data.get("role", "anyone"),
        scope=data.get("scope", "all"),
        prefix_optional=bool(data.get("prefix_optional", False)),
        overloads=tuple(
            CommandOverload(
                handler=o["handler"],
                params=tuple(
                    ParamSpec(
                        name=p["name"],
                        type=p.get("type", "str"),
                        required=bool(p.get("required", True)),
                        default=p.get("default"),
                        variadic=bool(p.get("variadic", False)),
                        choices=tuple(p.get("choices", ()) or ()),
                        custom=bool(p.get("custom", False)),
                    )
                    for p in o.get("params", ()) or ()
                ),
                raw=bool(o.get("raw", False)),
                description=str(o.get("description", "") or ""),
            )
            for o in data.get("overloads", ()) or ()
        ),
        subcommands=tuple(_command(s) for s in data.get("subcommands", ()) or ()),
    )


def _lists(value: Any) -> Any:
    """Turn tuples into lists recursively so the value is plain JSON."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value
