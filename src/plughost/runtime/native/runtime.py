"""`NativeRuntime`: loads CLIProxyAPI-ABI shared libraries into this process."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from plughost.errors import InvocationError, PluginLoadError, PluginNotFoundError, ValidationIssue
from plughost.runtime.base import Candidate, LoadRequest
from plughost.runtime.builds import build_argv, build_plugin, outputs
from plughost.runtime.native.discovery import (
    NativeDiscovery,
    discover_libraries,
    host_arch,
    host_os,
    split_library_name,
)
from plughost.runtime.native.settings import NativeSettings
from plughost.sdk.manifest import is_valid_plugin_id
from plughost.sdk.models import DiscoveryStatus

if TYPE_CHECKING:  # ctypes and the ABI are imported by the first load: discovery needs neither
    from plughost.runtime.native.abi import CAllocator
    from plughost.runtime.native.handle import NativePluginHandle

T = TypeVar("T")
logger = logging.getLogger(__name__)
INIT_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 300.0  # a rebuild before a hot reload (a first `cargo build` can take minutes)
MANIFEST_SUFFIX = ".plugin.toml"  # `<id>.plugin.toml` beside a library


class NativeRuntime:
    """Loads native plugins in-process (trusted code; use isolation="process" to contain crashes).

    Every load maps a private copy of the library, so a reload of a changed file (or of the same
    file) gets a fresh instance beside the old one, and rewriting the file on disk never changes
    code that is running. Libraries are never unloaded.
    """

    name = "native"

    def __init__(self, settings: NativeSettings | None = None, *, shadow_copy: bool = True) -> None:
        self.settings = settings or NativeSettings()
        self.shadow_copy = shadow_copy
        self._allocator: CAllocator | None = None
        self._handles: dict[str, NativePluginHandle] = {}
        self._scratch: Path | None = None
        self._lock = threading.Lock()

    # discovery -------------------------------------------------------------------------------
    def discover_libraries(self, directory: Path) -> NativeDiscovery:
        """Native libraries in `directory` by the spec's rules (see `discovery`), with skip reasons."""
        return discover_libraries(directory)

    def discover(self, directory: Path) -> list[Candidate]:
        """Candidates for the native libraries in `directory` (no manifest needed).

        Files whose name is not a valid plugin id, or whose `plugin.toml` is broken, come back as
        `invalid` candidates with the reason; duplicates that lost are only logged.
        """
        found = discover_libraries(directory)
        candidates: list[Candidate] = []
        for lib in found.libraries:
            origin = f"{directory} ({lib.origin})"
            if lib.errors:
                issues = [ValidationIssue(str(lib.path), "", e) for e in lib.errors]
                candidates.append(Candidate(lib.id, lib.path, None, DiscoveryStatus.INVALID, origin, issues))
            else:
                candidates.append(Candidate(lib.id, lib.path, lib.manifest, DiscoveryStatus.AVAILABLE, origin))
        for path, reason in found.skipped:
            parsed = split_library_name(path.name)
            if parsed is not None and not is_valid_plugin_id(parsed[0]):
                issue = ValidationIssue(str(path), "id", reason)
                candidates.append(Candidate(parsed[0], path, None, DiscoveryStatus.INVALID, str(directory), [issue]))
            else:
                logger.debug("native discovery skipped %s: %s", path, reason)
        return candidates

    def rediscover(self, path: Path, plugin_id: str) -> Candidate | None:
        """The current library for `plugin_id` near `path` (for reload: a new `-v2` file takes over)."""
        root = path.parent
        if root.name == host_arch() and root.parent.name == host_os():
            root = root.parent.parent
        for candidate in self.discover(root):
            if candidate.id == plugin_id:
                return candidate
        return None

    def plugin_of(self, path: Path) -> str | None:
        """The library id a file belongs to: `alpha.so`, `alpha-v2.so`, `alpha.plugin.toml`, or a
        `plugin.toml` with `id = "alpha"` (for reload on change)."""
        parsed = split_library_name(path.name)
        if parsed is not None:
            plugin_id = parsed[0]
        elif path.name.endswith(MANIFEST_SUFFIX):
            plugin_id = path.name.removesuffix(MANIFEST_SUFFIX)
        elif path.name == "plugin.toml":
            try:
                plugin_id = str(tomllib.loads(path.read_text(encoding="utf-8")).get("id", ""))
            except (OSError, ValueError):  # gone, or being written
                return None
        else:
            return None
        return plugin_id if is_valid_plugin_id(plugin_id) else None

    # building --------------------------------------------------------------------------------
    async def build(self, candidate: Candidate) -> None:
        """Build a plugin directory's library with its `Makefile` or `Cargo.toml` (before a hot
        reload whose sources changed); `PluginLoadError` with the compiler's output on failure."""
        library = _built_library(candidate)
        if library is None:
            message = "only a plugin directory with a Makefile or Cargo.toml is built"
            raise PluginLoadError(candidate.id, message)
        await build_plugin(candidate.id, *library, BUILD_TIMEOUT_S)

    def build_outputs(self, candidate: Candidate) -> tuple[Path, ...]:
        """Where the build of a plugin directory with a build file writes: its library (`x.so`
        beside the sources) or the top directory it is under (Cargo's `target/`); () otherwise."""
        library = _built_library(candidate)
        return () if library is None else outputs(*library)

    # loading ---------------------------------------------------------------------------------
    async def load(self, request: LoadRequest) -> NativePluginHandle:
        from plughost.runtime.host_services import HostServices
        from plughost.runtime.native.callbacks import DEFAULT_HTTP_TIMEOUT_S, HostCallbacks
        from plughost.runtime.native.handle import NativePluginHandle
        from plughost.runtime.native.library import NativeLibrary

        path = _library_path(request)
        manifest = request.manifest
        callbacks = HostCallbacks(
            request.plugin_id,
            request.logger,
            self._alloc(),
            network=manifest.permissions.network,
            http_timeout_s=manifest.limits.timeout_s or DEFAULT_HTTP_TIMEOUT_S,
        )
        load_path = self._private_copy(request.plugin_id, path) if self.shadow_copy else None
        try:
            library = await _in_daemon_thread(
                lambda: NativeLibrary(request.plugin_id, path, callbacks, load_path=load_path),
                INIT_TIMEOUT_S,
                f"loading {path} (cliproxy_plugin_init did not return within {INIT_TIMEOUT_S:g} s)",
                request.plugin_id,
            )
        finally:
            if load_path is not None:
                load_path.unlink(missing_ok=True)
        parsed = split_library_name(path.name)
        handle = NativePluginHandle(
            request.plugin_id,
            library,
            callbacks,
            config=request.config,
            enabled=request.enabled,
            priority=request.priority,
            version=parsed[1] if parsed and parsed[1] else "",
            settings=self.settings,
        )
        if request.outside_calls is not None:
            handle.deliver_outside_calls(request.outside_calls)
        if request.bus is not None or request.state is not None:
            callbacks.serve_shared(HostServices(request.bus, request.state), asyncio.get_running_loop())
        try:
            await handle.start()
        except InvocationError as exc:
            await handle.stop()
            raise PluginLoadError(request.plugin_id, f"plugin.register failed: {exc}") from None
        except BaseException:
            await handle.stop()
            raise
        with self._lock:
            self._handles[request.plugin_id] = handle  # the newest load takes over
        return handle

    def handle(self, plugin_id: str) -> NativePluginHandle:
        """The current (newest, not stopped) handle of a native plugin."""
        with self._lock:
            handle = self._handles.get(plugin_id)
        if handle is None or handle.stopping:
            raise PluginNotFoundError(plugin_id)
        return handle

    def with_capability(self, capability: str) -> list[NativePluginHandle]:
        """Active plugins that declare `capability`, higher priority first, ties by id."""
        with self._lock:
            handles = [h for h in self._handles.values() if not h.stopping]
        chosen = [h for h in handles if capability in h.descriptor.capabilities]
        return sorted(chosen, key=lambda h: (-h.priority, h.plugin_id))

    async def aclose(self) -> None:
        """Forget handles (the manager stops them) and remove scratch files."""
        with self._lock:
            self._handles.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def forget(self, handle: NativePluginHandle) -> None:
        with self._lock:
            if self._handles.get(handle.plugin_id) is handle:
                del self._handles[handle.plugin_id]

    # helpers ---------------------------------------------------------------------------------
    def _alloc(self) -> CAllocator:
        if self._allocator is None:
            from plughost.runtime.native.abi import CAllocator

            self._allocator = CAllocator()
        return self._allocator

    def _private_copy(self, plugin_id: str, path: Path) -> Path:
        if not path.is_file():
            raise PluginLoadError(plugin_id, f"library {path} does not exist")
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="plughost-native-"))
        fd, name = tempfile.mkstemp(prefix=f"{plugin_id}-", suffix=path.suffix, dir=self._scratch)
        os.close(fd)
        try:
            shutil.copyfile(path, name)
        except OSError as exc:
            Path(name).unlink(missing_ok=True)
            raise PluginLoadError(plugin_id, f"cannot read library {path}: {exc}") from None
        return Path(name)


def _built_library(candidate: Candidate) -> tuple[Path, Path] | None:
    """(plugin directory, library) of a directory plugin with a build file; None otherwise."""
    manifest = candidate.manifest
    if manifest is None or not manifest.entry or not candidate.path.is_dir() or build_argv(candidate.path) is None:
        return None
    return candidate.path, candidate.path / manifest.entry


def _library_path(request: LoadRequest) -> Path:
    if request.path.is_dir():
        if not request.manifest.entry:
            raise PluginLoadError(request.plugin_id, f"{request.path}: the manifest names no library (`entry`)")
        return request.path / request.manifest.entry
    return request.path


async def _in_daemon_thread(fn: Callable[[], T], timeout: float, what: str, plugin_id: str) -> T:
    """Run `fn` on a daemon thread (a hung init must not block interpreter exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name=f"native-{plugin_id}-load", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        raise PluginLoadError(plugin_id, what) from None
