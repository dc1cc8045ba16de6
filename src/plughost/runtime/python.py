"""In-process Python plugins: import under a private module name, serve through a handle.

Each load imports the plugin directory as a fresh package (`plughost_plugin__<id>__g<N>`), so a
new version can load beside the old one on reload; unload removes every module of that package
from `sys.modules`. Before importing, the plugin's cached bytecode is made hash-checked
(`checked_bytecode`): a timestamp-based `.pyc` records its source's mtime in whole seconds and its
size, so an edit within the same second that keeps the size would re-run the old code. Sync
handlers run in the plugin's own thread pool and never block the loop.

Unloading runs the unload hooks, then cancels and awaits the tasks the plugin started with
`ctx.spawn` and waits for sync handlers still running; after `stop_timeout_s` their threads are
abandoned with a warning (a thread cannot be stopped from outside).

The import runs on a thread of its own with a deadline (`IMPORT_TIMEOUT_S`): module-level code
that loops or waits fails the load instead of freezing the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import itertools
import os
import py_compile
import re
import sys
import traceback
import types
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from plughost.errors import PlugHostError, PluginLoadError
from plughost.runtime.base import LoadRequest, started
from plughost.runtime.cpu import charged
from plughost.runtime.deadline_thread import run_with_deadline
from plughost.runtime.sitepath import SitePaths
from plughost.sdk.call import Call, Outcome, settled
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import Health
from plughost.sdk.manifest import PYTHON_DEFAULT_ENTRIES
from plughost.sdk.plugin import HookName, Plugin, PluginContext
from plughost.sdk.runner import describe_error, run_handler, run_trivial, unknown_handler
from plughost.sdk.tasks import TaskOwner

MODULE_PREFIX = "plughost_plugin__"
CHECKED_HASH_FLAGS = 0b11  # a .pyc's flags: hash-based, checked against the source
BYTECODE_SKIP = frozenset({"__pycache__", "data", "node_modules"})  # directories not searched for sources
HOOK_TIMEOUT_S = 10.0
IMPORT_TIMEOUT_S = 10.0  # module-level code that loops or waits fails the load after this
STOP_TIMEOUT_S = 10.0  # how long unload waits for the plugin's tasks and running sync handlers
SYNC_WORKERS = 4


class HookFailed(PlugHostError):
    """A lifecycle hook of the plugin raised (the message says what and where)."""


class PythonRuntime:
    """Loads Python plugins into this process."""

    name = "python"

    def __init__(self, *, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._generation = itertools.count(1)
        self.stop_timeout_s = stop_timeout_s
        self.sites = SitePaths()  # <plugin>/.site (requirements the market installed) on the import path

    async def load(self, request: LoadRequest) -> PythonPluginHandle:
        if request.entry_point:  # an installed package: import it under its own name
            package = request.entry_point.partition(":")[0].strip()
            _drop_modules(package)
        else:
            safe_id = re.sub(r"[^A-Za-z0-9_]", "_", request.plugin_id)
            package = f"{MODULE_PREFIX}{safe_id}__g{next(self._generation)}"
            checked_bytecode(request.path)
        site = None if request.entry_point else self.sites.acquire(request.path)
        importlib.invalidate_caches()  # files added since the last import are found
        try:
            plugin = await run_with_deadline(
                functools.partial(_import_plugin, request, package),
                IMPORT_TIMEOUT_S,
                name=f"plugin-{request.plugin_id}-import",
            )
        except TimeoutError:
            _drop_modules(package)
            self.sites.release(site)
            raise PluginLoadError(
                request.plugin_id,
                f"importing it did not finish within {IMPORT_TIMEOUT_S:g} s and was interrupted: module-level code"
                " must not wait or loop (start such work in a load hook)",
            ) from None
        except PluginLoadError:
            _drop_modules(package)
            self.sites.release(site)
            raise
        except BaseException as exc:
            _drop_modules(package)
            self.sites.release(site)
            raise PluginLoadError(request.plugin_id, _describe_exception(exc, request.plugin_dir)) from exc
        handle = PythonPluginHandle(plugin, request, package, stop_timeout_s=self.stop_timeout_s)
        handle.on_stop = functools.partial(self.sites.release, site)
        return await started(handle)

    async def aclose(self) -> None:
        return None


class PythonPluginHandle:
    """A loaded Python plugin."""

    def __init__(
        self, plugin: Plugin, request: LoadRequest, package: str, *, stop_timeout_s: float = STOP_TIMEOUT_S
    ) -> None:
        self.plugin = plugin
        self.package = package
        self.plugin_dir = request.plugin_dir
        self.descriptor: Descriptor = _with_priority(plugin.describe(), request.priority)
        self.stop_timeout_s = stop_timeout_s
        self.tasks = (
            request.tasks
            if request.tasks is not None
            else TaskOwner(f"plugin:{request.plugin_id}", logger=request.logger)
        )
        self.context = PluginContext(
            plugin_id=request.plugin_id,
            config=dict(request.config),
            plugin_dir=request.plugin_dir,
            data_dir=request.data_dir,
            logger=request.logger,
            tasks=self.tasks,
        )
        if request.bus is not None:
            self.context.bus = request.bus
        if request.state is not None:
            self.context.state = request.state
        self._handlers = plugin.handlers
        self._executor = PluginThreads(SYNC_WORKERS, thread_name_prefix=f"plugin-{request.plugin_id}")
        self._stopped = False
        self.on_stop: Callable[[], None] | None = None  # called once the plugin has stopped

    async def start(self) -> None:
        """Run the load hooks; a failing hook fails the load with the reason."""
        try:
            await self._run_hooks("load")
        except TimeoutError:
            raise PluginLoadError(
                self.context.plugin_id, f"load hook did not finish within {HOOK_TIMEOUT_S:g} s"
            ) from None
        except HookFailed as exc:
            raise PluginLoadError(self.context.plugin_id, f"load hook failed: {exc}") from None

    def call(self, call: Call) -> Coroutine[Any, Any, Outcome]:
        """Run one handler (see `plughost.sdk.runner`); sync handlers use the plugin's own threads."""
        handler = self._handlers.get(call.handler)
        if handler is None:
            return settled(unknown_handler(self.context.plugin_id, call.handler, self._handlers))
        if handler.trivial:
            return run_trivial(handler.func, self.plugin_dir)
        return run_handler(handler, call, self.context, self._executor)

    async def health(self) -> Health:
        return Health("down", "stopped") if self._stopped else Health("ok")

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        self.context.config = dict(config)
        await self._run_hooks("reconfigure", dict(config))

    async def set_enabled(self, enabled: bool) -> None:
        await self._run_hooks("enable" if enabled else "disable")

    async def stop(self) -> None:
        """Let the sync calls already accepted finish, run unload hooks, cancel and await the
        plugin's tasks, release its threads and modules (sync calls get `stop_timeout_s` in all)."""
        if self._stopped:
            return
        self._stopped = True
        deadline = asyncio.get_running_loop().time() + self.stop_timeout_s
        await self._wait_for_calls(deadline)  # a reload's old version answers what it accepted
        try:
            await self._run_hooks("unload")
        except Exception:
            self.context.logger.exception("unload hook of '%s' failed", self.context.plugin_id)
        finally:
            try:
                await self.tasks.aclose(timeout=self.stop_timeout_s)
                await self._stop_threads(deadline)
            finally:
                _drop_modules(self.package)
                if self.on_stop is not None:
                    self.on_stop()

    async def _run_hooks(self, name: HookName, config: Any = None) -> None:
        """Run the plugin's hooks of one kind in order; the first failure is raised."""
        for hook in self.plugin.hooks[name]:
            call = Call(f"hook.{name}", config)
            outcome = await asyncio.wait_for(run_handler(hook, call, self.context, self._executor), HOOK_TIMEOUT_S)
            if outcome.error is not None:
                raise HookFailed(describe_error(outcome.error))

    async def _wait_for_calls(self, deadline: float) -> int:
        """Wait until the sync calls accepted so far have finished, or until `deadline` (loop time);
        those still unfinished then are no longer waited for (queued ones are cancelled): how many."""
        running = [asyncio.wrap_future(f) for f in self._executor.unfinished()]
        if not running:
            return 0
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        done, stuck = await asyncio.wait(running, timeout=timeout)
        for waiter in done:
            if not waiter.cancelled():
                waiter.exception()  # its caller has had the outcome; nothing to report twice
        for waiter in stuck:
            waiter.cancel()
        return len(stuck)

    async def _stop_threads(self, deadline: float) -> None:
        """Cancel queued sync calls, wait (until `deadline`) for running ones, end the threads."""
        executor = self._executor
        executor.shutdown(wait=False, cancel_futures=True)
        stuck = await self._wait_for_calls(deadline)
        if stuck:
            self.context.logger.warning(
                "plugin '%s': %d sync handler(s) still running after waiting %g s at unload; "
                "their threads are abandoned and end when the handlers return",
                self.context.plugin_id, stuck, self.stop_timeout_s,
            )  # fmt: skip
            return
        executor.shutdown(wait=True)  # every thread is idle and told to exit: this returns at once


