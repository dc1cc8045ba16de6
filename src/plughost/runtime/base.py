"""The contract between the host and a runtime: a `LoadRequest` in, a `PluginHandle` out.

`Runtime` is what every runtime offers. Optional features are protocols of their own, which
callers check with `isinstance`: `SupportsDiscover`, `SupportsRediscover` and `SupportsWatch`
(plugins that carry no manifest, like native libraries), `SupportsBuild` (plugins shipped as source), and, for
handles, `SupportsListeners` (runtime events such as a crash or a restart of a plugin process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from plughost.errors import ValidationIssue
from plughost.sdk.manifest import PluginManifest
from plughost.sdk.models import DiscoveryStatus

if TYPE_CHECKING:  # annotations only: discovery (`Candidate`) comes without the call machinery
    from plughost.sdk.call import ActionSink
    from plughost.sdk.handle import PluginHandle
    from plughost.sdk.shared import BusApi, StateApi
    from plughost.sdk.tasks import TaskOwner


@dataclass
class Candidate:
    """A plugin found on disk or in an installed package, before it is loaded.

    `status` is `available`, `source_only` (needs a build) or `invalid` (see `errors`).
    `origin` says where it came from (`<dir>`, `entry-point:<dist>` …); `entry_point` is set for
    plugins that come from the `plughost.plugins` entry-point group.
    """

    id: str
    path: Path
    manifest: PluginManifest | None
    status: DiscoveryStatus
    origin: str
    errors: list[ValidationIssue] = field(default_factory=list)
    entry_point: str | None = None
    tasks: TaskOwner | None = None
    outside_calls: ActionSink | None = None

    @property
    def runtime(self) -> str:
        return self.manifest.runtime if self.manifest is not None else "unknown"

    def row(self) -> dict[str, Any]:
        """The plugin as a catalog row while it is not loaded (`state` None; `errors` say why it is invalid)."""
        row: dict[str, Any] = {
            "id": self.id,
            "state": None,
            "status": self.status.value,
            "runtime": self.runtime,
            "path": str(self.path),
            "errors": [str(e) for e in self.errors],
        }
        if self.manifest is not None:
            manifest = self.manifest
            row |= {"name": manifest.name, "version": manifest.version, "description": manifest.description}
        return row


@dataclass(frozen=True)
class LoadRequest:
    """Everything a runtime needs to load one plugin.

    `path` is the plugin directory, or the file itself for single-file/library plugins.
    `tasks` owns the handle's background tasks (the manager passes a child of its own); a handle
    makes its own owner when it is None, and its `stop` closes it. `outside_calls` receives the
    bot actions the plugin makes outside any call (a native plugin's `host.bot.send` from its
    own thread); without it they wait, bounded, on the handle. `bus` and `state` are what the
    plugin sees as `ctx.bus` and `ctx.state` (None: the runtime offers none).
    """

    plugin_id: str
    path: Path
    manifest: PluginManifest
    data_dir: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("plughost.plugin"))
    priority: int = 0
    enabled: bool = True
    entry_point: str | None = None
    tasks: TaskOwner | None = None
    outside_calls: ActionSink | None = None
    bus: BusApi | None = None
    state: StateApi | None = None

    @property
    def plugin_dir(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent


@runtime_checkable
class Runtime(Protocol):
    """Turns a plugin on disk into a running `PluginHandle`.

    The manager looks a runtime up by the manifest's `runtime` (python, native, process); that
    runtime decides where the plugin runs (`plughost.runtime.placement.placement_for`).
    """

    name: str

    async def load(self, request: LoadRequest) -> PluginHandle:
        """Load and start the plugin; raise `PluginLoadError` with the reason on failure."""
        ...

    async def aclose(self) -> None:
        """Release what the runtime itself holds (pools, servers)."""
        ...


@runtime_checkable
class SupportsDiscover(Runtime, Protocol):
    """A runtime that finds plugins which carry no manifest (native libraries)."""

    def discover(self, directory: Path) -> list[Candidate]:
        """The plugins of this runtime directly in `directory` (invalid ones with their errors)."""
        ...


@runtime_checkable
class SupportsRediscover(Runtime, Protocol):
    """A runtime whose plugins may move to another file on reload (`alpha-v2.so` beside `alpha.so`)."""

    def rediscover(self, path: Path, plugin_id: str) -> Candidate | None:
        """The current candidate for `plugin_id` near `path`, or None to keep the loaded one's."""
        ...


@runtime_checkable
class SupportsWatch(Runtime, Protocol):
    """A runtime whose plugins may be files beside others (a native library and its manifest)."""

    def plugin_of(self, path: Path) -> str | None:
        """The id of the plugin of this runtime that the file at `path` belongs to, or None.

        For files outside a plugin directory: `alpha.so`, `alpha-v2.so`, `alpha.plugin.toml`. The
        file may be gone (a deleted library still names its plugin).
        """
        ...


@runtime_checkable
class SupportsBuild(Runtime, Protocol):
    """A runtime that builds plugins from their sources (`plughost.runtime.builds`): one discovered
    as source only before its load, and one whose sources changed before a hot reload."""

    async def build(self, candidate: Candidate) -> None:
        """Build the plugin's binary; raise `PluginLoadError` with the reason on failure."""
        ...

    def build_outputs(self, candidate: Candidate) -> tuple[Path, ...]:
        """Where `build` writes (resolved files or directories), or () when this plugin is not built
        by its runtime: a change of any other of its files calls for a new build before a reload."""
        ...


def written_by(outputs: tuple[Path, ...], path: Path) -> bool:
    """True when `path` is one of a build's `outputs` or lies under one of them."""
    return any(path == output or output in path.parents for output in outputs)


class RuntimeEvent(Protocol):
    """Something that happened to a plugin's process: `kind` is crashed, restarted, unhealthy,
    restart_failed, gave_up, stopped …"""

    @property
    def kind(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def exit_code(self) -> int | None: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def stderr_tail(self) -> str: ...


@runtime_checkable
class SupportsListeners(Protocol):
    """A handle that reports runtime events (process plugins and workers: crashes, restarts …)."""

    def add_listener(self, hook: Callable[[Any], None]) -> None:
        """Call `hook(event)` with every `RuntimeEvent` of this plugin."""
        ...


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


StartableT = TypeVar("StartableT", bound=_Startable)


async def started(handle: StartableT) -> StartableT:
    """Start `handle`; if that fails or is cancelled, stop it so nothing is left running."""
    try:
        await handle.start()
    except BaseException:
        await handle.stop()
        raise
    return handle
