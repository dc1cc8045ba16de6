"""`GuardedPlugins`: a minimal plugin directory (handles + a `Guard`) for driving the dispatcher
without a full `PluginManager`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plughost.guard import Guard
from plughost.sdk.call import UNAVAILABLE, Call, Outcome
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import PluginHandle


@dataclass
class GuardedPlugin:
    id: str
    handle: PluginHandle
    manifest: Any = None
    priority: int = 0

    @property
    def descriptor(self) -> Descriptor:
        return self.handle.descriptor


class GuardedPlugins:
    """Enabled plugins ordered by priority (desc) then id; every call goes through the guard."""

    def __init__(self, guard: Guard | None = None) -> None:
        self.guard = guard or Guard()
        self._plugins: dict[str, GuardedPlugin] = {}
        self._ordered: list[GuardedPlugin] = []

    def add(self, plugin_id: str, handle: PluginHandle, *, manifest: Any = None, priority: int = 0) -> None:
        self._plugins[plugin_id] = GuardedPlugin(plugin_id, handle, manifest, priority)
        self._ordered = sorted(self._plugins.values(), key=lambda p: (-p.priority, p.id))

    def remove(self, plugin_id: str) -> None:
        self._plugins.pop(plugin_id, None)
        self._ordered = sorted(self._plugins.values(), key=lambda p: (-p.priority, p.id))

    def enabled_plugins(self) -> list[GuardedPlugin]:
        return self._ordered

    async def call(self, plugin_id: str, call: Call) -> Outcome:
        plugin = self._plugins.get(plugin_id)
        if plugin is None:
            return Outcome.failed(UNAVAILABLE, f"plugin '{plugin_id}' was not found")
        return await self.guard.call(plugin_id, plugin.handle, call)
