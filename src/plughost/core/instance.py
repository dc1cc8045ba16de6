"""`PluginInstance`: the manager's record of one plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest
from plughost.sdk.models import PluginState

ACTIVE_STATES = frozenset({PluginState.ENABLED, PluginState.ISOLATED})
_INACTIVE = frozenset({PluginState.UNLOADED, PluginState.ERROR})


@dataclass
class PluginInstance:
    """A plugin the manager knows: its manifest, lifecycle state, handle and last error."""

    id: str
    manifest: PluginManifest
    path: Path
    state: PluginState = PluginState.DISCOVERED
    handle: PluginHandle | None = None
    error: str | None = None
    priority: int = 0
    origin: str = ""
    entry_point: str | None = None
    loaded_at: float | None = None
    timeout_s: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.set_manifest(self.manifest)

    def set_manifest(self, manifest: PluginManifest) -> None:
        """Replace the manifest (reload) and what is derived from it."""
        self.manifest = manifest
        self.timeout_s = manifest.limits.timeout_s  # read on every call

    @property
    def descriptor(self) -> Descriptor | None:
        return self.handle.descriptor if self.handle is not None else None

    @property
    def is_enabled(self) -> bool:
        """Enabled (an isolated plugin is still enabled; its breaker rejects calls for a while)."""
        return self.state in ACTIVE_STATES

    @property
    def is_loaded(self) -> bool:
        return self.handle is not None and self.state not in _INACTIVE

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for CLIs and APIs."""
        descriptor = self.descriptor
        return {
            "id": self.id,
            "name": self.manifest.name,
            "version": self.manifest.version,
            "type": self.manifest.type,
            "runtime": self.manifest.runtime,
            "isolation": self.manifest.isolation,
            "state": str(self.state),
            "priority": self.priority,
            "path": str(self.path),
            "origin": self.origin,
            "error": self.error,
            "description": self.manifest.description,
            "tags": list(self.manifest.tags),
            "methods": [m.name for m in descriptor.methods] if descriptor else [],
            "commands": [c.name for c in descriptor.commands] if descriptor else [],
            "capabilities": sorted(descriptor.capabilities) if descriptor else [],
            "offers": descriptor.offers() if descriptor else [],
            "runtime_status": self.runtime_status(),
        }

    def runtime_status(self) -> str | None:
        """What the runtime says of a process or remote plugin (`running`, `restarting`, `disconnected` …)."""
        info = getattr(self.handle, "info", None)
        status = info().get("status") if callable(info) else None
        return status if isinstance(status, str) else None
