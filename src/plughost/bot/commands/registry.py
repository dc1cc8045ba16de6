"""The command registry: effective commands of enabled plugins, collisions, usage lines.

Lookup is a dict keyed by lower-cased name/alias (O(1) in the number of commands); the glued
form (`创建角色小明-男`) tries the token's prefixes from the longest registered name length down,
so it costs O(longest name), not O(commands).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from plughost.bot.commands.parsers import ArgumentParser, ParserRegistry, parse_any
from plughost.sdk.call import Call, Outcome
from plughost.sdk.descriptor import CommandOverload, CommandSpec, Descriptor, ParamSpec
from plughost.sdk.permissions import PermissionId


class CommandTarget(Protocol):
    """Where a command's handlers live: a plugin (through the guard) or the host itself."""

    plugin_id: str

    def call(self, call: Call) -> Awaitable[Outcome]: ...


@dataclass(frozen=True)
class CommandSource:
    """One plugin's contribution: its descriptor and how to call it."""

    plugin_id: str
    priority: int
    descriptor: Descriptor
    target: CommandTarget
    builtin: bool = False
    public: frozenset[str] = frozenset()
    """Built-in commands anyone may run in chat without a permission (`/help`: it lists only what
    the sender may run)."""
    console_only: bool = False
    """Commands of the console itself (`/as`, `/poke` …): they exist only for the console sender,
    where they win every name; chat users reach the plugin commands they shadow."""


@dataclass(frozen=True, slots=True)
class ParamPlan:
    spec: ParamSpec
    parse: ArgumentParser


@dataclass(frozen=True, slots=True)
class OverloadPlan:
    """An overload with its parsers resolved once, at registration."""

    overload: CommandOverload
    params: tuple[ParamPlan, ...]
    required: int
    optional: int
    variadic: ParamPlan | None

    @property
    def handler(self) -> str:
        return self.overload.handler

    def applies(self, count: int) -> bool:
        if self.overload.raw:
            return True
        return count >= self.required and (self.variadic is not None or count <= self.required + self.optional)

    def specificity(self, count: int) -> tuple[int, int]:
        """(parameters, -defaults used): Mirai's most specific overload wins; raw overloads come last."""
        if self.overload.raw:
            return (-1, 0)
        fixed = self.required + self.optional
        defaults_used = max(0, fixed - count)
        return (fixed + (1 if self.variadic is not None and count > fixed else 0), -defaults_used)


@dataclass(eq=False)
class CommandNode:
    """A registered command or subcommand."""

    spec: CommandSpec
    plugin_id: str
    path: tuple[str, ...]
    target: CommandTarget
    permission: PermissionId
    priority: int = 0
    builtin: bool = False
    public: bool = False
    console_only: bool = False
    overloads: tuple[OverloadPlan, ...] = ()
    children: dict[str, CommandNode] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def full_name(self) -> str:
        return " ".join(self.path)

    def unique_children(self) -> list[CommandNode]:
        return list({id(c): c for c in self.children.values()}.values())

    def usage_lines(self, prefix: str = "/") -> list[str]:
        """`/name <required> [optional] [rest...]  # description`, one line per overload/subcommand."""
        if self.spec.usage:
            return [line for line in self.spec.usage.splitlines() if line.strip()]
        lines = [
            usage_line(prefix, self.path, o.overload.params, o.overload.description or self.spec.description)
            for o in self.overloads
        ]
        for child in self.unique_children():
            lines.extend(child.usage_lines(prefix))
        if not lines:
            lines.append(usage_line(prefix, self.path, (), self.spec.description))
        return lines


def usage_line(prefix: str, path: Iterable[str], params: Iterable[ParamSpec], description: str) -> str:
    parts = [prefix + " ".join(path)]
    for p in params:
        label = p.name if p.type in ("str", "any", "message") else f"{p.name}:{p.type}"
        if p.choices:
            label = f"{p.name}:{'|'.join(p.choices)}"
        if p.variadic:
            parts.append(f"[{label}...]")
        elif p.required:
            parts.append(f"<{label}>")
        else:
            parts.append(f"[{label}]")
    line = " ".join(parts)
    return f"{line}  # {description}" if description else line


@dataclass(frozen=True)
class Conflict:
    """A name two plugins both wanted; `loser` keeps its other names."""

    name: str
    winner: str
    loser: str
    reason: str

    def __str__(self) -> str:
        return f"'{self.name}': {self.winner} wins over {self.loser} ({self.reason})"


def valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() for c in name) and ":" not in name and "." not in name


