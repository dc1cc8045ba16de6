"""Built-in commands (`console:*` permissions): help, plugins, registry, dynamic-errors, permission, status, stop.

They are written with the same SDK decorators as plugin commands and run in the host. On the
console they are always allowed; in chat they need the admin role (and, as every command, the
permission `console:command.<name>`, which the configured owners hold implicitly) — except
`/help`, which anyone may run: it lists only the commands the sender may run.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plughost.bot.channels import chat_of_sender
from plughost.bot.commands.chat_switching import (
    ChatKind,
    allow_group_admins,
    checked_chat,
    switch_in_chat,
    where_marker,
)
from plughost.errors import PlugHostError, PluginNotFoundError
from plughost.sdk.commands import CommandContext
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.plugin import Plugin

if TYPE_CHECKING:
    from plughost.bot.commands.engine import CommandEngine
    from plughost.bot.commands.registry import CommandNode
    from plughost.core.manager import PluginManager
    from plughost.sdk.descriptor import Descriptor

BUILTIN_ID = "console"
PUBLIC_BUILTINS = frozenset({"help"})
"""Built-ins anyone may run in chat, with no role or permission."""


class CancelMode(enum.Enum):
    recursively = "recursively"


@dataclass
class BuiltinEnvironment:
    """What the built-ins act on."""

    engine: CommandEngine
    manager: PluginManager | None = None
    request_stop: Callable[[], None] | None = None
    started_at: float = field(default_factory=time.time)
    status_sections: list[Callable[[], list[str]]] = field(default_factory=list)  # more `/status` lines

    def require_manager(self) -> PluginManager:
        if self.manager is None:
            raise PlugHostError("no plugin manager is attached to this command engine")
        return self.manager


def builtin_plugin(env: BuiltinEnvironment) -> Plugin:
    """A `Plugin` object declaring every built-in command."""
    plugin = Plugin(id=BUILTIN_ID, version="1")
    for declare in (_help, _plugins, _diagnostics, _permissions, _host):
        declare(plugin, env)
    return plugin


def _help(plugin: Plugin, env: BuiltinEnvironment) -> None:
    engine = env.engine

    @plugin.command("help", aliases=["?"], description="list the commands you may run (paged), or show one")
    def help_(ctx: CommandContext, topic: str | None = None) -> str:
        if topic is not None and not topic.isdigit():
            return _help_command(env, ctx, topic)
        page = int(topic or 1)
        runnable = sorted(
            (
                n
                for n in engine.all_commands()
                if engine.may_run(ctx.sender, n) and engine.registry.names_of(n, console=ctx.sender.is_console)
            ),
            key=lambda n: (n.builtin, _category(n).lower(), n.name.lower()),
        )
        # chat gets pages; the console scrolls, so it gets everything at once
        size = max(1, len(runnable)) if ctx.sender.is_console else engine.config.help_page_size
        pages = max(1, -(-len(runnable) // size))
        if page < 1 or page > pages:
            return f"there is no page {page}; pages: 1..{pages}"
        lines = [f"commands (page {page}/{pages}):"]
        category = None
        for node in runnable[(page - 1) * size : page * size]:
            if _category(node) != category:
                category = _category(node)
                lines.append(f"[{category}]")
            lines.extend(f"  {line}" for line in node.usage_lines(engine.prefix))
        if page < pages:
            lines.append(f"type {engine.prefix}help {page + 1} for more")
        return "\n".join(lines)


def _category(node: CommandNode) -> str:
    if node.console_only:
        return "console"
    if node.builtin:
        return "built-in"
    return node.spec.category or node.plugin_id


def _help_command(env: BuiltinEnvironment, ctx: CommandContext, command: str) -> str:
    engine = env.engine
    name = command.removeprefix(engine.prefix)
    found = engine.registry.lookup(name, console=ctx.sender.is_console)
    if found is None or found[1] or not engine.may_run(ctx.sender, found[0]):
        return engine.unknown_text(ctx.sender, name)
    node = found[0]
    aliases = ", ".join(node.spec.aliases)
    head = f"{engine.prefix}{node.name}" + (f" (aliases: {aliases})" if aliases else "")
    if node.children and node.spec.description:  # a group: its usage lines describe the subcommands
        head += f"  # {node.spec.description}"
    if node.console_only:
        permission = "console only"
    else:
        permission = "none, anyone may run it" if node.public else str(node.permission)
    return "\n".join([head, *node.usage_lines(engine.prefix), f"permission: {permission}"])


def _plugins(plugin: Plugin, env: BuiltinEnvironment) -> None:
    manager = env.require_manager
    plugins = plugin.command_group("plugins", aliases=["plugin"], description="list and manage plugins")

    allow_group_admins(env.engine)

    @plugin.command("plugins")
    def plugins_default(ctx: CommandContext) -> str:
        return _plugin_list(manager(), chat_of_sender(ctx.sender))

    @plugins.sub("list", "ls", description="list plugins (and whether each is on in this chat)")
    def plugins_list(ctx: CommandContext) -> str:
        return _plugin_list(manager(), chat_of_sender(ctx.sender))

    @plugins.sub("enable", description="enable a plugin")
    async def plugins_enable(ctx: CommandContext, plugin_id: str) -> str:
        checked_chat(env.engine, ctx.sender, None, None)
        instance = _require(manager(), plugin_id)
        if instance.is_enabled:
            return f"plugin '{plugin_id}' is already enabled"
        await manager().enable_plugin(plugin_id)
        return f"plugin '{plugin_id}' enabled"

    @plugins.sub("enable", description="switch a plugin on in one group or private chat")
    def plugins_enable_in(ctx: CommandContext, plugin_id: str, where: ChatKind, chat: int) -> str:
        return switch_in_chat(manager(), plugin_id, checked_chat(env.engine, ctx.sender, where, chat), True)

    @plugins.sub("disable", description="switch a plugin off in one group or private chat")
    def plugins_disable_in(ctx: CommandContext, plugin_id: str, where: ChatKind, chat: int) -> str:
        return switch_in_chat(manager(), plugin_id, checked_chat(env.engine, ctx.sender, where, chat), False)

    @plugins.sub("disable", description="disable a plugin")
    async def plugins_disable(ctx: CommandContext, plugin_id: str) -> str:
        checked_chat(env.engine, ctx.sender, None, None)
        instance = _require(manager(), plugin_id)
        if not instance.is_enabled:
            return f"plugin '{plugin_id}' is already disabled"
        await manager().disable_plugin(plugin_id)
        return f"plugin '{plugin_id}' disabled"

    @plugins.sub("reload", description="reload one plugin")
    async def plugins_reload_one(plugin_id: str) -> str:
        serving = _require(manager(), plugin_id).is_loaded
        try:
            instance = await manager().reload_plugin(plugin_id)
        except PlugHostError as exc:
            what = "the old version keeps serving" if serving else "it is not loaded"
            raise PlugHostError(f"reload of '{plugin_id}' failed, {what}: {exc}") from None
        return f"plugin '{plugin_id}' reloaded (version {instance.manifest.version})"

    @plugins.sub("reload", description="reload every loaded plugin")
    async def plugins_reload_all() -> str:
        lines: list[str] = []
        for instance in manager().list_plugins():
            if not instance.is_loaded:
                continue
            try:
                await manager().reload_plugin(instance.id)
                lines.append(f"plugin '{instance.id}' reloaded")
            except PlugHostError as exc:
                lines.append(f"plugin '{instance.id}' failed to reload (old version serving): {exc}")
        return "\n".join(lines) or "no loaded plugins"


def _diagnostics(plugin: Plugin, env: BuiltinEnvironment) -> None:
    engine, manager = env.engine, env.require_manager

    @plugin.command("registry", description="effective commands and name conflicts")
    def registry() -> str:
        reg = engine.registry
        lines = [f"{len(reg.commands)} commands:"]
        for node in reg.commands:
            names = ", ".join(reg.names_of(node))
            where = ", console only" if node.console_only else ""
            lines.append(
                f"  {engine.prefix}{node.name}  [{node.plugin_id}, priority {node.priority}{where}]  names: {names}"
            )
        lines.append(f"{len(reg.conflicts)} conflicts" + (":" if reg.conflicts else ""))
        lines.extend(f"  {c}" for c in reg.conflicts)
        if reg.problems:
            lines.append(f"{len(reg.problems)} problems:")
            lines.extend(f"  {p}" for p in reg.problems)
        return "\n".join(lines)

    errors = plugin.command_group("dynamic-errors", description="circuit breaker state and recent errors")

    @plugin.command("dynamic-errors")
    def dynamic_errors() -> str:
        mgr = manager()
        lines: list[str] = []
        for instance in mgr.list_plugins():
            snap = mgr.guard.snapshot(instance.id)
            breaker = snap["breaker"]
            recent = [e for h in snap["handlers"].values() for e in h["recent_errors"]]
            if breaker["state"] == "closed" and not breaker["consecutive_failures"] and not recent:
                continue
            isolated = f"isolated for {breaker['isolated_for_s']:.1f} s more, " if breaker["state"] == "open" else ""
            lines.append(
                f"{instance.id}: {breaker['state']}, {breaker['consecutive_failures']} consecutive failures, "
                f"{isolated}{breaker['isolations']} isolations"
            )
            for err in sorted(recent, key=lambda e: e["timestamp"])[-3:]:
                when = time.strftime("%H:%M:%S", time.localtime(err["timestamp"]))
                error_id = f" [error {err['error_id']}]" if err.get("error_id") else ""
                at = f" (at {err['at']})" if err.get("at") else ""
                lines.append(f"  {when} {err['handler']}{error_id}: {err['message']}{at}")
        return "\n".join(lines) or "no plugin errors"

    @errors.sub("clear", description="close every circuit (or one plugin's)")
    def dynamic_errors_clear(plugin_id: str | None = None) -> str:
        mgr = manager()
        ids = [plugin_id] if plugin_id else [i.id for i in mgr.list_plugins()]
        if plugin_id:
            _require(mgr, plugin_id)
        opened = [pid for pid in ids if mgr.guard.clear(pid)]
        if plugin_id:
            return f"closed the circuit breaker of '{plugin_id}'" if opened else f"'{plugin_id}' was not isolated"
        return f"closed {len(opened)} circuit breaker(s): {', '.join(opened)}" if opened else "no circuit was open"


def _permissions(plugin: Plugin, env: BuiltinEnvironment) -> None:
    perm = plugin.command_group("permission", aliases=["perm"], description="grant and revoke permissions")
    service = env.engine.permissions

    @perm.sub("permit", "grant", "add", description="grant a permission")
    def permit(who: PermitteeId, what: PermissionId) -> str:
        if service.permit(who, what):
            return f"granted {what} to {who}"
        return f"{who} already holds {what}"

    @perm.sub("cancel", "deny", "remove", description="revoke a permission [recursively]")
    def cancel(who: PermitteeId, what: PermissionId, mode: CancelMode | None = None) -> str:
        removed = service.cancel(who, what, recursive=mode is CancelMode.recursively)
        if not removed:
            return f"{who} holds no direct grant of {what}"
        return f"revoked {removed} grant{'s' if removed != 1 else ''} of {what} from {who}"

    @perm.sub("list", "lp", description="list registered permissions")
    def list_permissions() -> str:
        return "\n".join(f"{p}  {d}".rstrip() for p, d in service.registered().items())

    @perm.sub("granted", "gp", "pp", description="permissions granted to a permittee")
    def granted(who: PermitteeId) -> str:
        direct = service.granted(who)
        if not direct:
            return f"{who} holds no direct grants"
        return f"{who}: " + ", ".join(map(str, direct))


def _host(plugin: Plugin, env: BuiltinEnvironment) -> None:
    engine = env.engine

    @plugin.command("status", description="uptime, plugins, breakers, memory")
    def status() -> str:
        uptime = time.time() - env.started_at
        lines = [f"uptime: {_duration(uptime)}"]
        if env.manager is not None:
            instances = env.manager.list_plugins()
            states: dict[str, int] = {}
            for instance in instances:
                states[str(instance.state)] = states.get(str(instance.state), 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"
            lines.append(f"plugins: {len(instances)} ({summary})")
            open_breakers = [
                i.id for i in instances if env.manager.guard.snapshot(i.id)["breaker"]["state"] != "closed"
            ]
            lines.append("breakers: " + (", ".join(f"{i} open" for i in open_breakers) or "all closed"))
            lines.append(bus_line(env.manager.bus.stats()))
        lines.append(f"commands: {len(engine.registry.commands)}")
        for section in env.status_sections:
            lines.extend(section())
        lines.append(f"memory: {_rss_mb():.1f} MB")
        return "\n".join(lines)

    # /stop ------------------------------------------------------------------------------------
    @plugin.command("stop", description="shut plughost down")
    def stop() -> str:
        if env.request_stop is None:
            raise PlugHostError("this host cannot be stopped from a command")
        env.request_stop()
        return "stopping…"


def bus_line(stats: Mapping[str, Any]) -> str:
    """`/status`'s line about the message bus: backend, traffic, and what slow subscribers lost."""
    line = (
        f"bus ({stats['backend']}): {stats['published']} published, {stats['requests']} requests, "
        f"{stats['delivered']} delivered, {stats['failed']} failed"
    )
    if stats["overflowed"]:
        slow = sorted({s["plugin"] for s in stats["subscriptions"] if s["overflowed"]})
        line += f", {stats['overflowed']} dropped for slow subscribers ({', '.join(slow) or 'since removed'})"
    return line


def _require(mgr: PluginManager, plugin_id: str) -> Any:
    instance = mgr.get_plugin(plugin_id)
    if instance is None:
        raise PluginNotFoundError(plugin_id)
    return instance


def _plugin_list(mgr: PluginManager, chat: str = "console") -> str:
    instances = mgr.list_plugins()
    if not instances:
        return "no plugins"
    lines = [f"{len(instances)} plugins" + ("" if chat == "console" else f" (in {chat})") + ":"]
    for i in instances:
        error = f"  error: {i.error}" if i.error else ""
        lines.append(
            f"  {i.id} {i.manifest.version} [{i.state}] {i.manifest.runtime}, priority {i.priority}, "
            f"{_offers(i.descriptor)}{where_marker(mgr, i.id, chat) if i.is_enabled else ''}{error}"
        )
    return "\n".join(lines)


def _offers(descriptor: Descriptor | None) -> str:
    """`2 commands, 1 method, 1 route`: what a plugin offers (`nothing loaded` before it has a descriptor)."""
    if descriptor is None:
        return "nothing loaded"
    return ", ".join(descriptor.offers()) or "nothing a user or the host can call"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
