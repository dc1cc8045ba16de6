"""The CLIProxyAPI C ABI (version 1) as ctypes types, plus the C allocator the host uses.

Layouts match `cliproxy_buffer`, `cliproxy_host_api` and `cliproxy_plugin_api` exactly
(x86_64: buffer 16 bytes, both tables 32 bytes). The host frees nothing the plugin allocated
and vice versa: replies to host callbacks are `malloc`'d here and freed by the plugin through
the host table's `free_buffer`, which is libc's `free` itself (no Python on that path).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_size_t, c_uint32, c_void_p
from typing import Any

ABI_VERSION = 1
INIT_SYMBOL = "cliproxy_plugin_init"


class Buffer(Structure):
    """`cliproxy_buffer { void* ptr; size_t len; }`."""

    _fields_ = (("ptr", c_void_p), ("len", c_size_t))


HostCallFn = CFUNCTYPE(c_int, c_void_p, c_char_p, c_void_p, c_size_t, POINTER(Buffer))
PluginCallFn = CFUNCTYPE(c_int, c_char_p, c_char_p, c_size_t, POINTER(Buffer))
FreeFn = CFUNCTYPE(None, c_void_p, c_size_t)
ShutdownFn = CFUNCTYPE(None)


class HostApi(Structure):
    """`cliproxy_host_api`: what the host hands to `cliproxy_plugin_init`."""

    _fields_ = (
        ("abi_version", c_uint32),
        ("host_ctx", c_void_p),
        ("call", HostCallFn),
        ("free_buffer", c_void_p),
    )


class PluginApi(Structure):
    """`cliproxy_plugin_api`: the function table the plugin fills in."""

    _fields_ = (
        ("abi_version", c_uint32),
        ("call", c_void_p),
        ("free_buffer", c_void_p),
        ("shutdown", c_void_p),
    )


InitFn = CFUNCTYPE(c_int, POINTER(HostApi), POINTER(PluginApi))


class CAllocator:
    """libc `malloc`/`free`, the allocator of every buffer the host hands to a plugin."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") if sys.platform == "darwin" else None)
        self.malloc = libc.malloc
        self.malloc.argtypes = (c_size_t,)
        self.malloc.restype = c_void_p
        self.free = libc.free
        self.free.argtypes = (c_void_p,)
        self.free.restype = None
        self.free_address: int = ctypes.cast(libc.free, c_void_p).value or 0

    def copy_out(self, data: bytes) -> tuple[int, int]:
        """`malloc` a copy of `data`; returns (pointer, length). Never returns NULL for empty data."""
        ptr = self.malloc(max(len(data), 1))
        if not ptr:
            raise MemoryError(f"malloc({len(data)}) failed")
        ctypes.memmove(ptr, data, len(data))
        return int(ptr), len(data)


def pin_forever(obj: Any) -> None:
    """Keep `obj` alive for the life of the process.

    Native libraries are never unloaded, so their threads may use the host table, its callback
    trampoline and context at any time; freeing them would turn a late callback into a crash.
    """
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
