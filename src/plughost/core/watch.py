"""Hot reload: watch plugin files and reload only the plugin a change belongs to.

A `PluginWatcher` (a manager's `watcher`; `await manager.watch()` starts it) watches paths with
watchfiles in a thread of its own, maps every changed path to what it calls for, and runs that
once the path's plugin has been quiet for the debounce time (`[host] reload_debounce_ms`; three
saves in a burst are one reload):

- a file of a known plugin — under its directory, its single `.py` file, its native library
  (also a new `-v2` file beside it) or that library's `<id>.plugin.toml` —
  → `manager.refresh_plugin(id)`: a reload (the new version starts beside the old, which keeps
  serving if it fails); a load when its last load failed; an unload when its files are gone.
  A plugin its runtime builds (its `scripts/build.sh`, `Makefile` or `Cargo.toml`) is built again
  first when a source changed (`manager.rebuild_plugin`); what that build writes is not a change;
- `config/plugins/<id>.toml` → `manager.reload_config(id)`: its reconfigure hook with the new
  table, no restart;
- anything else in a plugin directory → `manager.load_new_plugins()`: a new plugin loads.

Ignored: editor temp and swap files (`*.swp`, `*~`, `.#*`, `#*#`, `4913`, `*.tmp`), bytecode,
hidden files and directories (`.plughost/`, `.git/`), `__pycache__`, `node_modules`, `data/`
directories and the workspace's data directory. A failure is logged and emitted as an `error`
event with the reason and `metadata = {"trigger": "watch", "paths": [...]}`. Changes made while
the set of watched paths is being changed (`watch`/`unwatch`) may be missed.

The file-watching thread belongs to a task of the watcher's `TaskOwner` (a child of the
manager's): closing it stops the thread (within one 50 ms step) and cancels pending reloads; a
reload already running is let finish for up to `STOP_GRACE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plughost.errors import PlugHostError, PluginLoadError
from plughost.runtime.base import SupportsWatch, written_by
from plughost.sdk.models import EventType, PluginState
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

log = logging.getLogger(__name__)
STEP_MS = 50  # a batch of changes is handed over after this much quiet
GROUP_MS = 1_600  # … or after this long at most
POLL_DELAY_MS = 300  # when the OS cannot notify (watch limit reached) and files are polled
STOP_GRACE_S = 30.0  # a reload running at shutdown gets this long to finish
IGNORED_DIRS = frozenset({"__pycache__", "node_modules", "data"})
IGNORED_SUFFIXES = (".swp", ".swo", ".swx", ".swpx", ".tmp", ".temp", ".bak", ".pyc", ".pyo", "~")
IGNORED_NAMES = frozenset({"4913"})  # vim's probe of whether it may write in a directory

Action = Literal["plugin", "config", "scan"]
FAILURES: dict[Action, str] = {
    "plugin": "acting on a change of its files failed",
    "config": "the changed configuration was not applied; the plugin keeps the one it has",
    "scan": "loading new plugins failed",
}
Key = tuple[Action, str]
_READY, _END = "ready", "end"


def _modified_ns(path: Path) -> int | None:
    """When `path` was last modified (ns), None when it is gone."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def ignored(parts: Iterable[str]) -> bool:
    """Is a change to the path with these components (relative to the watched directory) noise?"""
    *dirs, name = list(parts) or [""]
    if any(d.startswith(".") or d in IGNORED_DIRS for d in dirs):
        return True
    return (
        name.startswith(".")
        or name in IGNORED_NAMES
        or name in IGNORED_DIRS  # the directory itself, made or removed
        or name.endswith(IGNORED_SUFFIXES)
        or (name.startswith("#") and name.endswith("#"))
    )