P = ParamSpec("P")
T = TypeVar("T")


class PluginThreads(ThreadPoolExecutor):
    """A plugin's threads for sync handlers; remembers unfinished work so that unload can wait for it."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._work: set[Future[Any]] = set()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future = super().submit(charged(fn), *args, **kwargs)  # a metered call is charged with the thread's CPU
        self._work.add(future)
        future.add_done_callback(self._work.discard)  # from the worker thread: a set operation is atomic
        return future

    def unfinished(self) -> list[Future[Any]]:
        return [f for f in list(self._work) if not f.done()]


def _with_priority(descriptor: Descriptor, priority: int) -> Descriptor:
    from dataclasses import replace

    return replace(descriptor, priority=priority)


def _import_plugin(request: LoadRequest, package: str) -> Plugin:
    """Import the plugin's package/module and find its `Plugin` object."""
    entry = request.entry_point or request.manifest.entry or ""
    module_part, _, attr = entry.partition(":")
    attr = attr.strip()
    if request.entry_point:
        module = importlib.import_module(package)
    elif request.path.is_file():
        module = _load_file(f"{package}", request.path)
    else:
        pkg = _load_package(package, request.plugin_dir)
        target = _entry_module(request, module_part)
        module = pkg if target is None else importlib.import_module(f"{package}.{target}")
    return _find_plugin(module, attr, request)


