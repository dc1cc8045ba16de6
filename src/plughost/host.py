"""`Host`: owns the plugin manager and, as later layers attach, the bot domain and surfaces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plughost.bot.command_stage import EngineCommandStage
from plughost.bot.commands.permissions import PermissionService
from plughost.bot.commands.service import CommandService
from plughost.bot.config import BotSettings
from plughost.bot.dispatch import CommandStage, Dispatcher
from plughost.core import manager as core_manager
from plughost.core.config import HostConfig
from plughost.guard import Guard
from plughost.runtime import Runtime, default_runtimes


class PluginManager(core_manager.PluginManager):
    """`plughost.PluginManager`: the manager with this installation's runtimes unless given others.

    `async with PluginManager("path/to/workspace") as manager:` is all LurkBot-style code needs;
    the `[process]` settings of `plughost.toml` configure the worker and executable runtimes.
    """

    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        config: HostConfig | None = None,
        runtimes: Mapping[str, Runtime] | None = None,
        guard: Guard | None = None,
    ) -> None:
        root = Path(workspace or Path.cwd()).resolve()
        config = config if config is not None else HostConfig.load(root)
        if runtimes is None:
            runtimes = default_runtimes(config.process, workspace=root)
        super().__init__(root, config=config, runtimes=runtimes, guard=guard)


class Host:
    """One running plugin host. `async with Host(workspace) as host:` loads the workspace.

    Everything that runs in the background belongs to the host (or to one of its plugins) and is
    stopped by `stop()`.
    """

    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        config: HostConfig | None = None,
        extra_plugin_dirs: Sequence[Path | str] = (),
        runtimes: Mapping[str, Runtime] | None = None,
    ) -> None:
        self.workspace = Path(workspace or Path.cwd()).resolve()
        self.config = config if config is not None else HostConfig.load(self.workspace)
        if extra_plugin_dirs:
            dirs = [*self.config.host.plugin_dirs, *(str(Path(d).resolve()) for d in extra_plugin_dirs)]
            self.config = self.config.model_copy(
                update={"host": self.config.host.model_copy(update={"plugin_dirs": dirs})}
            )
        self.bot_settings = BotSettings.from_host_config(self.config)  # [commands], [permissions], [[bots]]
        self.manager = PluginManager(self.workspace, config=self.config, runtimes=runtimes)
        self.started_at = time.time()
        self.stop_requested = asyncio.Event()
        self.commands = CommandService(
            self.manager,
            config=self.bot_settings.commands,
            permissions=PermissionService(
                self.workspace / self.bot_settings.permissions.file,
                default_permittees=self.bot_settings.permissions.default_permittees,
            ),
            request_stop=self.request_stop,
            started_at=self.started_at,
        )
        self.dispatcher = Dispatcher(self.manager, commands=EngineCommandStage(self.commands))
        self.commands.environment.status_sections.append(self.dispatcher.status_lines)

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self) -> int:
        """Load the workspace; returns how many plugins loaded."""
        self.started_at = self.commands.environment.started_at = time.time()
        loaded = await self.manager.discover_and_load_all()
        await self.dispatcher.__aenter__()  # surfaces (OneBot adapter, console) feed it once started
        return loaded

    def set_command_stage(self, commands: CommandStage | None) -> None:
        """Let the dispatcher resolve commands with this engine."""
        self.dispatcher.commands = commands

    def request_stop(self) -> None:
        """Ask `wait_until_stopped` to return (from `/stop`, signals, the console)."""
        self.stop_requested.set()

    async def wait_until_stopped(self) -> None:
        await self.stop_requested.wait()

    async def stop(self) -> None:
        await self.dispatcher.__aexit__(None, None, None)
        await self.manager.shutdown()

    @property
    def uptime_s(self) -> float:
        return time.time() - self.started_at
