"""Command authoring for Python plugins: `@plugin.command`, command groups, `CommandContext`.

```python
@plugin.command("greet", aliases=["hi"], description="greet someone")
async def greet(ctx: CommandContext, name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)

perm = plugin.command_group("perm", description="manage permissions")

@perm.sub("permit", "grant")
async def permit(ctx: CommandContext, who: PermitteeId, what: PermissionId) -> str: ...
```

Parameters are described from type hints (`ParamSpec`); the host's command engine tokenizes,
resolves and parses the arguments and calls the handler with the command payload (the same
JSON wherever the plugin runs):
`{"context": {"sender": {...}, "message": [segments], "plugin_id", "command", "alias"},
"args": {"<param>": <json value>}, "varargs": [...], "raw": [segments] | null,
"words": ["<argument word>", …], "event": <wire event> | null, "bot_id", "self_id"}` — datetimes
are ISO-8601 strings, messages segment lists, ids their text form, enums the choice name;
omitted optional arguments are absent (the handler's defaults apply). Arguments of a type with a
custom parser (`@plugin.argument_parser`) arrive as the word and are parsed in the plugin.

A handler returns `str`, `Message`, a `Segment`, a builder (anything with `build()` or
`to_message()`), or `None` (no reply). `ctx.reply(...)` sends additional replies in order.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from plughost.errors import PlugHostError
from plughost.sdk.bot import BotApi
from plughost.sdk.contributions import DescriptorContribution
from plughost.sdk.descriptor import CommandOverload, CommandSpec, Descriptor, ParamSpec, Role, Scope
from plughost.sdk.jsonio import PLAIN
from plughost.sdk.message import Message, Segment, to_message
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.senders import CommandSender

F = TypeVar("F", bound=Callable[..., Any])
ArgumentParser = Callable[[str], Any]
COMMAND_HANDLER_PREFIX = "command:"


class UserError(PlugHostError):
    """Raise it from a command handler to tell the user what to do: the message is the reply.

    It answers bad input, it is not a plugin failure: the circuit breaker does not count it and
    the message is shown as it is (any other exception is shown to chat users only as a short
    message with an error id).
    """

    code = "user_error"


class CommandArgumentError(UserError, ValueError):
    """A user's argument was wrong: the message is shown to that user with the command's usage.

    Raised by a handler or a parser; like `UserError`, it is not a plugin failure.
    """

    code = "bad_argument"


class CommandDefinitionError(PlugHostError):
    """A command declaration is invalid (bad name, unsupported parameter kind …)."""


class UserId(int):
    """A user, given as a numeric id or an @-mention segment."""


class GroupId(int):
    """A group, given as a numeric id."""


@dataclass
class CommandContext:
    """What a command handler gets besides its arguments."""

    sender: CommandSender
    message: Message = field(default_factory=Message)
    plugin_id: str = ""
    command: str = ""
    alias: str = ""
    replies: list[Message] = field(default_factory=list)
    bot: BotApi | None = field(default=None, compare=False)  # the bot the command came through (None: console)

    def reply(self, content: str | Message | Segment | Any) -> None:
        """Queue a reply; replies are delivered in order, before the handler's return value."""
        message = to_message(content)
        if message is not None:
            self.replies.append(message)

    async def prompt(self, message: Any = None, *, timeout: float = 60.0, type: Any = str, retries: int = 2) -> Any:
        """Ask the sender and wait for their next message in this chat (`plughost.sdk.conversations`)."""
        from plughost.sdk.conversations import prompt

        return await prompt(self.bot, message, timeout=timeout, type=type, retries=retries)

    def to_json(self) -> dict[str, Any]:
        return {
            "sender": self.sender.to_json(),
            "message": self.message.to_json(),
            "plugin_id": self.plugin_id,
            "command": self.command,
            "alias": self.alias,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], event: Any = None) -> CommandContext:
        sender = CommandSender.from_json(data.get("sender") or {})
        if isinstance(event, Mapping):
            sender = sender.with_event(event)
        return cls(
            sender=sender,
            message=Message.from_json(data.get("message") or ()),
            plugin_id=str(data.get("plugin_id", "")),
            command=str(data.get("command", "")),
            alias=str(data.get("alias", "")),
        )


class CommandPayload(dict[str, Any]):
    """A command call's payload, an ordinary JSON object, with the context it was made from kept
    beside it (`context`): an in-process handler takes that instead of parsing the JSON again,
    as it takes `Call.event` for `payload["event"]`. Nothing but the JSON crosses a wire."""

    __slots__ = ("context",)

    def __init__(self, fields: Mapping[str, Any], context: CommandContext) -> None:
        super().__init__(fields)
        self.context = context