def _load_package(package: str, plugin_dir: Path) -> types.ModuleType:
    init = plugin_dir / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(plugin_dir)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)
        return module
    module = types.ModuleType(package)
    module.__path__ = [str(plugin_dir)]
    module.__file__ = None
    sys.modules[package] = module
    return module


def _entry_module(request: LoadRequest, module_part: str) -> str | None:
    """The submodule to import (None = the package itself), from the entry or the defaults."""
    if module_part:
        rel = module_part.removesuffix(".py").replace("/", ".")
        if (
            not (request.plugin_dir / (rel.replace(".", "/") + ".py")).is_file()
            and not (request.plugin_dir / rel.replace(".", "/") / "__init__.py").is_file()
        ):
            raise PluginLoadError(request.plugin_id, f"entry '{module_part}' not found in {request.plugin_dir}")
        return rel
    for name in PYTHON_DEFAULT_ENTRIES:
        if (request.plugin_dir / name).is_file():
            return None if name == "__init__.py" else name.removesuffix(".py")
    raise PluginLoadError(
        request.plugin_id,
        f"no entry: {request.plugin_dir} has no __init__.py, plugin.py or main.py and the manifest names no `entry`",
    )


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _find_plugin(module: types.ModuleType, attr: str, request: LoadRequest) -> Plugin:
    if attr:
        obj = getattr(module, attr, None)
        if obj is None:
            raise PluginLoadError(request.plugin_id, f"entry names '{attr}', which the module does not define")
    else:
        found = [v for v in vars(module).values() if isinstance(v, Plugin)]
        if len(found) != 1:
            what = "no Plugin object" if not found else f"{len(found)} Plugin objects"
            raise PluginLoadError(
                request.plugin_id,
                f"{module.__file__ or request.plugin_dir} defines {what}; define exactly one "
                "`plugin = Plugin()` or name it in the manifest's entry ('module:attr')",
            )
        obj = found[0]
    if isinstance(obj, Plugin):
        if obj.id != request.plugin_id:
            raise PluginLoadError(
                request.plugin_id,
                f"the module declares Plugin(id='{obj.id}'), the manifest says '{request.plugin_id}'",
            )
        return obj
    if isinstance(obj, type):
        return _adapt_class(obj, request)
    raise PluginLoadError(request.plugin_id, f"entry '{attr}' is {type(obj).__name__}, not a Plugin or class")


