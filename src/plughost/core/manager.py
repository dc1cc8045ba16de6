"""`PluginManager`: discovery, lifecycle, configuration, state and guarded execution.

The manager only sees `PluginHandle`s and `Descriptor`s; which runtime made a handle, and where
the plugin runs, is the runtime's business: the runtimes are given to the manager (a `Host` builds
them with `plughost.runtime.default_runtimes()`). LurkBot's API and Jank's verbs are both offered
(see docs/python-api.md).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from plughost.core.backend import Backend, MemoryBackend
from plughost.core.bus import Bus
from plughost.core.chat_switches import ChatSwitches
from plughost.core.config import HostConfig, PluginConfigStore
from plughost.core.config_schema import check_config
from plughost.core.deps import dependency_names, plan_loading
from plughost.core.discovery import DiscoveryReport, candidate_from_path, discover, is_plugin_path
from plughost.core.events import EventBus, EventHandler
from plughost.core.files import write_atomic
from plughost.core.instance import ACTIVE_STATES, PluginInstance
from plughost.core.registry import PluginRegistry, RegistryEntry
from plughost.core.state import PluginStateFile
from plughost.core.state_store import StateStore
from plughost.core.watch import PluginWatcher
from plughost.errors import (
    ConfigError,
    NotAPluginError,
    PlugHostError,
    PluginLoadError,
    PluginNotFoundError,
    PluginStateError,
    StateFileError,
)
from plughost.guard import BreakerPolicy, Guard, GuardPolicy, execution_result
from plughost.runtime.base import (
    Candidate,
    LoadRequest,
    Runtime,
    RuntimeEvent,
    SupportsBuild,
    SupportsListeners,
    SupportsRediscover,
    written_by,
)
from plughost.sdk.call import UNAVAILABLE, ActionSink, Call, Outcome, settled
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest
from plughost.sdk.models import (
    DiscoveryStatus,
    EventType,
    PluginEvent,
    PluginExecutionContext,
    PluginExecutionResult,
    PluginState,
)
from plughost.sdk.plugin import EXECUTE_HANDLER
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger(__name__)
REGISTRY_FILE = Path(".plughost") / "registry.json"
REGISTRY_WRITE_DELAY_S = 1.0  # one registry write for a burst of lifecycle changes (and one at shutdown)


class PluginManager:
    """Owns every plugin of a workspace.

    `async with PluginManager(workspace, runtimes=default_runtimes()) as manager:` — `runtimes`
    maps a manifest's `runtime` (python, native, process) to the runtime that loads it
    (`plughost.PluginManager` fills them in). Its background tasks belong to `tasks` (a child of
    the host's when a `Host` made it); each loaded plugin gets a child of it, which unloading the
    plugin closes. `backend` carries the bus and keeps the shared state (default in memory;
    `plughost.cluster.redis_backend.RedisBackend` shares them through Redis); it connects when the
    plugins load.
    """

    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        config: HostConfig | None = None,
        runtimes: Mapping[str, Runtime],
        guard: Guard | None = None,
        tasks: TaskOwner | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.workspace = Path(workspace or Path.cwd()).resolve()
        self.config = config if config is not None else HostConfig.load(self.workspace)
        host = self.config.host
        self.tasks = tasks if tasks is not None else TaskOwner("plugin manager")
        self.events = EventBus(host.event_history, tasks=self.tasks.child("plugin events"))
        policy = GuardPolicy(
            BreakerPolicy(self.config.guard.failure_threshold, self.config.guard.cooldown_s),
            self.config.guard.default_timeout_s,
        )
        self.guard = guard if guard is not None else Guard(policy)
        self.guard.set_event_sink(self.events.emit, executions=self.events, on_breaker_change=self._on_breaker_change)
        self.runtimes: dict[str, Runtime] = dict(runtimes)
        self.registry = PluginRegistry(self.workspace / REGISTRY_FILE, write_delay_s=REGISTRY_WRITE_DELAY_S)
        self.state_file = PluginStateFile.load(self.workspace / host.state_file)
        self.chat_switches = ChatSwitches(self.state_file)
        """Per-chat switches (`/plugins disable <id> --group <n>`), persisted in plugin-state.toml."""
        self.configs = PluginConfigStore(self.workspace / host.config_dir)
        self.data_root = self.workspace / host.data_dir
        self.last_discovery = DiscoveryReport()
        self._instances: dict[str, PluginInstance] = {}
        self._enabled: tuple[PluginInstance, ...] | None = None
        self.outside_calls: ActionSink | None = None
        self.change_listeners: builtins.list[Callable[[str, str], None]] = []
        """Told `(what, plugin_id)` after a plugin's "priority" or "config" changed on this host
        (`plughost.cluster` shares them; enabling, disabling and the breaker are plugin events)."""
        """Where plugins' bot actions made outside any call go (a `Host` points it at its dispatcher)."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._reconfiguring = self.tasks.child("reconfigure")
        self._plugin_tasks: dict[int, TaskOwner] = {}  # id(handle) → the owner handed to its runtime
        self._applied_configs: dict[str, dict[str, Any]] = {}  # id → the config its running version got
        self.watcher = PluginWatcher(
            self, debounce_s=host.reload_debounce_ms / 1000, tasks=self.tasks.child("plugin watcher")
        )
        """Hot reload (`watch`, `unwatch`); see `plughost.core.watch`."""
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        """Where the bus's messages travel and the shared state lives (`plughost.core.backend`)."""
        self.bus = Bus(
            self.call, grants=self._topic_grants, tasks=self.tasks.child("bus"), transport=self.backend.bus_transport()
        )
        """The message bus between plugins (`plughost.core.bus`); `ctx.bus` is a plugin's view of it."""
        self.state_store = StateStore(grants=self._state_grants, storage=self.backend.state_storage())
        """Shared state (`plughost.core.state_store`); `ctx.state` is a plugin's view of it."""
        self._backend_open = False
        self._closed = False

    def _topic_grants(self, plugin_id: str) -> builtins.list[str]:
        instance = self._instances.get(plugin_id)
        return builtins.list(instance.manifest.permissions.topics) if instance is not None else []

    def _state_grants(self, plugin_id: str) -> builtins.list[str]:
        instance = self._instances.get(plugin_id)
        return builtins.list(instance.manifest.permissions.state) if instance is not None else []

    async def __aenter__(self) -> PluginManager:
        try:
            await self.open_backend()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def open_backend(self) -> None:
        """Connect the bus and state backend (idempotent; loading plugins does it too).

        `PlugHostError` saying what to do when it cannot be reached (Redis down, extra missing)."""
        if self._backend_open:
            return
        await self.backend.open()
        await self.bus.open()
        await self.state_store.open()
        self._backend_open = True

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    # discovery -------------------------------------------------------------------------------
    @property
    def plugin_dirs(self) -> list[Path]:
        return [self.workspace / d for d in self.config.host.plugin_dirs]

    def discover(self) -> DiscoveryReport:
        """Scan plugin directories and entry points; conflicts are logged and kept in the report."""
        report = discover(self.plugin_dirs, self.runtimes, entry_points=self.config.host.entry_points)
        for conflict in report.conflicts:
            log.warning("%s", conflict)
        self.last_discovery = report
        return report

    async def discover_and_load_all(self, workspace_root: Path | str | None = None) -> int:
        """Discover, load in dependency order, enable per state file/manifest; returns how many loaded."""
        if workspace_root is not None and Path(workspace_root).resolve() != self.workspace:
            raise PlugHostError(
                f"this manager serves {self.workspace}; create another PluginManager for {workspace_root}"
            )
        await self.open_backend()  # an unreachable backend stops the start, before any plugin loads
        report = self.discover()
        for candidate in report.invalid:
            log.error("plugin at %s is invalid: %s", candidate.path, "; ".join(map(str, candidate.errors)))
        manifests = {i: c.manifest for i, c in report.candidates.items() if c.manifest is not None}
        plan = plan_loading(manifests)
        for plugin_id, reason in plan.failed.items():
            self._record_failure(report.candidates[plugin_id], reason)
        loaded, failed = 0, set(plan.failed)
        for plugin_id in plan.order:
            candidate = report.candidates[plugin_id]
            assert candidate.manifest is not None
            broken = sorted(dependency_names(candidate.manifest) & failed)
            if broken:
                self._record_failure(candidate, f"dependency '{broken[0]}' failed to load")
                failed.add(plugin_id)
                continue
            instance = await self._load_candidate(candidate)
            if instance.state is PluginState.ERROR:
                failed.add(plugin_id)
            else:
                loaded += 1
        self.registry.flush()
        return loaded

    def catalog(self) -> builtins.list[dict[str, Any]]:
        """Every plugin as a row: loaded ones (with `status` "available") and discovered-but-not-loaded
        ones with their discovery status (`available`, `source_only`, `invalid` with `errors`)."""
        rows = [dict(i.summary(), status=DiscoveryStatus.AVAILABLE.value) for i in self._sorted()]
        seen = {r["id"] for r in rows}
        for candidate in self.last_discovery.all():
            if candidate.id in seen and candidate.status is not DiscoveryStatus.INVALID:
                continue
            rows.append(candidate.row())
        return rows

    def discovered(self, plugin_id: str) -> Candidate | None:
        """The plugin of that id the last discovery found (loaded or not; invalid ones by directory name)."""
        found = self.last_discovery.candidates.get(plugin_id)
        return found or next((c for c in self.last_discovery.invalid if c.id == plugin_id), None)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Jank's `list` verb: the same rows as `catalog()`."""
        return self.catalog()

    # lifecycle -------------------------------------------------------------------------------
    async def load_plugin(self, plugin_dir: Path | str, manifest: PluginManifest | None = None) -> PluginInstance:
        """Load (and enable, per state file/manifest) the plugin at `plugin_dir`.

        Raises `PluginLoadError` when it fails (a plugin the manager knew before, or discovery found,
        is kept in state `error`; one from any other path is forgotten again), and `PluginStateError`
        when `plugin_dir` overlaps another plugin's files: inside its directory, or holding it.
        Nothing is loaded then.
        """
        path = Path(plugin_dir).resolve()
        if manifest is None and not is_plugin_path(path):
            raise NotAPluginError(path)
        candidate = candidate_from_path(path)
        if manifest is not None:
            candidate.manifest, candidate.id, candidate.status = manifest, manifest.id, DiscoveryStatus.AVAILABLE
        owner = self.overlapping_plugin(candidate.path, candidate.id)
        if owner is not None:
            raise PluginStateError(
                f"{candidate.path} overlaps the files of plugin '{owner.id}' ({owner.path}); nothing was loaded"
            )
        if candidate.status is DiscoveryStatus.INVALID or candidate.manifest is None:
            raise PluginLoadError(candidate.id, "; ".join(str(e) for e in candidate.errors))
        existing = self._instances.get(candidate.id)
        if existing is not None and existing.is_loaded:
            raise PluginStateError(f"plugin '{candidate.id}' is already loaded from {existing.path}")
        instance = await self._load_candidate(candidate)
        if instance.state is PluginState.ERROR:
            if existing is None and not self._discovered(candidate.path):  # a stray path leaves nothing behind
                self._drop(instance)
            raise PluginLoadError(instance.id, instance.error or "unknown error")
        return instance

    def _discovered(self, path: Path) -> bool:
        """Is `path` a plugin the last discovery found (its failed load stays listed, with why)?"""
        return any(candidate.path.resolve() == path for candidate in self.last_discovery.all())

    def overlapping_plugin(self, path: Path, plugin_id: str) -> PluginInstance | Candidate | None:
        """Another plugin (known to the manager, or discovered) whose files hold `path`, lie inside
        it or are `path`; None when `path` belongs to no plugin but `plugin_id`."""
        path = path.resolve()
        known: builtins.list[PluginInstance | Candidate] = [*self._instances.values(), *self.last_discovery.all()]
        for other in known:
            theirs = other.path.resolve()
            if other.id != plugin_id and (path.is_relative_to(theirs) or theirs.is_relative_to(path)):
                return other
        return None

    async def unload_plugin(self, name: str) -> bool:
        """Stop the plugin and release everything it holds. False if it was not loaded."""
        instance = self._require(name)
        async with self._lock(name):
            if not instance.is_loaded or instance.handle is None:
                return False
            handle, instance.handle = instance.handle, None
            self._plugins_changed()
            unsubscribed = self.bus.remove_plugin(instance.id)
            if instance.is_enabled:
                await self._tell_enabled(instance, handle, False)
            await self._stop_handle(instance.id, handle)
            if unsubscribed:
                await self.bus.settle()  # over Redis: nothing more reaches this host for it
            self._transition(instance, PluginState.UNLOADED, EventType.UNLOAD, "unloaded")
            self.guard.forget(instance.id)
            return True

    def forget_plugin(self, name: str) -> None:
        """Drop an unloaded plugin whose files are gone: the manager and plugin-state.toml forget it."""
        instance = self._require(name)
        if instance.is_loaded:
            raise PluginStateError(f"plugin '{name}' is loaded; unload it first")
        self.state_file.forget(name)
        self.chat_switches.forget()
        del self._instances[name]
        self._plugins_changed()

    async def enable_plugin(self, name: str, *, persist: bool = True) -> bool:
        """Enable a loaded plugin. False if it already was enabled."""
        return await self._switch(name, True, persist)

    async def disable_plugin(self, name: str, *, persist: bool = True) -> bool:
        """Disable a loaded plugin (it stays loaded). False if it already was disabled."""
        return await self._switch(name, False, persist)

    async def _switch(self, name: str, enabled: bool, persist: bool) -> bool:
        """Persist first: a change that cannot be written (`StateFileError`) does not happen."""
        instance = self._require_loaded(name)
        async with self._lock(name):
            if instance.is_enabled == enabled:
                return False
            assert instance.handle is not None
            persisted = self.state_file.modules.get(instance.id)
            if persist:
                self.state_file.set_enabled(instance.id, enabled)
            try:
                await self._tell_enabled(instance, instance.handle, enabled)
            except BaseException:
                if persist:
                    self._restore_persisted(instance.id, persisted)
                raise
            if enabled:
                self._transition(instance, PluginState.ENABLED, EventType.ENABLE, "enabled")
            else:
                self._transition(instance, PluginState.DISABLED, EventType.DISABLE, "disabled")
            return True

    def _restore_persisted(self, plugin_id: str, enabled: bool | None) -> None:
        try:
            self.state_file.set_enabled(plugin_id, enabled)
        except StateFileError as exc:
            log.error("'%s' did not change, but %s", plugin_id, exc)

    async def reload_plugin(self, name: str) -> PluginInstance:
        """Load the new version beside the old one and switch when it is ready.

        If the new version fails, the old one keeps serving and `PluginLoadError` is raised.
        """
        instance = self._require(name)
        async with self._lock(name):
            candidate = self._current_candidate(instance)
            if candidate.manifest is None or candidate.status is DiscoveryStatus.INVALID:
                reason = "; ".join(str(e) for e in candidate.errors)
                self.events.emit(instance.id, EventType.RELOAD, False, "reload failed", reason)
                raise PluginLoadError(instance.id, reason)
            if candidate.id != instance.id:
                reason = f"the manifest now says id '{candidate.id}'; reload keeps ids stable, load it instead"
                self.events.emit(instance.id, EventType.RELOAD, False, "reload failed", reason)
                raise PluginLoadError(instance.id, reason)
            was_enabled = instance.is_enabled
            new_handle: PluginHandle | None = None
            try:
                config = self._plugin_config(candidate.id)
                new_handle = await self._start_handle(candidate, instance.priority, was_enabled, config)
                if was_enabled:
                    await new_handle.set_enabled(True)
            except BaseException as exc:
                if new_handle is not None:  # started, but its enable hook failed: stop it, keep the old
                    await self._stop_handle(instance.id, new_handle)
                if not isinstance(exc, Exception):
                    raise
                reason = exc.reason if isinstance(exc, PluginLoadError) else str(exc)
                self.events.emit(instance.id, EventType.RELOAD, False, "reload failed; old version serving", reason)
                if isinstance(exc, PluginLoadError):
                    raise
                if not isinstance(exc, PlugHostError):
                    log.exception("reloading '%s' failed", instance.id)
                raise PluginLoadError(instance.id, reason) from exc
            old_handle, instance.handle = instance.handle, new_handle
            self._plugins_changed()
            self.bus.remove_plugin(instance.id)
            self.bus.add_plugin(instance.id, new_handle.descriptor.subscriptions)
            self._applied_configs[instance.id] = config
            instance.set_manifest(candidate.manifest)
            instance.path = candidate.path  # a native plugin may have moved to a new file (`-v2`)
            instance.error, instance.loaded_at = None, time.time()
            if old_handle is not None:
                await self._stop_handle(instance.id, old_handle)
            if instance.state in (PluginState.ERROR, PluginState.UNLOADED):
                instance.state = PluginState.ENABLED if was_enabled else PluginState.DISABLED
            self.guard.breaker(instance.id).clear()
            self._register(instance)
            self.events.emit(instance.id, EventType.RELOAD, True, f"reloaded version {candidate.manifest.version}")
            return instance

    def _current_candidate(self, instance: PluginInstance) -> Candidate:
        """What `instance`'s files say now (a native plugin may have a new library beside the old)."""
        candidate = candidate_from_path(instance.path) if instance.entry_point is None else None
        runtime = self.runtimes.get(instance.manifest.runtime)
        if isinstance(runtime, SupportsRediscover) and not instance.path.is_dir():  # a new library may take over
            candidate = runtime.rediscover(instance.path, instance.id) or candidate
        if candidate is None:
            candidate = Candidate(
                instance.id,
                instance.path,
                instance.manifest,
                DiscoveryStatus.AVAILABLE,
                instance.origin,
                entry_point=instance.entry_point,
            )
        return candidate

    def _files_exist(self, instance: PluginInstance) -> bool:
        if instance.entry_point is not None or instance.path.exists():
            return True
        runtime = self.runtimes.get(instance.manifest.runtime)
        return isinstance(runtime, SupportsRediscover) and runtime.rediscover(instance.path, instance.id) is not None

    # hot reload --------------------------------------------------------------------------------
    async def watch(self, paths: Iterable[Path | str] | None = None) -> None:
        """Reload plugins when their files change (`plughost.core.watch`); returns once watching.

        `paths` are added to what is watched; by default the plugin directories and the plugin
        config directory (created when missing). Watching is a task of the manager's: `unwatch()`
        or `shutdown()` ends it.
        """
        if paths is None:
            defaults = [*self.plugin_dirs, self.workspace / self.config.host.config_dir]
            for path in defaults:
                path.mkdir(parents=True, exist_ok=True)
            paths = defaults
        await self.watcher.watch(paths)

    async def unwatch(self, paths: Iterable[Path | str] | None = None) -> None:
        """Stop watching `paths` (None: everything; then watching stops)."""
        await self.watcher.unwatch(paths)

    async def refresh_plugin(self, name: str) -> PluginInstance | None:
        """Bring plugin `name` in line with its files (what a change on disk calls for).

        A loaded plugin is reloaded (`reload_plugin`), one whose load failed is loaded again, one
        whose files are gone is unloaded and forgotten (its plugin-state.toml entry stays); an
        unloaded one stays unloaded. Returns the instance, or None when it was removed. Raises
        `PluginLoadError` when the new version fails.
        """
        instance = self._require(name)
        if not self._files_exist(instance):
            if instance.is_loaded:
                await self.unload_plugin(name)
            if self._instances.get(name) is instance:
                self._drop(instance)
            return None
        if instance.is_loaded:
            return await self.reload_plugin(name)
        if instance.state is not PluginState.ERROR:
            return instance
        candidate = self._current_candidate(instance)
        if candidate.manifest is None or candidate.status is DiscoveryStatus.INVALID:
            reason = "; ".join(str(e) for e in candidate.errors)
            self._fail(instance, reason)
            raise PluginLoadError(name, reason)
        loaded = await self._load_candidate(candidate)
        if loaded.state is PluginState.ERROR:
            raise PluginLoadError(name, loaded.error or "unknown error")
        return loaded

    async def rebuild_plugin(self, name: str, changed: Iterable[Path]) -> tuple[Path, ...]:
        """Build plugin `name` again before a reload when `changed` (paths of its files) holds more
        than what its build writes, and its runtime builds it (`scripts/build.sh`, a `Makefile`, a
        `Cargo.toml`). Returns where the build wrote, () when it did not build. Raises
        `PluginLoadError` when the build fails (a running version keeps serving)."""
        instance = self._require(name)
        runtime = self.runtimes.get(instance.manifest.runtime)
        if not isinstance(runtime, SupportsBuild):
            return ()
        candidate = self._current_candidate(instance)
        outputs = runtime.build_outputs(candidate)
        if not outputs or all(written_by(outputs, path.resolve()) for path in changed):
            return ()  # built by hand: a reload is all it takes
        log.info("plugin '%s': its sources changed, building it again", name)
        await runtime.build(candidate)
        return outputs

    async def load_new_plugins(self) -> builtins.list[PluginInstance]:
        """Discover again and load the plugins the manager does not know yet (a new directory or
        file), in dependency order; returns them (those that failed in state `error`)."""
        report = self.discover()
        new = {i: c for i, c in report.candidates.items() if i not in self._instances and c.manifest is not None}
        if not new:
            return []
        manifests = {i: c.manifest for i, c in report.candidates.items() if c.manifest is not None}
        plan = plan_loading(manifests)
        failed = set(plan.failed) | {i for i, p in self._instances.items() if p.state is PluginState.ERROR}
        result: builtins.list[PluginInstance] = []
        for plugin_id, reason in plan.failed.items():
            if plugin_id in new:
                self._record_failure(new[plugin_id], reason)
                result.append(self._instances[plugin_id])
        for plugin_id in plan.order:
            candidate = new.get(plugin_id)
            if candidate is None:
                continue
            assert candidate.manifest is not None
            broken = sorted(dependency_names(candidate.manifest) & failed)
            if broken:
                self._record_failure(candidate, f"dependency '{broken[0]}' failed to load")
                failed.add(plugin_id)
                result.append(self._instances[plugin_id])
                continue
            instance = await self._load_candidate(candidate)
            if instance.state is PluginState.ERROR:
                failed.add(plugin_id)
            result.append(instance)
        return result

    async def reload_config(self, name: str) -> bool:
        """Apply `config/plugins/<id>.toml` as it is on disk now (after an edit): check it against
        the plugin's `config_schema` and run its reconfigure hook (as `update_config` does, without
        writing the file). False when it equals what the plugin last got. A file that does not
        parse raises `ConfigError`, one that violates the schema `ConfigValidationError`; nothing
        is applied then."""
        instance = self._require_loaded(name)
        config = self.configs.load(name)
        self.check_config(name, config)
        async with self._lock(name):
            if instance.handle is None or self._applied_configs.get(name) == config:
                return False
            before, self._applied_configs[name] = self._applied_configs.get(name), config
            if await self._reconfigure(instance, config) is not None and before is not None:
                self._applied_configs[name] = before  # the plugin keeps what it had
        self._tell_listeners("config", name)
        return True

    async def register(self, plugin_dir: Path | str) -> PluginInstance:
        """Jank's register: load and enable."""
        instance = await self.load_plugin(plugin_dir)
        await self.enable_plugin(instance.id, persist=False)
        return instance

    async def unregister(self, name: str) -> bool:
        """Jank's unregister: unload."""
        return await self.unload_plugin(name)

    async def start_auto_plugins(self) -> int:
        """Jank's start of every discovered plugin with `auto_start`; returns how many loaded."""
        report = self.discover()
        count = 0
        for candidate in report.candidates.values():
            if candidate.manifest is None or not candidate.manifest.auto_start or candidate.id in self._instances:
                continue
            instance = await self._load_candidate(candidate)
            count += instance.state is not PluginState.ERROR
        return count

    async def shutdown(self) -> None:
        """Cancel pending reconfigurations, unload every plugin (reverse priority order), close
        runtimes; then every task of the manager has ended."""
        if self._closed:
            return
        self._closed = True
        await self.watcher.aclose()
        await self._reconfiguring.aclose(timeout=5)
        for instance in reversed(self._sorted()):
            if instance.is_loaded:
                try:
                    await self.unload_plugin(instance.id)
                except Exception:
                    log.exception("unloading '%s' during shutdown failed", instance.id)
        for runtime in self.runtimes.values():
            try:
                await runtime.aclose()
            except Exception:
                log.exception("closing runtime '%s' failed", runtime.name)
        await self.bus.aclose()
        await self.state_store.aclose()
        await self.backend.aclose()
        await self.events.aclose()
        await self.tasks.aclose()
        self.guard.watchdog.stop()
        self.registry.flush()

    # execution -------------------------------------------------------------------------------
    def call(self, name: str, call: Call, *, timeout: float | None = None) -> Awaitable[Outcome]:
        """Guarded call of one handler of an enabled plugin: `outcome = await manager.call(id, Call(...))`.

        Never raises for a failure: the outcome's `error` says what went wrong (a plain function
        returning the guard's coroutine, so the hot path has one coroutine less).
        """
        instance = self._instances.get(name)
        if instance is None or instance.handle is None or instance.state not in ACTIVE_STATES:
            return settled(Outcome.failed(UNAVAILABLE, self._unavailable(name, instance)))
        return self.guard.call(name, instance.handle, call, instance.timeout_s if timeout is None else timeout)

    async def execute_plugin(
        self, name: str, context: PluginExecutionContext | Mapping[str, Any] | None = None
    ) -> PluginExecutionResult:
        """LurkBot's execute: call the plugin's `execute(context)` handler through the guard.

        Never raises for a failure: the result's `success`, `error` and `metadata` say what went wrong.
        """
        ctx = context if isinstance(context, PluginExecutionContext) else PluginExecutionContext(**(context or {}))
        return await self._result(name, Call(EXECUTE_HANDLER, ctx.model_dump(mode="json"), "execute"), None)

    async def _result(self, name: str, call: Call, timeout: float | None) -> PluginExecutionResult:
        started = time.perf_counter()
        outcome = await self.call(name, call, timeout=timeout)
        return execution_result(outcome, time.perf_counter() - started, call.handler)

    async def execute_plugins(
        self,
        context: PluginExecutionContext | Mapping[str, Any] | None = None,
        plugin_names: Iterable[str] | None = None,
    ) -> dict[str, PluginExecutionResult]:
        """Execute several plugins concurrently; total time ≈ the slowest; failures stay separate.

        Never raises for a failure: each plugin's result says how its call went.
        """
        names = (
            builtins.list(plugin_names)
            if plugin_names is not None
            else [i.id for i in self.enabled_plugins() if i.descriptor and "execute" in i.descriptor.capabilities]
        )
        results = await asyncio.gather(*(self.execute_plugin(n, context) for n in names))
        return dict(zip(names, results, strict=True))

    async def execute(
        self, name: str, method: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> PluginExecutionResult:
        """Jank's Execute(method, args): call one method of a plugin through the guard.

        `timeout` overrides the plugin's (manifest `limits.timeout_s`, else `[guard] default_timeout_s`).
        Never raises for a failure: the result's `success`, `error` and `metadata` say what went wrong.
        """
        return await self._result(name, Call(method, dict(args or {})), timeout)

    # queries ---------------------------------------------------------------------------------
    def get_plugin(self, name: str) -> PluginInstance | None:
        return self._instances.get(name)

    def list_plugins(
        self,
        state: PluginState | str | None = None,
        type: str | None = None,
        tag: str | None = None,
        keyword: str | None = None,
    ) -> builtins.list[PluginInstance]:
        """Known plugins ordered by priority (high first) then id, filtered as asked."""
        result = self._sorted()
        if state is not None:
            result = [i for i in result if i.state == state]
        if type is not None:
            result = [i for i in result if i.manifest.type == type]
        if tag is not None:
            result = [i for i in result if tag.casefold() in (t.casefold() for t in i.manifest.tags)]
        if keyword is not None:
            word = keyword.casefold()
            result = [
                i
                for i in result
                if any(
                    word in t.casefold()
                    for t in (i.id, i.manifest.name, i.manifest.description, *i.manifest.keywords, *i.manifest.tags)
                )
            ]
        return result

    def enabled_plugins(self) -> Sequence[PluginInstance]:
        """Enabled plugins, highest priority first, ties by id.

        The same tuple until a plugin is loaded, unloaded, enabled, disabled, reloaded, isolated
        or gets a new priority (the dispatcher rebuilds its index only then).
        """
        enabled = self._enabled
        if enabled is None:
            enabled = self._enabled = tuple(i for i in self._sorted() if i.is_enabled and i.handle is not None)
        return enabled

    def _plugins_changed(self) -> None:
        self._enabled = None

    def get_config(self, name: str) -> dict[str, Any]:
        """The plugin's configuration as stored in `config/plugins/<id>.toml`."""
        return self.configs.load(name)

    def check_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Raise ConfigValidationError (naming each field) when `config` cannot be stored as TOML
        (`check_config`) or violates the plugin's `config_schema`."""
        instance = self._instances.get(name)
        check_config(name, instance.manifest.config_schema if instance is not None else None, config)

    def config_applied(self, name: str) -> bool:
        """Does the loaded plugin run with the configuration stored in its file?"""
        instance = self._instances.get(name)
        if instance is None or instance.handle is None or name not in self._applied_configs:
            return False
        return self._applied_configs[name] == self.configs.load(name)

    def update_config(self, name: str, config: Mapping[str, Any]) -> asyncio.Task[str | None] | None:
        """Check `config` against the plugin's `config_schema`, persist it, and run a loaded plugin's
        reconfigure hook in a task owned by the manager (returned, so callers may await it;
        shutdown cancels it). A violation raises ConfigValidationError and nothing is saved.

        The task answers None when the hook took the configuration, else the hook's error: then
        the file is put back as it was and the plugin keeps the configuration it had."""
        self.check_config(name, config)
        path = self.configs.path(name)
        previous = path.read_text(encoding="utf-8") if path.exists() else None
        self.configs.save(name, dict(config))
        self._tell_listeners("config", name)
        instance = self._instances.get(name)
        if instance is None or instance.handle is None or self._closed:
            return None
        before = self._applied_configs.get(name)
        self._applied_configs[name] = dict(config)  # the watcher then sees the file it wrote as applied
        return self._reconfiguring.spawn(
            self._apply_config(instance, dict(config), previous, before), name=f"{name}:reconfigure"
        )

    async def _apply_config(
        self, instance: PluginInstance, config: dict[str, Any], previous: str | None, before: dict[str, Any] | None
    ) -> str | None:
        error = await self._reconfigure(instance, config)
        if error is not None and self._applied_configs.get(instance.id) == config:  # no newer one came since
            path = self.configs.path(instance.id)
            if before is not None:
                self._applied_configs[instance.id] = before
            else:
                self._applied_configs.pop(instance.id, None)
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, previous)
            self._tell_listeners("config", instance.id)
        return error

    def set_priority(self, name: str, priority: int) -> None:
        """Persist a priority override (0..1000) in plugin-state.toml."""
        instance = self._require(name)
        self.state_file.set_priority(name, priority)
        instance.priority = priority
        self._plugins_changed()
        self._tell_listeners("priority", name)

    def plugin_tasks(self, name: str) -> TaskOwner | None:
        """The task owner of the plugin's running version (closed when it stops), if loaded."""
        instance = self._instances.get(name)
        handle = instance.handle if instance is not None else None
        return self._plugin_tasks.get(id(handle)) if handle is not None else None

    def get_events(self, name: str | None = None) -> builtins.list[PluginEvent]:
        return self.events.history(name)

    def add_event_handler(
        self,
        handler: EventHandler | Callable[[PluginEvent], Awaitable[None]],
        event_types: Iterable[EventType] | None = None,
    ) -> None:
        """Subscribe to plugin events (all of them, or only `event_types`)."""
        self.events.add_handler(handler, event_types)

    # internals -------------------------------------------------------------------------------
    def _tell_listeners(self, what: str, plugin_id: str) -> None:
        for listener in builtins.list(self.change_listeners):
            try:
                listener(what, plugin_id)
            except Exception:
                log.exception("change listener %r failed on %s of '%s'", listener, what, plugin_id)

    def _sorted(self) -> builtins.list[PluginInstance]:
        return sorted(self._instances.values(), key=lambda i: (-i.priority, i.id))

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _require(self, name: str) -> PluginInstance:
        instance = self._instances.get(name)
        if instance is None:
            raise PluginNotFoundError(name)
        return instance

    def _require_loaded(self, name: str) -> PluginInstance:
        instance = self._require(name)
        if not instance.is_loaded:
            detail = f": {instance.error}" if instance.error else ""
            raise PluginStateError(f"plugin '{name}' is not loaded (state {instance.state}){detail}")
        return instance

    def _unavailable(self, name: str, instance: PluginInstance | None) -> str:
        if instance is None:
            return f"plugin '{name}' was not found"
        if instance.state is PluginState.DISABLED:
            reason = f" ({instance.error})" if instance.error else ""
            return (
                f"plugin '{name}' is disabled{reason}; "
                f"enable it with `/plugins enable {name}` or `plughost plugins enable {name}`"
            )
        what = "failed" if instance.state is PluginState.ERROR else f"is {instance.state}"  # failed to load, crashed
        return f"plugin '{name}' {what}" + (f": {instance.error}" if instance.error else "")

    async def _load_candidate(self, candidate: Candidate) -> PluginInstance:
        assert candidate.manifest is not None
        config_error: PluginLoadError | None = None
        try:
            config = self._plugin_config(candidate.id)
        except PluginLoadError as exc:  # reported as this plugin's load failure below
            config, config_error = {}, exc
        enabled, priority = self.state_file.starting_state(candidate.id, candidate.manifest, config)
        instance = PluginInstance(
            candidate.id,
            candidate.manifest,
            candidate.path,
            priority=priority,
            origin=candidate.origin,
            entry_point=candidate.entry_point,
        )
        self._instances[candidate.id] = instance
        self._plugins_changed()
        async with self._lock(candidate.id):
            try:
                if config_error is not None:
                    raise config_error
                handle = await self._start_handle(candidate, priority, enabled, config)
            except PlugHostError as exc:
                reason = exc.reason if isinstance(exc, PluginLoadError) else str(exc)
                self._fail(instance, reason)
                return instance
            instance.handle, instance.loaded_at = handle, time.time()
            self.bus.add_plugin(candidate.id, handle.descriptor.subscriptions)  # checked in _start_handle
            if handle.descriptor.subscriptions:
                await self.bus.settle()  # over Redis: receiving once the plugin is loaded
            self._applied_configs[candidate.id] = config
            if candidate.path.is_file():  # single-file plugins declare their version in code
                instance.set_manifest(instance.manifest.model_copy(update={"version": handle.descriptor.version}))
            self._transition(
                instance, PluginState.LOADED, EventType.LOAD, f"loaded version {instance.manifest.version}"
            )
            if not enabled:  # plugin-state.toml, its config or its manifest says so
                self._transition(instance, PluginState.DISABLED, EventType.DISABLE, "disabled")
        if enabled:
            try:
                await self.enable_plugin(candidate.id, persist=False)
            except PlugHostError as exc:
                log.error("enabling '%s' failed: %s", candidate.id, exc)
                async with self._lock(candidate.id):
                    if instance.state is PluginState.LOADED:  # loaded but not enabled: disabled, with the reason
                        self._transition(instance, PluginState.DISABLED, EventType.DISABLE, "disabled")
                        instance.error = f"enabling it failed: {exc.__cause__ or exc}"
        return instance

    def _plugin_config(self, plugin_id: str) -> dict[str, Any]:
        """`config/plugins/<id>.toml`; invalid TOML is that plugin's load error (file and line)."""
        try:
            return self.configs.load(plugin_id)
        except ConfigError as exc:
            raise PluginLoadError(plugin_id, str(exc)) from exc

    async def _start_handle(
        self, candidate: Candidate, priority: int, enabled: bool, config: Mapping[str, Any]
    ) -> PluginHandle:
        """Load with the runtime the manifest names (it decides where the plugin runs)."""
        manifest = candidate.manifest
        assert manifest is not None
        await self.open_backend()
        runtime = self.runtimes.get(manifest.runtime)
        if runtime is None:
            raise PluginLoadError(candidate.id, f"runtime '{manifest.runtime}' is not available in this installation")
        if candidate.status is DiscoveryStatus.SOURCE_ONLY:
            if not isinstance(runtime, SupportsBuild):
                raise PluginLoadError(candidate.id, "the plugin has no binary and its runtime cannot build it")
            await runtime.build(candidate)
        self.guard.watchdog.start()  # from the first plugin on, none can freeze the loop
        data_dir = self.data_root / candidate.id
        data_dir.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger(f"plughost.plugin.{candidate.id}")
        tasks = self.tasks.child(f"plugin:{candidate.id}", logger=logger)
        request = LoadRequest(
            plugin_id=candidate.id,
            path=candidate.path,
            manifest=manifest,
            data_dir=data_dir,
            config=config,
            logger=logger,
            priority=priority,
            enabled=enabled,
            entry_point=candidate.entry_point,
            tasks=tasks,
            outside_calls=self.outside_calls,
            bus=self.bus.view(candidate.id),
            state=self.state_store.view(candidate.id),
        )
        try:
            handle = await runtime.load(request)
        except BaseException as exc:
            await tasks.aclose()
            if isinstance(exc, PlugHostError) or not isinstance(exc, Exception):
                raise
            log.exception("runtime '%s' failed loading '%s'", runtime.name, candidate.id)  # a runtime bug
            raise PluginLoadError(candidate.id, f"{type(exc).__name__}: {exc}") from exc
        self._plugin_tasks[id(handle)] = tasks
        try:
            self.bus.check_plugin(candidate.id, handle.descriptor.subscriptions)
        except PlugHostError as exc:
            await self._stop_handle(candidate.id, handle)
            raise PluginLoadError(candidate.id, str(exc)) from exc
        return self._watch_process(candidate.id, handle)

    def _watch_process(self, plugin_id: str, handle: PluginHandle) -> PluginHandle:
        """Process plugins report crashes and restarts (`RuntimeEvent`): as events; crashes count in the breaker."""
        if isinstance(handle, SupportsListeners):
            handle.add_listener(lambda event: self._on_process_event(plugin_id, event))
        return handle

    def _on_process_event(self, plugin_id: str, event: RuntimeEvent) -> None:
        failed = event.kind in ("crashed", "unhealthy", "restart_failed", "gave_up", "disconnected")
        if not failed and event.kind not in ("restarted", "reconnected"):
            return
        if event.kind in ("crashed", "disconnected"):  # a remote plugin's lost link counts as a crash
            self.guard.breaker(plugin_id).record_failure()
        metadata = {"process_event": event.kind, "exit_code": event.exit_code, "pid": event.pid}
        error = (event.stderr_tail or event.message) if failed else None
        kind = EventType.ERROR if failed else EventType.RECOVER
        self.events.emit(plugin_id, kind, not failed, event.message, error, metadata)

    async def _stop_handle(self, plugin_id: str, handle: PluginHandle) -> None:
        try:
            await handle.stop()
        except Exception as exc:
            log.exception("stopping '%s' failed", plugin_id)
            self.events.emit(plugin_id, EventType.ERROR, False, "stop failed", str(exc))
        finally:  # whatever the runtime left running in the plugin's owner ends here
            tasks = self._plugin_tasks.pop(id(handle), None)
            if tasks is not None:
                await tasks.aclose()

    async def _tell_enabled(self, instance: PluginInstance, handle: PluginHandle, enabled: bool) -> None:
        try:
            await handle.set_enabled(enabled)
        except Exception as exc:
            what = "enable" if enabled else "disable"
            self.events.emit(instance.id, EventType.ERROR, False, f"{what} hook failed", str(exc))
            if enabled:
                raise PluginStateError(f"plugin '{instance.id}' could not be enabled: {exc}") from exc
            log.warning("disable hook of '%s' failed: %s", instance.id, exc)

    async def _reconfigure(self, instance: PluginInstance, config: dict[str, Any]) -> str | None:
        """Run the reconfigure hook; None when it took `config`, else its error."""
        if instance.handle is None:
            return None
        try:
            await instance.handle.reconfigure(config)
        except Exception as exc:
            log.error("reconfiguring '%s' failed: %s", instance.id, exc)
            self.events.emit(instance.id, EventType.ERROR, False, "reconfigure failed", str(exc))
            return str(exc) or type(exc).__name__
        self.events.emit(instance.id, EventType.RECONFIGURE, True, "configuration applied")
        return None

    def _transition(self, instance: PluginInstance, state: PluginState, event: EventType, message: str) -> None:
        instance.state = state
        if state is not PluginState.ERROR:
            instance.error = None
        self._register(instance)
        self.events.emit(instance.id, event, True, message)

    def _register(self, instance: PluginInstance) -> None:
        self._plugins_changed()
        manifest = instance.manifest
        entry = RegistryEntry(
            id=instance.id,
            name=manifest.name,
            version=manifest.version,
            type=manifest.type,
            runtime=manifest.runtime,
            description=manifest.description,
            tags=builtins.list(manifest.tags),
            keywords=builtins.list(manifest.keywords),
            path=str(instance.path),
            state=instance.state,
        )
        try:
            self.registry.register(entry)
        except StateFileError as exc:  # the registry records what happened; it cannot undo it
            log.warning("plugin '%s' is %s, but the registry was not updated: %s", instance.id, instance.state, exc)

    def _drop(self, instance: PluginInstance) -> None:
        """Forget an unloaded plugin: the manager and the registry no longer list it."""
        del self._instances[instance.id]
        self._plugins_changed()
        self._applied_configs.pop(instance.id, None)
        try:
            self.registry.unregister(instance.id)
        except StateFileError as exc:
            log.warning("plugin '%s' is gone, but the registry was not updated: %s", instance.id, exc)

    def _fail(self, instance: PluginInstance, reason: str) -> None:
        instance.state, instance.error = PluginState.ERROR, reason
        self._register(instance)
        log.error("plugin '%s' failed to load: %s", instance.id, reason)
        self.events.emit(instance.id, EventType.ERROR, False, "load failed", reason)

    def _record_failure(self, candidate: Candidate, reason: str) -> None:
        assert candidate.manifest is not None
        instance = PluginInstance(candidate.id, candidate.manifest, candidate.path, origin=candidate.origin)
        self._instances[candidate.id] = instance
        self._plugins_changed()
        self._fail(instance, reason)

    def _on_breaker_change(self, plugin_id: str, isolated: bool) -> None:
        instance = self._instances.get(plugin_id)
        if instance is not None and instance.is_enabled:
            instance.state = PluginState.ISOLATED if isolated else PluginState.ENABLED
            self._plugins_changed()
            try:
                self.registry.set_state(plugin_id, instance.state)
            except StateFileError as exc:
                log.warning("plugin '%s' is %s, but the registry was not updated: %s", plugin_id, instance.state, exc)
