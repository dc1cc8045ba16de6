"""Native plugins over the CLIProxyAPI C ABI (ctypes), with plughost's bot methods.

See `docs/native.md` and `sdk/c/plughost_plugin.h`.
"""

from plughost.runtime.native.discovery import NativeDiscovery, NativeLibraryFile, discover_libraries
from plughost.runtime.native.envelope import NativeCallError
from plughost.runtime.native.handle import NativePluginHandle, NativeSettings
from plughost.runtime.native.management import ManagementResponse, ManagementRoute
from plughost.runtime.native.runtime import NativeRuntime

__all__ = [
    "ManagementResponse",
    "ManagementRoute",
    "NativeCallError",
    "NativeDiscovery",
    "NativeLibraryFile",
    "NativePluginHandle",
    "NativeRuntime",
    "NativeSettings",
    "discover_libraries",
]