def _adapt_class(cls: type, request: LoadRequest) -> Plugin:
    """LurkBot-style class plugins: `initialize(ctx)`, `execute(context)`, `cleanup()`."""
    instance = cls()
    plugin = Plugin(id=request.plugin_id, version=request.manifest.version)
    hooks = {"load": plugin.on_load, "unload": plugin.on_unload}
    for hook, names in (("load", ("initialize", "on_load")), ("unload", ("cleanup", "on_unload"))):
        for attr_name in names:
            method = getattr(instance, attr_name, None)
            if callable(method):
                hooks[hook](method)
    execute = getattr(instance, "execute", None)
    if not callable(execute):
        raise PluginLoadError(request.plugin_id, f"class {cls.__name__} has no execute(context) method")
    plugin.execute(execute)
    return plugin


def checked_bytecode(path: Path) -> int:
    """Make the cached bytecode of the Python sources at `path` (a file or a plugin directory)
    checked against its source's hash; returns how many cache files were rewritten or removed.

    The import system trusts a timestamp-based `.pyc` whose recorded source mtime (whole seconds)
    and size match, so a save within the same second that keeps the size re-runs the old code. A
    hash-checked `.pyc` is compared with the source on every import, and the import system keeps
    writing hash-checked ones in its place. Each timestamp-based (or unchecked) cache is compiled
    again from the source as it is now (removed when bytecode is not written: `sys.dont_write_bytecode`).
    Hidden directories, `__pycache__`, `data` and `node_modules` are not searched; a cache that
    cannot be rewritten (a read-only directory, a syntax error) is removed if it can be.
    """
    sources = [path] if path.is_file() else _python_sources(path)
    changed = 0
    for source in sources:
        try:
            cached = importlib.util.cache_from_source(str(source))
            with open(cached, "rb") as file:
                flags = int.from_bytes(file.read(8)[4:8], "little")
        except (OSError, ValueError, NotImplementedError):  # no cache: the usual case
            continue
        if flags & CHECKED_HASH_FLAGS == CHECKED_HASH_FLAGS:
            continue
        changed += 1
        try:
            if sys.dont_write_bytecode:
                raise OSError("bytecode is not written")
            py_compile.compile(
                str(source), cfile=cached, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
            )
        except (OSError, py_compile.PyCompileError):
            with contextlib.suppress(OSError):
                os.unlink(cached)
    return changed


def _python_sources(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d not in BYTECODE_SKIP and not d.startswith(".")]
        found.extend(Path(root, name) for name in files if name.endswith(".py"))
    return found


def _drop_modules(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


def _describe_exception(exc: BaseException, plugin_dir: Path) -> str:
    """`SyntaxError at plugin.py:3: invalid syntax` — with the innermost frame in the plugin."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError at {exc.filename}:{exc.lineno}: {exc.msg}"
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and Path(frame.filename).is_relative_to(plugin_dir):
            where = f" at {frame.filename}:{frame.lineno}"
            break
    return f"{type(exc).__name__}{where}: {exc}"


__all__ = ["PythonPluginHandle", "PythonRuntime", "checked_bytecode"]