class CommandRegistry:
    """Effective commands, built from `CommandSource`s; rebuilt when plugins change."""

    def __init__(self, parsers: ParserRegistry | None = None) -> None:
        self.parsers = parsers or ParserRegistry()
        self.table: dict[str, CommandNode] = {}
        """Name → command for chat senders."""
        self.console_table: dict[str, CommandNode] = {}
        """Name → command for the console: `table` plus the console-only commands, which win."""
        self.commands: list[CommandNode] = []
        self.conflicts: list[Conflict] = []
        self.problems: list[str] = []
        self.max_name_length = 0

    def build(self, sources: Iterable[CommandSource]) -> None:
        """Replace the tables: higher priority wins a name, then the lower id; losers are recorded.
        Console-only commands are then laid over a copy of the table for the console."""
        ordered = sorted(sources, key=lambda s: (not s.builtin, -s.priority, s.plugin_id))
        table: dict[str, CommandNode] = {}
        commands: list[CommandNode] = []
        conflicts: list[Conflict] = []
        problems: list[str] = []
        for source in (s for s in ordered if not s.console_only):
            for spec in source.descriptor.commands:
                node = self._node(source, spec, (spec.name,), problems)
                if node is None:
                    continue
                claimed = False
                for name in self._names(source, spec, problems):
                    holder = table.get(name.lower())
                    if holder is None:
                        table[name.lower()] = node
                        claimed = True
                    elif holder is not node:
                        conflicts.append(Conflict(name, holder.plugin_id, source.plugin_id, _reason(holder, source)))
                if claimed:
                    commands.append(node)
        console_table = dict(table)
        for source in (s for s in ordered if s.console_only):
            for spec in source.descriptor.commands:
                node = self._node(source, spec, (spec.name,), problems)
                if node is None:
                    continue
                for name in self._names(source, spec, problems):
                    shadowed = console_table.get(name.lower())
                    if shadowed is not None and not shadowed.console_only:
                        reason = f"console-only command; chat users reach {shadowed.plugin_id}'s"
                        conflicts.append(Conflict(name, source.plugin_id, shadowed.plugin_id, reason))
                    console_table[name.lower()] = node
                commands.append(node)
        self.table = table
        self.console_table = console_table
        self.commands = commands
        self.conflicts = conflicts
        self.problems = problems
        self.max_name_length = max((len(k) for k in console_table), default=0)

    @staticmethod
    def _names(source: CommandSource, spec: CommandSpec, problems: list[str]) -> list[str]:
        """The valid names of a command (invalid ones are recorded as problems)."""
        names: list[str] = []
        for name in dict.fromkeys(spec.names):
            if valid_name(name):
                names.append(name)
            else:
                problems.append(f"{source.plugin_id}: invalid command name {name!r} (no blanks, ':' or '.')")
        return names

    def names_of(self, node: CommandNode, *, console: bool | None = None) -> list[str]:
        """The names that reach `node` for the console (`console=True`) or chat users (False);
        by default where the command lives (console-only commands: the console)."""
        table = self.console_table if (node.console_only if console is None else console) else self.table
        return [n for n in node.spec.names if table.get(n.lower()) is node]

    def _node(
        self, source: CommandSource, spec: CommandSpec, path: tuple[str, ...], problems: list[str]
    ) -> CommandNode | None:
        if not valid_name(spec.name):
            problems.append(f"{source.plugin_id}: invalid command name {spec.name!r} (no blanks, ':' or '.')")
            return None
        namespace = "console" if source.builtin else source.plugin_id
        node = CommandNode(
            spec=spec,
            plugin_id=source.plugin_id,
            path=path,
            target=source.target,
            permission=PermissionId(namespace, f"command.{path[0]}"),
            priority=source.priority,
            builtin=source.builtin,
            public=source.builtin and path[0] in source.public,
            console_only=source.console_only,
        )
        node.overloads = tuple(self._plan(o) for o in spec.overloads)
        for sub in spec.subcommands:
            child = self._node(source, sub, (*path, sub.name), problems)
            if child is None:
                continue
            for name in sub.names:
                if valid_name(name):
                    node.children.setdefault(name.lower(), child)
        return node

    def _plan(self, overload: CommandOverload) -> OverloadPlan:
        plans: list[ParamPlan] = []
        variadic: ParamPlan | None = None
        required = optional = 0
        for param in overload.params:
            plan = ParamPlan(param, self._parser(param))
            if param.variadic:
                variadic = plan
                continue
            plans.append(plan)
            if param.required:
                required += 1
            else:
                optional += 1
        return OverloadPlan(overload, tuple(plans), required, optional, variadic)

    def _parser(self, param: ParamSpec) -> ArgumentParser:
        """The host's parser for the parameter's type; the plugin parses `custom` and unknown types
        itself, so those get the argument as it is."""
        if param.custom:
            return parse_any
        return self.parsers.get(param.type) or parse_any

    # lookup -----------------------------------------------------------------------------------
    def lookup(self, token: str, *, glued: bool = True, console: bool = False) -> tuple[CommandNode, str] | None:
        """The command for `token` and the glued remainder ('' when the token is the whole name);
        `console` looks in the console's table (with the console-only commands)."""
        table = self.console_table if console else self.table
        key = token.lower()
        node = table.get(key)
        if node is not None or not glued:
            return (node, "") if node is not None else None
        for length in range(min(len(token) - 1, self.max_name_length), 0, -1):
            node = table.get(token[:length].lower())
            if node is not None:
                return node, token[length:]
        return None

    def all_commands(self) -> list[CommandNode]:
        return list(self.commands)


def _reason(holder: CommandNode, source: CommandSource) -> str:
    if holder.builtin:
        return "built-in command"
    if holder.priority != source.priority:
        return f"priority {holder.priority} > {source.priority}"
    return "same priority, lower id wins"
