"""`Host`: owns the plugin manager, the bot dispatcher and the surfaces (adapters) it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from plughost.bot.channels import chat_of_sender
from plughost.bot.command_stage import EngineCommandStage
from plughost.bot.commands.permissions import PermissionService
from plughost.bot.commands.service import CommandService
from plughost.bot.config import BotSettings
from plughost.bot.dispatch import CommandStage, Dispatcher
from plughost.bot.scheduler import Scheduler
from plughost.cluster import backend_for, control_for
from plughost.cluster.events import EventRole, event_role_for
from plughost.core import manager as core_manager
from plughost.core.backend import Backend
from plughost.core.config import HostConfig
from plughost.errors import PlugHostError
from plughost.guard import Guard
from plughost.runtime import Runtime, default_runtimes
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.host")
SCHEDULE_TIMES = Path(".plughost") / "schedules.json"

_ENDED_BY = {
    EventType.DISABLE: "was disabled",
    EventType.UNLOAD: "was unloaded",
    EventType.RELOAD: "was reloaded (a new version does not continue the old one's conversations)",
}


class Adapter(Protocol):
    """A surface the host starts after its plugins and dispatcher and stops before them."""

    async def start(self, tasks: TaskOwner) -> None:
        """Start serving; background work runs as tasks of `tasks` (closed after `aclose`)."""
        ...

    async def aclose(self) -> None:
        """Stop serving and release what `start` acquired (sockets, bots attached to the dispatcher)."""
        ...


AdapterT = TypeVar("AdapterT", bound=Adapter)


class PluginManager(core_manager.PluginManager):
    """`plughost.PluginManager`: the manager with this installation's runtimes unless given others.

    `async with PluginManager("path/to/workspace") as manager:` is all LurkBot-style code needs;
    the `[process]` settings of `plughost.toml` configure the worker and executable runtimes, and
    `[cluster] redis_url` puts the bus and the shared state on Redis (`plughost.cluster`).
    """

    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        config: HostConfig | None = None,
        runtimes: Mapping[str, Runtime] | None = None,
        guard: Guard | None = None,
        tasks: TaskOwner | None = None,
        backend: Backend | None = None,
    ) -> None:
        root = Path(workspace or Path.cwd()).resolve()
        config = config if config is not None else HostConfig.load(root)
        if runtimes is None:
            runtimes = default_runtimes(config.process, workspace=root)
        if backend is None:
            backend = backend_for(config)
        super().__init__(root, config=config, runtimes=runtimes, guard=guard, tasks=tasks, backend=backend)


class Host:
    """One running plugin host. `async with Host(workspace) as host:` loads the workspace.

    `hot_reload` (default `[host] hot_reload`) watches the plugin directories and the plugin config
    directory once the plugins have loaded: a changed plugin reloads (`plughost.core.watch`).

    Construction does no network I/O and needs no event loop. The host owns one task group: its
    owner `tasks` starts every background task (the manager's, each plugin's, the dispatcher's
    lane workers, the adapters') in an `asyncio.TaskGroup` held from `start()` to `stop()`.
    When start-up fails half way, whatever had started is stopped before the error propagates.
    `cluster_url` (a Redis URL) overrides `[cluster] redis_url`: the bus and the shared state
    then live in that Redis (`plughost run --cluster`).
    `cluster_role` overrides `[cluster] role` (`plughost run --role`: gateway, worker or both;
    see `plughost.cluster.events`).
    """

    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        config: HostConfig | None = None,
        extra_plugin_dirs: Sequence[Path | str] = (),
        runtimes: Mapping[str, Runtime] | None = None,
        hot_reload: bool | None = None,
        cluster_url: str | None = None,
        cluster_role: str | None = None,
    ) -> None:
        self.workspace = Path(workspace or Path.cwd()).resolve()
        self.config = config if config is not None else HostConfig.load(self.workspace)
        if cluster_url is not None:
            self.config = self.config.model_copy(update={"cluster": {**self.config.cluster, "redis_url": cluster_url}})
        if cluster_role is not None:
            self.config = self.config.model_copy(update={"cluster": {**self.config.cluster, "role": cluster_role}})
        self.hot_reload = self.config.host.hot_reload if hot_reload is None else hot_reload
        if extra_plugin_dirs:
            dirs = [*self.config.host.plugin_dirs, *(str(Path(d).resolve()) for d in extra_plugin_dirs)]
            self.config = self.config.model_copy(
                update={"host": self.config.host.model_copy(update={"plugin_dirs": dirs})}
            )
        self.bot_settings = BotSettings.from_host_config(self.config)  # [commands], [permissions], [[bots]]
        self.tasks = TaskOwner("host")
        self.manager = PluginManager(
            self.workspace, config=self.config, runtimes=runtimes, tasks=self.tasks.child("plugin manager")
        )
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
        switches = self.manager.chat_switches
        self.dispatcher = Dispatcher(
            self.manager,
            commands=EngineCommandStage(self.commands),
            tasks=self.tasks.child("dispatcher"),
            switches=switches,
        )
        self.commands.engine.switched_off = lambda sender: switches.off_in(chat_of_sender(sender))
        self.manager.outside_calls = self.dispatcher.send_outside_calls
        self.manager.add_event_handler(self._end_conversations, _ENDED_BY)
        self.scheduler = Scheduler(
            self.manager,
            self.dispatcher,
            tasks=self.tasks.child("scheduler"),
            times=self.workspace / SCHEDULE_TIMES,
            switches=switches,
        )
        """Runs the plugins' `@plugin.schedule` jobs (see `plughost.bot.scheduler`)."""
        self.cluster = control_for(
            self.manager, grants=self.commands.engine.permissions, tasks=self.tasks.child("cluster")
        )
        """With `[cluster] redis_url`: shares plugin settings, grants and breaker isolation with the
        other hosts (`plughost.cluster.control`); None otherwise."""
        self.commands.environment.status_sections.append(self.dispatcher.status_lines)
        self.commands.environment.status_sections.append(self.scheduler.status_lines)
        if self.cluster is not None:
            self.commands.environment.status_sections.append(self.cluster.status_lines)
        self.cluster_events: EventRole | None = event_role_for(
            self.config, self.manager.backend, self.dispatcher, self.bot_settings
        )
        """With `[cluster] role` gateway or worker: this node's part in event distribution
        (`plughost.cluster.events`); None for `both` (events are handled where they arrive)."""
        if self.cluster_events is not None:
            self.commands.environment.status_sections.append(self.cluster_events.status_lines)
            if not self.cluster_events.holds_connections:  # a worker node: the gateway runs them, once
                self.scheduler.elsewhere = "on the cluster's gateway node"
        self.adapters: list[Adapter] = []
        self._running: list[Adapter] = []
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def add_adapter(self, adapter: AdapterT) -> AdapterT:
        """Have the host start `adapter` (after loading the plugins) and stop it (first)."""
        if self._stack is not None:
            raise PlugHostError("add adapters before the host starts")
        self.adapters.append(adapter)
        return adapter

    async def start(self) -> int:
        """Load the workspace, start the dispatcher, then the adapters; returns how many plugins loaded.

        If any step fails (or is cancelled), everything started so far is stopped and the error propagates.
        """
        if self._stack is not None:
            raise PlugHostError("this host is already running")
        if self.tasks.closed:
            raise PlugHostError("this host has stopped; make a new Host to start again")
        self._stack = contextlib.AsyncExitStack()
        try:
            self.tasks.use_group(await self._stack.enter_async_context(asyncio.TaskGroup()))
            self.started_at = self.commands.environment.started_at = time.time()
            if self.cluster is not None:  # the cluster's plugin state first: plugins load as it says
                await self.cluster.start()
            loaded = await self.manager.discover_and_load_all()
            if self.hot_reload:
                await self.manager.watch()
            await self.dispatcher.start()  # surfaces (adapters, the console) feed it from now on
            if self.cluster_events is not None:  # before the adapters: their events go to the stream
                await self.cluster_events.start(self.tasks.child("event distribution"))
            for adapter in self.adapters:
                self._running.append(adapter)
                await adapter.start(self.tasks.child(f"adapter:{type(adapter).__name__}"))
        except BaseException:
            await self.stop()
            raise
        return loaded

    def set_command_stage(self, commands: CommandStage | None) -> None:
        """Let the dispatcher resolve commands with this engine."""
        self.dispatcher.commands = commands

    def _end_conversations(self, event: PluginEvent) -> None:
        """A plugin disabled, unloaded or reloaded: its open conversations end (`ConversationCancelled`)."""
        if event.success:
            self.dispatcher.conversations.cancel_plugin(event.plugin_id, _ENDED_BY[event.event_type])

    def request_stop(self) -> None:
        """Ask `wait_until_stopped` to return (from `/stop`, signals, the console)."""
        self.stop_requested.set()

    async def wait_until_stopped(self) -> None:
        await self.stop_requested.wait()

    async def stop(self) -> None:
        """Stop the adapters (newest first), the dispatcher, then every plugin; when it returns,
        every task the host started has ended."""
        try:
            while self._running:
                adapter = self._running.pop()
                try:
                    await adapter.aclose()
                except Exception:
                    log.exception("stopping adapter %r failed", adapter)
            if self.cluster_events is not None:
                await self.cluster_events.aclose()
            await self.dispatcher.aclose()
            if self.cluster is not None:  # before the manager closes the Redis connections it uses
                await self.cluster.aclose()
            await self.manager.shutdown()
        finally:
            await self.tasks.aclose()
            stack, self._stack = self._stack, None
            if stack is not None:
                await stack.aclose()

    @property
    def uptime_s(self) -> float:
        return time.time() - self.started_at
