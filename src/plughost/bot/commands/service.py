"""`CommandService`: the command engine wired to a `PluginManager` (enabled plugins + built-ins)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from plughost.bot.commands.builtins import BUILTIN_ID, PUBLIC_BUILTINS, BuiltinEnvironment, builtin_plugin
from plughost.bot.commands.engine import CommandEngine
from plughost.bot.commands.permissions import PermissionService
from plughost.bot.commands.registry import CommandSource
from plughost.bot.commands.results import CommandResult
from plughost.bot.commands.targets import PluginTarget, SdkTarget
from plughost.bot.config import CommandsConfig
from plughost.sdk.bot import BotApi
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.plugin import Plugin
from plughost.sdk.senders import CommandSender

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

_REBUILD_ON = frozenset({EventType.LOAD, EventType.UNLOAD, EventType.ENABLE, EventType.DISABLE, EventType.RELOAD})


class AddressedHandler(Protocol):
    """Answers a chat message addressed to the bot (it starts with @bot) that names no command.

    Returns the replies, in order ([] for none). A surface such as the agent sets one with
    `CommandService.addressed`; the bot layer never knows who answers.
    """

    async def __call__(
        self, sender: CommandSender, text: Message, event: MessageEvent, bot: BotApi
    ) -> list[Message]: ...


class CommandService:
    """Keeps the registry in step with the manager (rebuilt lazily after lifecycle events)."""

    def __init__(
        self,
        manager: PluginManager,
        *,
        config: CommandsConfig | None = None,
        permissions: PermissionService | None = None,
        request_stop: Callable[[], None] | None = None,
        started_at: float | None = None,
    ) -> None:
        self.manager = manager
        self.engine = CommandEngine(config=config, permissions=permissions)
        self.environment = BuiltinEnvironment(self.engine, manager, request_stop, started_at or time.time())
        builtins = builtin_plugin(self.environment)
        self._builtins = CommandSource(
            BUILTIN_ID, 0, builtins.describe(), SdkTarget(builtins), builtin=True, public=PUBLIC_BUILTINS
        )
        self._host_commands: dict[str, CommandSource] = {}
        self._console_commands: CommandSource | None = None
        self.addressed: AddressedHandler | None = None
        """Answers messages that mention the bot but name no command (None: they go on to the routes)."""
        self._dirty = True
        manager.add_event_handler(self._on_event, _REBUILD_ON)  # lifecycle only: execute events stay cheap

    def _on_event(self, event: PluginEvent) -> None:
        if event.event_type in _REBUILD_ON:
            self._dirty = True

    def register_parser(self, type_name: str, parser: Callable[..., Any]) -> None:
        """Add a host-wide argument parser (text → value, or `(argument, spec) → value`)."""
        self.engine.parsers.register(type_name, parser)
        self._dirty = True  # parsers are resolved when the registry is built

    def add_host_commands(self, plugin: Plugin, *, priority: int = 0) -> None:
        """Serve the commands of an SDK `Plugin` run by the host itself (a surface's commands, like the
        agent's `/ask`). Unlike the built-ins they are ordinary commands: permissions
        `<plugin id>:command.<name>`, granted to `[permissions] default_permittees` when first seen."""
        self._host_commands[plugin.id] = CommandSource(plugin.id, priority, plugin.describe(), SdkTarget(plugin))
        self._dirty = True

    def set_console_commands(self, plugin: Plugin | None) -> None:
        """Serve the commands of the console itself (`/as`, `/poke` …; None: none). Only the console
        sender sees them — in `/help`, completion and execution — and on the console they win
        every name; chat users reach the plugin commands they shadow (`/registry` lists each)."""
        self._console_commands = (
            None
            if plugin is None
            else CommandSource(plugin.id, 0, plugin.describe(), SdkTarget(plugin), builtin=True, console_only=True)
        )
        self._dirty = True

    def remove_host_commands(self, plugin_id: str) -> None:
        """Stop serving the commands `add_host_commands` added for `plugin_id`."""
        if self._host_commands.pop(plugin_id, None) is not None:
            self._dirty = True

    def refresh(self) -> CommandEngine:
        """Rebuild the registry now if plugins changed since the last build."""
        if self._dirty:
            self._dirty = False
            sources = [self._builtins, *self._host_commands.values()]
            if self._console_commands is not None:
                sources.append(self._console_commands)
            for instance in self.manager.enabled_plugins():
                handle = instance.handle
                if handle is None or not handle.descriptor.commands:
                    continue
                target = PluginTarget(instance.id, functools.partial(self.manager.call, instance.id))
                sources.append(CommandSource(instance.id, instance.priority, handle.descriptor, target))
            self.engine.rebuild(sources)
            self.engine.dormant = self._dormant_commands()
        return self.engine

    def _dormant_commands(self) -> dict[str, tuple[str, str]]:
        """Command name (lower case) → (plugin id, state) of the loaded plugins that are not enabled."""
        dormant: dict[str, tuple[str, str]] = {}
        for instance in self.manager.list_plugins():
            handle = instance.handle
            if instance.is_enabled or handle is None:
                continue
            for spec in handle.descriptor.commands:
                for name in spec.names:
                    dormant.setdefault(name.lower(), (instance.id, str(instance.state)))
        return dormant

    async def execute_command(self, sender: CommandSender, text: str | Message) -> CommandResult:
        """Run a command line or message as `sender` (see `CommandEngine.execute_command`)."""
        return await self.refresh().execute_command(sender, text)