class PluginWatcher:
    """Watches paths and reloads, loads, unloads or reconfigures the plugins whose files change."""

    def __init__(self, manager: PluginManager, *, debounce_s: float, tasks: TaskOwner) -> None:
        self.manager = manager
        self.debounce_s = debounce_s
        self.tasks = tasks
        self._paths: dict[Path, None] = {}
        self._session: asyncio.Task[None] | None = None
        self._due: dict[Key, float] = {}  # key → loop time when it may run
        self._changed: dict[Key, set[Path]] = {}  # key → the paths that changed since it last ran
        self._settling: dict[Key, asyncio.Task[None]] = {}
        self._applying: set[Key] = set()
        self._built: dict[Path, int] = {}  # where a rebuild before a reload wrote → when it ended (ns)
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def paths(self) -> tuple[Path, ...]:
        """The watched paths, in the order they were added."""
        return tuple(self._paths)

    @property
    def running(self) -> bool:
        return self._session is not None and not self._session.done()

    async def watch(self, paths: Iterable[Path | str]) -> None:
        """Watch `paths` as well (directories recursively); returns once the OS watches them."""
        added = [Path(p).resolve() for p in paths]
        for path in added:
            if not path.exists():
                raise PlugHostError(f"cannot watch {path}: it does not exist")
        wanted = dict.fromkeys([*self._paths, *added])
        if wanted.keys() != self._paths.keys() or not self.running:
            await self._restart(wanted)

    async def unwatch(self, paths: Iterable[Path | str] | None = None) -> None:
        """Stop watching `paths` (None: all of them; then the thread ends)."""
        dropped = None if paths is None else {Path(p).resolve() for p in paths}
        wanted = {} if dropped is None else {p: None for p in self._paths if p not in dropped}
        if wanted.keys() != self._paths.keys() or (not wanted and self.running):
            await self._restart(wanted)

    async def settled(self) -> None:
        """Wait until no change waits for its debounce and no reload (or load, unload …) runs."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop watching, cancel debounced work, let work already running finish (`STOP_GRACE_S`)."""
        self._closed = True
        await self._end_session()
        self._paths = {}
        for key, task in list(self._settling.items()):
            if key not in self._applying:
                task.cancel()
        await self.tasks.aclose(grace=STOP_GRACE_S, timeout=5)

    # the watching thread ------------------------------------------------------------------------
    async def _restart(self, wanted: dict[Path, None]) -> None:
        if self._closed:
            raise PlugHostError("this plugin manager has shut down; it watches nothing more")
        await self._end_session()
        self._paths = wanted
        if not wanted:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session = self._session = self.tasks.spawn(self._serve(tuple(wanted), ready), name="plugin watcher")
        await asyncio.wait([ready, session], return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
        if ready.cancelled() or ready.exception() is not None:
            await self._end_session()
            self._paths = {}
            if ready.cancelled():
                raise PlugHostError("the plugin watcher stopped before it was ready")
            raise PlugHostError(f"cannot watch {', '.join(map(str, wanted))}: {ready.exception()}")
        log.info("watching %s for changes", ", ".join(map(str, wanted)))

    async def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.done():
            session.cancel()
            await asyncio.wait([session])

    async def _serve(self, paths: tuple[Path, ...], ready: asyncio.Future[None]) -> None:
        """Run the watching thread until cancelled (or it fails); hand its batches to the loop."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        ended = asyncio.Event()

        def received(item: object) -> None:
            if item == _READY:
                if not ready.done():
                    ready.set_result(None)
            elif item == _END:
                ended.set()
            elif isinstance(item, BaseException):
                if ready.done():
                    log.error("watching plugin files failed: %s: %s", type(item).__name__, item)
                else:
                    ready.set_exception(item)
            else:
                self._on_changes(item)  # type: ignore[arg-type]

        def post(item: object) -> None:  # from the thread
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(received, item)

        thread = threading.Thread(target=_watch_files, args=(paths, stop, post), name="plughost-watch", daemon=True)
        thread.start()
        try:
            await ended.wait()
        finally:
            stop.set()
            await ended.wait()  # the thread sees `stop` within one step
            thread.join()

    # changes -------------------------------------------------------------------------------------
    def _on_changes(self, changes: set[tuple[int, str]]) -> None:
        roots = sorted(self._paths, key=lambda p: len(p.parts), reverse=True)
        owners = self._owners()
        for _, raw in changes:
            path = Path(raw)
            root = next((r for r in roots if path == r or r in path.parents), None)
            if root is None or ignored(path.relative_to(root).parts) or self._own_files(path):
                continue
            key = self._key_for(path, owners)
            if key is not None:
                self._schedule(key, path)

    def _own_files(self, path: Path) -> bool:
        """Files the host itself writes: the data directory and `.plughost/`."""
        manager = self.manager
        return any(d == path or d in path.parents for d in (manager.data_root, manager.workspace / ".plughost"))

    def _owners(self) -> list[tuple[Path, str]]:
        """(path, id) of every known plugin, deepest first (a plugin directory inside another wins)."""
        known = [(i.path.resolve(), i.id) for i in self.manager.list_plugins()]
        return sorted(known, key=lambda o: len(o[0].parts), reverse=True)

    def _key_for(self, path: Path, owners: list[tuple[Path, str]]) -> Key | None:
        manager = self.manager
        config_dir = (manager.workspace / manager.config.host.config_dir).resolve()
        if path.parent == config_dir:
            return ("config", path.name.removesuffix(".toml")) if path.suffix == ".toml" else None
        for root, plugin_id in owners:
            if path == root or root in path.parents:
                return ("plugin", plugin_id)
        for plugin_id, runtime in self._beside(path):
            instance = manager.get_plugin(plugin_id)
            if instance is not None and manager.runtimes.get(instance.manifest.runtime) is runtime:
                return ("plugin", plugin_id)
        if any(d == path or d in path.parents for d in (p.resolve() for p in manager.plugin_dirs)):
            return ("scan", "")
        return None

    def _beside(self, path: Path) -> list[tuple[str, SupportsWatch]]:
        """The plugins that runtimes say `path` belongs to (a native library, its manifest)."""
        found: list[tuple[str, SupportsWatch]] = []
        for runtime in dict.fromkeys(self.manager.runtimes.values()):
            if isinstance(runtime, SupportsWatch):
                plugin_id = runtime.plugin_of(path)
                if plugin_id is not None:
                    found.append((plugin_id, runtime))
        return found

    def _schedule(self, key: Key, path: Path) -> None:
        self._due[key] = asyncio.get_running_loop().time() + self.debounce_s
        self._changed.setdefault(key, set()).add(path)
        if key in self._settling or self._closed:
            return
        self._idle.clear()
        self._settling[key] = self.tasks.spawn(self._settle(key), name=f"watch:{key[0]}:{key[1]}")

    async def _settle(self, key: Key) -> None:
        """Wait until `key` has been quiet for the debounce time, act, and again if it changed meanwhile."""
        loop = asyncio.get_running_loop()
        try:
            while key in self._due and not self._closed:
                delay = self._due[key] - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                del self._due[key]
                paths = sorted(p for p in self._changed.pop(key, set()) if not self._rebuilt(p))
                if not paths:
                    continue  # only what a rebuild wrote, already reloaded
                self._applying.add(key)
                try:
                    await self._apply(key, paths)
                finally:
                    self._applying.discard(key)
        finally:
            self._settling.pop(key, None)
            if not self._settling:
                self._idle.set()

    # actions -------------------------------------------------------------------------------------
    async def _apply(self, key: Key, paths: list[Path]) -> None:
        action, plugin_id = key
        shown = ", ".join(map(str, paths))
        try:
            if action == "config":
                await self._reconfigure(plugin_id, paths)
            elif action == "plugin":
                await self._refresh(plugin_id, paths)
            else:
                await self._scan(paths)
        except PlugHostError as exc:
            self._failed(plugin_id or "?", FAILURES[action], str(exc), paths)
        except Exception:
            log.exception("acting on the change of %s failed", shown)

    async def _refresh(self, plugin_id: str, paths: list[Path]) -> None:
        manager = self.manager
        if manager.get_plugin(plugin_id) is None:  # forgotten meanwhile
            await self._scan(paths)
            return
        try:
            built = await manager.rebuild_plugin(plugin_id, paths)
            self._built.update(dict.fromkeys(built, time.time_ns()))
            instance = await manager.refresh_plugin(plugin_id)
        except PluginLoadError as exc:
            current = manager.get_plugin(plugin_id)
            if current is not None and current.is_loaded:
                message = "reload after a change failed; the old version keeps serving"
                self._failed(plugin_id, message, exc.reason, paths)
            else:  # its load failed: the manager has reported it
                log.error("plugin '%s' changed and failed to load: %s", plugin_id, exc.reason)
            return
        if instance is None:
            log.info("plugin '%s' unloaded: its files are gone", plugin_id)
        else:
            log.info("plugin '%s' is now version %s (%s changed)", plugin_id, instance.manifest.version, paths[0])

    def _rebuilt(self, path: Path) -> bool:
        """True when `path` is where a rebuild before a reload wrote, and unchanged since (or gone,
        as the compiler's temporary files are): that reload has taken it in."""
        for output, ended in self._built.items():
            if written_by((output,), path):
                modified = _modified_ns(path)
                return modified is None or modified <= ended
        return False

    async def _reconfigure(self, plugin_id: str, paths: list[Path]) -> None:
        instance = self.manager.get_plugin(plugin_id)
        if instance is None:
            return  # a config file of no plugin (yet): read when that plugin loads
        if instance.state is PluginState.ERROR:
            await self._refresh(plugin_id, paths)  # its config may have been why it failed
        elif instance.is_loaded and await self.manager.reload_config(plugin_id):
            log.info("plugin '%s' reconfigured from %s", plugin_id, paths[0])

    async def _scan(self, paths: list[Path]) -> None:
        manager = self.manager
        for instance in await manager.load_new_plugins():
            if instance.is_loaded:
                log.info("new plugin '%s' loaded from %s", instance.id, instance.path)
        for candidate in manager.last_discovery.invalid:
            if manager.get_plugin(candidate.id) is None and any(
                p == candidate.path or candidate.path in p.parents for p in paths
            ):
                reason = "; ".join(str(e) for e in candidate.errors)
                self._failed(candidate.id, "new plugin is invalid", reason, paths)

    def _failed(self, plugin_id: str, message: str, reason: str, paths: list[Path]) -> None:
        log.error("plugin '%s': %s: %s", plugin_id, message, reason)
        metadata: dict[str, Any] = {"trigger": "watch", "paths": [str(p) for p in paths]}
        self.manager.events.emit(plugin_id, EventType.ERROR, False, message, reason, metadata)


def _watch_files(paths: tuple[Path, ...], stop: threading.Event, post: Callable[[object], None]) -> None:
    """The watching thread: post READY, then each batch of raw changes, until `stop`; END last."""
    try:
        from watchfiles._rust_notify import RustNotify  # documented: watchfiles' Rust backend

        names = [str(p) for p in paths]
        try:
            notify = RustNotify(names, False, False, POLL_DELAY_MS, True, False)
        except OSError as exc:  # e.g. the OS's limit of watches: poll instead
            log.warning("cannot watch plugin files with OS notifications (%s); polling them instead", exc)
            notify = RustNotify(names, False, True, POLL_DELAY_MS, True, False)
        with notify:
            post(_READY)
            while (result := notify.watch(GROUP_MS, STEP_MS, 0, stop)) != "stop":
                if isinstance(result, set):
                    post(result)
    except BaseException as exc:
        post(exc)
    finally:
        post(_END)


__all__ = ["PluginWatcher", "ignored"]
