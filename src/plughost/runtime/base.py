"""The contract between the host and a runtime: a `LoadRequest` in, a `PluginHandle` out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from plughost.errors import ValidationIssue
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest
from plughost.sdk.models import DiscoveryStatus
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

    @property
    def runtime(self) -> str:
        return self.manifest.runtime if self.manifest is not None else "unknown"


@dataclass(frozen=True)
class LoadRequest:
    """Everything a runtime needs to load one plugin.

    `path` is the plugin directory, or the file itself for single-file/library plugins.
    `tasks` owns the handle's background tasks (the manager passes a child of its own); a handle
    makes its own owner when it is None, and its `stop` closes it.
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

    @property
    def plugin_dir(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent


class Runtime(Protocol):
    """Turns a plugin on disk into a running `PluginHandle`."""

    name: str

    async def load(self, request: LoadRequest) -> PluginHandle:
        """Load and start the plugin; raise `PluginLoadError` with the reason on failure."""
        ...

    # A runtime may also offer `discover(directory: Path) -> list[Candidate]` to find plugins that
    # carry no manifest (native libraries); the core calls it when present.

    async def aclose(self) -> None:
        """Release what the runtime itself holds (pools, servers)."""
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
