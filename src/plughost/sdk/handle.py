"""The one shape every runtime turns a plugin into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from plughost.sdk.call import Call, Outcome
from plughost.sdk.descriptor import Descriptor

HealthStatus = Literal["ok", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class Health:
    """A plugin's health as its runtime sees it."""

    status: HealthStatus = "ok"
    detail: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@runtime_checkable
class PluginHandle(Protocol):
    """A loaded plugin, whatever its language or placement.

    `call` never raises for a failure of the plugin: the outcome carries the error (and the
    sends queued before it). `stop` is graceful; the runtime escalates to a kill after its deadline.
    """

    descriptor: Descriptor

    async def call(self, call: Call) -> Outcome:
        """Run one declared handler with the call's JSON-shaped payload."""
        ...

    async def health(self) -> Health:
        """Report the plugin's health."""
        ...

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        """Hand the plugin its new configuration."""
        ...

    async def set_enabled(self, enabled: bool) -> None:
        """Tell the plugin it was enabled or disabled (Python's on_enable/on_disable hooks)."""
        ...

    async def stop(self) -> None:
        """Stop the plugin and release everything it holds (tasks, threads, processes)."""
        ...