def to_json_value(value: Any) -> Any:
    """The JSON form of a parsed argument value."""
    if type(value) in PLAIN:
        return value
    if isinstance(value, Message | Segment):
        return value.to_json()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, PermissionId | PermitteeId):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return value


# --------------------------------------------------------------------------------------------
# type hints → ParamSpec


_SIMPLE_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (UserId, "user"),
    (GroupId, "group"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (dt.datetime, "datetime"),
    (dt.date, "date"),
    (dt.time, "time"),
    (PermissionId, "permission_id"),
    (PermitteeId, "permittee_id"),
    (Message, "message"),
    (Segment, "segment"),
)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) == 1 and len(get_args(hint)) == 2:
            return members[0], True
    return hint, False


def parse_text(parser: Callable[[str], Any], text: str, type_name: str) -> Any:
    """`parser(text)`; a `ValueError`/`TypeError` becomes a `CommandArgumentError` for the user."""
    try:
        return parser(text)
    except CommandArgumentError:
        raise
    except (ValueError, TypeError) as exc:
        detail = f": {exc}" if str(exc) else ""
        raise CommandArgumentError(f"cannot parse '{text}' as {type_name}{detail}") from None


def is_optional(hint: Any) -> bool:
    """True for `T | None` / `Optional[T]`."""
    return _unwrap_optional(hint)[1]


def type_name(hint: Any) -> tuple[str, tuple[str, ...]]:
    """The parser name (and enum choices) for an annotation.

    Only the exact built-in types map to built-in parsers; any other class (even a subclass of
    `int`) is a custom type named after the class, parsed by a custom parser.
    """
    if hint is inspect.Parameter.empty or hint is Any:
        return "str", ()
    if get_origin(hint) is typing.Literal:
        return "enum", tuple(str(a) for a in get_args(hint))
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return "enum", tuple(m.name for m in hint)
        for cls, name in _SIMPLE_TYPES:
            if hint is cls:
                return name, ()
        return hint.__name__, ()
    return str(hint), ()


def param_specs(
    func: Callable[..., Any], *, raw: bool = False, only: Iterable[str] | None = None
) -> tuple[ParamSpec, ...]:
    """The command parameters of `func`: those in `only` (the arguments, as the binder sees them),
    else all but a `CommandContext` parameter."""
    hints = _hints(func)
    wanted = set(only) if only is not None else None
    specs: list[ParamSpec] = []
    for param in inspect.signature(func).parameters.values():
        hint = hints.get(param.name, param.annotation)
        if (wanted is not None and param.name not in wanted) or (wanted is None and _is_context(hint)):
            continue
        if param.kind is param.VAR_KEYWORD:
            raise CommandDefinitionError(f"command handler '{func.__qualname__}': **{param.name} is not supported")
        if raw:
            specs.append(ParamSpec(param.name, "message"))
            break
        inner, optional = _unwrap_optional(hint)
        name, choices = type_name(inner)
        has_default = param.default is not inspect.Parameter.empty
        variadic = param.kind is param.VAR_POSITIONAL
        default = _json_default(param.default) if has_default else None
        specs.append(
            ParamSpec(
                param.name,
                name,
                required=not (has_default or optional or variadic),
                default=default,
                variadic=variadic,
                choices=choices,
            )
        )
    return tuple(specs)


def _json_default(value: Any) -> Any:
    value = to_json_value(value)
    return value if isinstance(value, str | int | float | bool | type(None) | list | dict) else str(value)


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(func)
    except Exception as exc:
        where = f"command handler '{func.__qualname__}'"
        raise CommandDefinitionError(f"{where}: cannot resolve type hints: {exc}") from exc


def _is_context(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, CommandContext)


# --------------------------------------------------------------------------------------------
# JSON / typed values → the Python values a handler expects


