"""Native plugins over the CLIProxyAPI C ABI (ctypes), with plughost's bot methods.

See `docs/native.md` and `sdk/c/plughost_plugin.h`. The names below are imported on first use:
a host that finds no native library never loads ctypes' ABI definitions or the library loader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.runtime.native.discovery import NativeDiscovery, NativeLibraryFile, discover_libraries
    from plughost.runtime.native.envelope import NativeCallError
    from plughost.runtime.native.handle import NativePluginHandle
    from plughost.runtime.native.runtime import NativeRuntime
    from plughost.runtime.native.settings import NativeSettings

_HOMES = {
    "NativeCallError": "envelope",
    "NativeDiscovery": "discovery",
    "NativeLibraryFile": "discovery",
    "NativePluginHandle": "handle",
    "NativeRuntime": "runtime",
    "NativeSettings": "settings",
    "discover_libraries": "discovery",
}

__all__ = [
    "NativeCallError",
    "NativeDiscovery",
    "NativeLibraryFile",
    "NativePluginHandle",
    "NativeRuntime",
    "NativeSettings",
    "discover_libraries",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'plughost.runtime.native' has no attribute '{name}'")
    return getattr(importlib.import_module(f"plughost.runtime.native.{home}"), name)
