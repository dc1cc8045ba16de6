"""Plugins as tools: a catalog of every enabled plugin's methods (and, opt-in, its commands).

Each tool has a name providers accept (`^[a-zA-Z0-9_-]{1,64}$`): `<plugin>__<method>` with every
other character replaced by `_` (commands: `<plugin>__cmd_<command>[_<subcommand>]`). Names that
collide after that (`com.example.x` and `com_example_x`), or that are longer than 64 characters,
all get a suffix from a hash of the tool's own plugin id and handler instead: the same tools get
the same names whatever order they were loaded in. The description is the method's docstring and
the parameters are its JSON schema (`MethodSpec.input_schema`).

The catalog follows the manager: it is rebuilt when a plugin loads, unloads, is enabled, disabled
or reloaded, and listeners (the MCP server's list-changed notifications) hear of every change
of the tool list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plughost.sdk.descriptor import CommandOverload, CommandSpec, Descriptor, ParamSpec
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.permissions import PermissionId

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

log = logging.getLogger("plughost.agent")
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME_LENGTH = 64
TOOL_NAMESPACE = "tool"
CHANGE_EVENTS = frozenset({EventType.LOAD, EventType.UNLOAD, EventType.ENABLE, EventType.DISABLE, EventType.RELOAD})
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_PERMISSION_UNSAFE = re.compile(r"[\s:]")
_HASH_LENGTH = 8
ToolKind = Literal["method", "command"]

# command parameter types → JSON schema types (everything else is given as text)
_PARAM_TYPES = {"int": "integer", "user": "integer", "group": "integer", "float": "number", "bool": "boolean"}


@dataclass(frozen=True, slots=True)
class CommandTool:
    """How a command tool calls its command: the overload's handler and parameters."""

    path: tuple[str, ...]
    overload: CommandOverload


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: a plugin's method (or command) as providers and MCP clients see it."""

    name: str
    plugin_id: str
    handler: str
    kind: ToolKind
    description: str
    parameters: Mapping[str, Any]
    permission: PermissionId
    command: CommandTool | None = field(default=None, compare=False)

    @property
    def plugin_permission(self) -> PermissionId:
        """`tool:<plugin>.*`: a grant of it covers every tool of the plugin."""
        return PermissionId(TOOL_NAMESPACE, f"{_permission_part(self.plugin_id)}.*")

    @property
    def label(self) -> str:
        """`plugin.method` (or `plugin /command sub`) for people and logs."""
        if self.command is not None:
            return f"{self.plugin_id} /{' '.join(self.command.path)}"
        return f"{self.plugin_id}.{self.handler}"

    def openai(self) -> dict[str, Any]:
        """An OpenAI function-calling tool (`tools` of a chat-completions request)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)},
        }

    def anthropic(self) -> dict[str, Any]:
        """An Anthropic tool definition (`tools` of a messages request)."""
        return {"name": self.name, "description": self.description, "input_schema": dict(self.parameters)}

    def mcp(self) -> dict[str, Any]:
        """An MCP tool (`tools/list`), as JSON."""
        return {
            "name": self.name,
            "title": self.label,
            "description": self.description,
            "inputSchema": dict(self.parameters),
        }

    def fingerprint(self) -> tuple[str, str, str, str]:
        return (self.name, self.label, self.description, json.dumps(self.parameters, sort_keys=True, default=str))


class ToolCatalog:
    """The tools of the enabled plugins, kept in step with the manager.

    `command_plugins` names the plugins whose chat commands are tools too (`"*"`: every plugin).
    Construction subscribes to the manager's lifecycle events; `close()` unsubscribes.
    """

    def __init__(self, manager: PluginManager, *, command_plugins: Collection[str] = ()) -> None:
        self.manager = manager
        self.command_plugins = frozenset(command_plugins)
        self._tools: tuple[ToolSpec, ...] = ()
        self._by_name: dict[str, ToolSpec] = {}
        self._built_for: Sequence[Any] | None = None
        self._fingerprint: tuple[tuple[str, str, str, str], ...] = ()
        self._listeners: list[Callable[[], None]] = []
        self.version = 0
        """Counts the changes of the tool list."""
        self._subscribed = True
        manager.add_event_handler(self._on_event, CHANGE_EVENTS)
        self._refresh()  # the tools of now: listeners hear of changes from here on

    def close(self) -> None:
        """Stop following the manager (listeners hear nothing more)."""
        if self._subscribed:
            self._subscribed = False
            self.manager.events.remove_handler(self._on_event)
        self._listeners.clear()

    # reading ------------------------------------------------------------------------------------
    def tools(self) -> tuple[ToolSpec, ...]:
        """Every tool, ordered by plugin priority (high first), then plugin id and tool name."""
        self._refresh()
        return self._tools

    def get(self, name: str) -> ToolSpec | None:
        self._refresh()
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self.tools())

    def openai_tools(self, allowed: Callable[[ToolSpec], bool] | None = None) -> list[dict[str, Any]]:
        return [t.openai() for t in self.tools() if allowed is None or allowed(t)]

    def anthropic_tools(self, allowed: Callable[[ToolSpec], bool] | None = None) -> list[dict[str, Any]]:
        return [t.anthropic() for t in self.tools() if allowed is None or allowed(t)]

    def mcp_tools(self, allowed: Callable[[ToolSpec], bool] | None = None) -> list[dict[str, Any]]:
        return [t.mcp() for t in self.tools() if allowed is None or allowed(t)]

    # changes --------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every change of the tool list (on the event loop; it must not raise)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_event(self, event: PluginEvent) -> None:
        if event.event_type in CHANGE_EVENTS:
            self._refresh()

    def _refresh(self) -> None:
        plugins = self.manager.enabled_plugins()
        if plugins is self._built_for:
            return
        self._built_for = plugins
        tools = build_tools(
            ((p.id, p.descriptor) for p in plugins if p.descriptor is not None), command_plugins=self.command_plugins
        )
        fingerprint = tuple(t.fingerprint() for t in tools)
        self._tools = tools
        self._by_name = {t.name: t for t in tools}
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        self.version += 1
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("a tool catalog listener failed")


def build_tools(
    plugins: Iterable[tuple[str, Descriptor]], *, command_plugins: Collection[str] = ()
) -> tuple[ToolSpec, ...]:
    """The tools of `plugins` (in the order given), with unique provider-safe names."""
    drafts: list[_Draft] = []
    everyone = "*" in command_plugins
    for plugin_id, descriptor in plugins:
        for method in descriptor.methods:
            drafts.append(
                _Draft(
                    plugin_id,
                    method.name,
                    method.name,
                    "method",
                    method.description.strip() or f"Method '{method.name}' of plugin '{plugin_id}'.",
                    object_schema(method.input_schema),
                    PermissionId(TOOL_NAMESPACE, f"{_permission_part(plugin_id)}.{_permission_part(method.name)}"),
                )
            )
        if everyone or plugin_id in command_plugins:
            for spec in descriptor.commands:
                drafts.extend(_command_drafts(plugin_id, spec, ()))
    names = unique_names([(d.plugin_id, d.kind, d.label) for d in drafts])
    return tuple(
        ToolSpec(
            names[(d.plugin_id, d.kind, d.label)],
            d.plugin_id,
            d.handler,
            d.kind,
            d.description,
            d.parameters,
            d.permission,
            d.command,
        )
        for d in drafts
    )


@dataclass(frozen=True, slots=True)
class _Draft:
    plugin_id: str
    label: str  # the part of the name after `<plugin>__`, before sanitising
    handler: str
    kind: ToolKind
    description: str
    parameters: Mapping[str, Any]
    permission: PermissionId
    command: CommandTool | None = None


def _command_drafts(plugin_id: str, spec: CommandSpec, parents: tuple[str, ...]) -> list[_Draft]:
    path = (*parents, spec.name)
    drafts: list[_Draft] = []
    if spec.overloads:
        overload = spec.overloads[0]  # the first form the plugin declared
        usage = f" Usage: {spec.usage}" if spec.usage else ""
        description = (spec.description.strip() or f"Chat command /{' '.join(path)} of plugin '{plugin_id}'.") + usage
        drafts.append(
            _Draft(
                plugin_id,
                "cmd_" + "_".join(path),
                overload.handler,
                "command",
                description,
                command_schema(overload),
                PermissionId(
                    TOOL_NAMESPACE, f"{_permission_part(plugin_id)}.command.{'.'.join(map(_permission_part, path))}"
                ),
                CommandTool(path, overload),
            )
        )
    for sub in spec.subcommands:
        drafts.extend(_command_drafts(plugin_id, sub, path))
    return drafts


def unique_names(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """Provider-safe unique names for `(plugin_id, kind, label)` keys.

    A key whose sanitised `<plugin>__<label>` is unique and short enough keeps it; every key of a
    group that collides (and every over-long one) gets a suffix hashed from the key itself, so
    the result does not depend on the order of `keys`.
    """
    bases: dict[tuple[str, str, str], str] = {k: f"{sanitise(k[0])}__{sanitise(k[2])}" for k in keys}
    counts: dict[str, int] = {}
    for base in bases.values():
        counts[base] = counts.get(base, 0) + 1
    names: dict[tuple[str, str, str], str] = {}
    for key, base in bases.items():
        if counts[base] == 1 and len(base) <= MAX_NAME_LENGTH:
            names[key] = base
    taken = set(names.values())
    for key in sorted(k for k in bases if k not in names):
        digest = hashlib.sha256("\0".join(key).encode()).hexdigest()
        length = _HASH_LENGTH
        while True:
            suffix = "_" + digest[:length]
            name = bases[key][: MAX_NAME_LENGTH - len(suffix)] + suffix
            if name not in taken or length >= len(digest):
                break
            length += 4
        names[key] = name
        taken.add(name)
    return names


def sanitise(text: str) -> str:
    """`text` with every character outside `[a-zA-Z0-9_-]` replaced by `_` ("_" when empty)."""
    return _UNSAFE.sub("_", text) or "_"


def object_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """A tool's parameters: the method's JSON schema, an object schema (`{}` accepts any object)."""
    result = dict(schema or {})
    if not result:
        return {"type": "object", "properties": {}}
    result.setdefault("type", "object")
    if result.get("type") == "object":
        result.setdefault("properties", {})
    return result


def command_schema(overload: CommandOverload) -> dict[str, Any]:
    """The JSON schema of a command overload's arguments (a raw command takes its text)."""
    if overload.raw:
        return {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "everything after the command"}},
            "required": ["text"],
            "additionalProperties": False,
        }
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in overload.params:
        item = _param_schema(param)
        properties[param.name] = {"type": "array", "items": item} if param.variadic else item
        if param.required and not param.variadic:
            required.append(param.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _param_schema(param: ParamSpec) -> dict[str, Any]:
    item: dict[str, Any] = {"type": _PARAM_TYPES.get(param.type, "string")}
    if param.choices:
        item = {"type": "string", "enum": list(param.choices)}
    if param.type not in _PARAM_TYPES and param.type != "str" and not param.choices:
        item["description"] = f"a {param.type}"
    if not param.required and param.default is not None and not param.variadic:
        item["default"] = param.default
    return item


def _permission_part(text: str) -> str:
    return _PERMISSION_UNSAFE.sub("_", text) or "_"
