"""plughost: a polyglot plugin host for Python bots and AI agents.

The public names below are imported on first use, so a plugin (or a worker process) that only
needs the SDK does not pay for importing the whole host.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.core.config import HostConfig
    from plughost.core.manager import PluginManager
    from plughost.errors import PlugHostError
    from plughost.guard import Guard
    from plughost.host import Host
    from plughost.sdk import (
        Descriptor,
        Health,
        Message,
        Plugin,
        PluginContext,
        PluginEvent,
        PluginExecutionContext,
        PluginExecutionResult,
        PluginHandle,
        PluginManifest,
        PluginState,
        Segment,
    )

__version__ = "0.1.0"

# Where the host-side names live; every other exported name comes from `plughost.sdk`.
_HOST_HOMES = {
    "HostConfig": "plughost.core.config",
    "PluginManager": "plughost.core.manager",
    "PlugHostError": "plughost.errors",
    "Guard": "plughost.guard",
    "Host": "plughost.host",
}

__all__ = [
    "Descriptor",
    "Guard",
    "Health",
    "Host",
    "HostConfig",
    "Message",
    "PlugHostError",
    "Plugin",
    "PluginContext",
    "PluginEvent",
    "PluginExecutionContext",
    "PluginExecutionResult",
    "PluginHandle",
    "PluginManager",
    "PluginManifest",
    "PluginState",
    "Segment",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'plughost' has no attribute '{name}'")
    return getattr(importlib.import_module(_HOST_HOMES.get(name, "plughost.sdk")), name)


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