def coerce(hint: Any, value: Any) -> Any:
    """Turn an engine value or its JSON form into the annotated type (idempotent)."""
    inner, _ = _unwrap_optional(hint)
    if value is None or inner is inspect.Parameter.empty or inner is Any:
        return value
    if not isinstance(inner, type):
        return value
    if isinstance(value, inner) and not (inner is int and isinstance(value, bool)):
        return value
    if issubclass(inner, enum.Enum):
        return _enum_member(inner, value)
    if issubclass(inner, dt.datetime):
        return dt.datetime.fromisoformat(value)
    if issubclass(inner, dt.date):
        return dt.date.fromisoformat(value)
    if issubclass(inner, dt.time):
        return dt.time.fromisoformat(value)
    if issubclass(inner, Message):
        return Message.from_json(value) if isinstance(value, list) else Message(value)
    if issubclass(inner, Segment):
        return Segment.from_json(value) if isinstance(value, Mapping) else Segment.text(str(value))
    if issubclass(inner, PermissionId | PermitteeId):
        return inner.parse(str(value))
    if issubclass(inner, bool | int | float | str):
        return inner(value)
    return value


def _enum_member(cls: type[enum.Enum], value: Any) -> enum.Enum:
    text = str(value)
    for member in cls:
        if member.name.lower() == text.lower() or str(member.value).lower() == text.lower():
            return member
    raise CommandArgumentError(f"'{value}' is not one of: {', '.join(m.name for m in cls)}")


# --------------------------------------------------------------------------------------------
# authoring


@dataclass
class _CommandDecl:
    """A command being declared: options plus overload functions plus subcommands."""

    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    usage: str = ""
    category: str = ""
    role: Role | None = None
    scope: Scope | None = None
    prefix_optional: bool = False
    overloads: list[CommandOverload] = field(default_factory=list)
    subcommands: dict[str, _CommandDecl] = field(default_factory=dict)

    def spec(self, role: Role = "anyone", scope: Scope = "all") -> CommandSpec:
        own_role = self.role or role
        own_scope = self.scope or scope
        return CommandSpec(
            name=self.name,
            aliases=self.aliases,
            description=self.description,
            usage=self.usage,
            category=self.category,
            role=own_role,
            scope=own_scope,
            prefix_optional=self.prefix_optional,
            overloads=tuple(self.overloads),
            subcommands=tuple(s.spec(own_role, own_scope) for s in self.subcommands.values()),
        )


def _check_name(name: str) -> str:
    if not name or not name.strip() or any(c.isspace() for c in name) or ":" in name or "." in name:
        raise CommandDefinitionError(
            f"invalid command name {name!r}: names must be non-blank and contain no whitespace, ':' or '.'"
        )
    return name


class CommandGroup:
    """A composite command; `.sub(*names)` declares a subcommand, `.group(name)` nests a group."""

    def __init__(self, owner: CommandsMixin, decl: _CommandDecl, path: tuple[str, ...]) -> None:
        self._owner = owner
        self._decl = decl
        self._path = path

    @property
    def name(self) -> str:
        return self._decl.name

    def sub(
        self,
        name: str,
        *aliases: str,
        description: str = "",
        role: Role | None = None,
        scope: Scope | None = None,
        raw: bool = False,
        parsers: Mapping[str | type, ArgumentParser] | None = None,
    ) -> Callable[[F], F]:
        """Declare a subcommand (several names allowed); the same name again adds an overload."""

        def register(func: F) -> F:
            decl = self._child(name, aliases, description, role, scope)
            self._owner._add_overload(
                decl, (*self._path, decl.name), func, raw=raw, parsers=parsers, description=description
            )
            return func

        return register

    def group(
        self, name: str, *aliases: str, description: str = "", role: Role | None = None, scope: Scope | None = None
    ) -> CommandGroup:
        """A nested composite command."""
        decl = self._child(name, aliases, description, role, scope)
        return CommandGroup(self._owner, decl, (*self._path, decl.name))

    def _child(
        self, name: str, aliases: Iterable[str], description: str, role: Role | None, scope: Scope | None
    ) -> _CommandDecl:
        key = _check_name(name).lower()
        decl = self._decl.subcommands.get(key)
        if decl is None:
            decl = self._decl.subcommands[key] = _CommandDecl(
                name, tuple(_check_name(a) for a in aliases), description, role=role, scope=scope
            )
        return decl


