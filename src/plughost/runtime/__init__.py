"""Runtimes: turn plugins (Python, native libraries, executables) into `PluginHandle`s.

`default_runtimes()` builds the runtimes of this installation for a `PluginManager`; it and
`in_process_runtimes()` are imported on first use, so importing the contract (`Runtime`,
`LoadRequest` …) does not import every runtime; the contract itself is imported on first use too,
so a submodule such as `plughost.runtime.config` comes without the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.runtime.base import (
        Candidate,
        LoadRequest,
        Runtime,
        RuntimeEvent,
        SupportsBuild,
        SupportsDiscover,
        SupportsListeners,
        SupportsRediscover,
        SupportsWatch,
    )
    from plughost.runtime.placement import default_runtimes, in_process_runtimes

__all__ = [
    "Candidate",
    "LoadRequest",
    "Runtime",
    "RuntimeEvent",
    "SupportsBuild",
    "SupportsDiscover",
    "SupportsListeners",
    "SupportsRediscover",
    "SupportsWatch",
    "default_runtimes",
    "in_process_runtimes",
]


def __getattr__(name: str) -> Any:
    if name in ("default_runtimes", "in_process_runtimes"):
        from plughost.runtime import placement

        return getattr(placement, name)
    if name in __all__:
        from plughost.runtime import base

        return getattr(base, name)
    raise AttributeError(f"module 'plughost.runtime' has no attribute '{name}'")