class CommandsMixin(DescriptorContribution):
    """Adds `command`, `command_group` and `argument_parser` to `Plugin`."""

    id: str
    add_handler: Callable[..., Any]

    @property
    def _commands(self) -> dict[str, _CommandDecl]:
        return self._declared("_command_decls", dict[str, _CommandDecl])

    @property
    def _parsers(self) -> dict[str, dict[str, ArgumentParser]]:
        """Custom parsers: `""` → plugin-wide, `<handler>` → one overload; keyed by type name."""
        return self._declared("_command_parsers", lambda: {"": {}})

    def command(
        self,
        name: str | None = None,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        usage: str = "",
        category: str = "",
        role: Role = "anyone",
        scope: Scope = "all",
        prefix_optional: bool = False,
        raw: bool = False,
        parsers: Mapping[str | type, ArgumentParser] | None = None,
    ) -> Callable[[F], F]:
        """Declare a command; declaring the same name again adds an overload."""

        def register(func: F) -> F:
            command_name = _check_name(name if name is not None else func.__name__)
            decl = self._commands.get(command_name.lower())
            if decl is None:
                decl = self._commands[command_name.lower()] = _CommandDecl(
                    command_name,
                    tuple(_check_name(a) for a in aliases),
                    _summary(description, func),
                    usage,
                    category,
                    role,
                    scope,
                    prefix_optional,
                )
            else:
                decl.aliases = tuple(dict.fromkeys((*decl.aliases, *(_check_name(a) for a in aliases))))
            self._add_overload(decl, (decl.name,), func, raw=raw, parsers=parsers, description=description)
            return func

        return register

    def command_group(
        self,
        name: str,
        *,
        aliases: Iterable[str] = (),
        description: str = "",
        category: str = "",
        role: Role = "anyone",
        scope: Scope = "all",
        prefix_optional: bool = False,
    ) -> CommandGroup:
        """A composite command whose subcommands are declared with `.sub(...)`."""
        key = _check_name(name).lower()
        decl = self._commands.get(key)
        if decl is None:
            decl = self._commands[key] = _CommandDecl(
                name, tuple(_check_name(a) for a in aliases), description, "", category, role, scope, prefix_optional
            )
        return CommandGroup(self, decl, (decl.name,))

    def argument_parser(self, target: str | type) -> Callable[[F], F]:
        """Register a parser (text → value) for a custom parameter type, for all of this plugin's commands.

        Raise `CommandArgumentError` (or `ValueError`) with a user-facing message on bad input.
        """

        def register(func: F) -> F:
            self._parsers[""][_parser_key(target)] = func
            return func

        return register

    def custom_parser(self, handler: str, type_name: str) -> ArgumentParser | None:
        """The custom parser for `type_name` in overload `handler` (per-command first, then plugin-wide)."""
        per_command = self._parsers.get(handler, {})
        return per_command.get(type_name) or self._parsers[""].get(type_name)

    def _add_overload(
        self,
        decl: _CommandDecl,
        path: tuple[str, ...],
        func: Callable[..., Any],
        *,
        raw: bool,
        parsers: Mapping[str | type, ArgumentParser] | None,
        description: str = "",
    ) -> None:
        base = COMMAND_HANDLER_PREFIX + " ".join(path)
        handler_name = base if not decl.overloads else f"{base}#{len(decl.overloads) + 1}"
        handler = self.add_handler(
            handler_name, func, "command", raw=raw, parsers=functools.partial(self.custom_parser, handler_name)
        )
        params = param_specs(func, raw=raw, only=handler.binding.argument_names)
        if parsers:
            self._parsers[handler_name] = {_parser_key(k): v for k, v in parsers.items()}
        said = _summary(description, func)  # kept only where it says something the command does not
        own = said if said != decl.description else ""
        decl.overloads.append(CommandOverload(handler_name, params, raw, own))

    def command_specs(self) -> tuple[CommandSpec, ...]:
        """The declared commands; parameters whose type has a custom parser are marked `custom`
        (the host hands over the word and the plugin parses it)."""
        return tuple(self._mark_custom(d.spec()) for d in self._commands.values())

    def _mark_custom(self, spec: CommandSpec) -> CommandSpec:
        overloads = tuple(
            replace(
                o, params=tuple(replace(p, custom=self.custom_parser(o.handler, p.type) is not None) for p in o.params)
            )
            for o in spec.overloads
        )
        return replace(spec, overloads=overloads, subcommands=tuple(self._mark_custom(s) for s in spec.subcommands))

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        descriptor = super()._extend_descriptor(descriptor)
        if not self._commands:
            return descriptor
        return replace(
            descriptor,
            commands=(*descriptor.commands, *self.command_specs()),
            capabilities=descriptor.capabilities | {"commands"},
        )


def _summary(description: str, func: Callable[..., Any]) -> str:
    """A command's (or overload's) description: the one given, else its docstring's first line."""
    return description or (inspect.getdoc(func) or "").split("\n")[0]


def _parser_key(target: str | type) -> str:
    return target if isinstance(target, str) else target.__name__
