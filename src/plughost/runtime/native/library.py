"""Open a native library, run `cliproxy_plugin_init`, and call into it with the ABI's ownership rules.

A library is never `dlclose`d: a plugin thread may still run its code or hold the host table.
The host table, its callback trampoline and context are pinned for the life of the process.
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

from plughost.errors import PluginLoadError
from plughost.runtime.native.abi import (
    ABI_VERSION,
    INIT_SYMBOL,
    Buffer,
    CAllocator,
    FreeFn,
    HostApi,
    InitFn,
    PluginApi,
    PluginCallFn,
    ShutdownFn,
    pin_forever,
)
from plughost.runtime.native.callbacks import HostCallbacks
from plughost.runtime.native.discovery import host_arch, host_os

# ELF e_machine values → Go's GOARCH names
ELF_MACHINES = {3: "386", 40: "arm", 62: "amd64", 183: "arm64", 243: "riscv64", 8: "mips", 21: "ppc64", 22: "s390x"}


def check_binary_format(path: Path) -> str | None:
    """A clear reason why `path` cannot be a library for this host, or None if it may be."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if head[:4] == b"\x7fELF":
        if host_os() in ("darwin", "windows"):
            return f"{path} is an ELF library (Linux/BSD); this host runs {host_os()}"
        if len(head) < 20:
            return f"{path} is a truncated ELF file ({len(head)} bytes)"
        elf_class = {1: 32, 2: 64}.get(head[4], 0)
        endian = "<" if head[5] == 1 else ">"
        (e_type, e_machine) = struct.unpack(endian + "HH", head[16:20])
        arch = ELF_MACHINES.get(e_machine, f"machine {e_machine}")
        if arch != host_arch() and not (arch == "ppc64" and host_arch() == "ppc64le"):
            return f"{path} is built for {arch}, this host is {host_os()}/{host_arch()}; rebuild it for {host_arch()}"
        if elf_class != struct.calcsize("P") * 8:
            return f"{path} is a {elf_class}-bit library; this host process is {struct.calcsize('P') * 8}-bit"
        if e_type != 3:
            return f"{path} is an ELF file of type {e_type}, not a shared library (ET_DYN); build it with -shared"
        return None
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe") and host_os() != "darwin":
        return f"{path} is a Mach-O library (macOS); this host runs {host_os()}"
    if head[:2] == b"MZ" and host_os() != "windows":
        return f"{path} is a Windows DLL; this host runs {host_os()}"
    if host_os() == "linux" and head[:4] != b"\x7fELF":
        return f"{path} is not a shared library (no ELF header)"
    return None


class NativeLibrary:
    """One opened and initialised library with its function table."""

    def __init__(self, plugin_id: str, path: Path, callbacks: HostCallbacks, *, load_path: Path | None = None) -> None:
        self.plugin_id = plugin_id
        self.path = path
        self.callbacks = callbacks
        problem = check_binary_format(path)
        if problem:
            raise PluginLoadError(plugin_id, problem)
        try:
            self._dll = ctypes.CDLL(str(load_path or path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as exc:
            raise PluginLoadError(plugin_id, f"dlopen {path} failed: {exc}") from None
        pin_forever(self._dll)
        try:
            init_addr = ctypes.cast(getattr(self._dll, INIT_SYMBOL), ctypes.c_void_p).value
        except AttributeError:
            raise PluginLoadError(
                plugin_id, f"{path} does not export {INIT_SYMBOL}; is it a CLIProxyAPI/plughost plugin?"
            ) from None
        self.host_api = HostApi(
            abi_version=ABI_VERSION,
            host_ctx=callbacks.token_address,
            call=callbacks.trampoline,
            free_buffer=callbacks_free_address(callbacks),
        )
        self.plugin_api = PluginApi()
        for obj in (callbacks, self.host_api, self.plugin_api):
            pin_forever(obj)
        rc = InitFn(init_addr or 0)(ctypes.byref(self.host_api), ctypes.byref(self.plugin_api))
        if rc != 0:
            raise PluginLoadError(plugin_id, f"{INIT_SYMBOL} in {path} returned {rc}")
        api = self.plugin_api
        if api.abi_version != ABI_VERSION:
            raise PluginLoadError(
                plugin_id, f"{path}: ABI version {api.abi_version} not supported (this host speaks {ABI_VERSION})"
            )
        if not api.call or not api.free_buffer:
            missing = " and ".join(n for n in ("call", "free_buffer") if not getattr(api, n))
            raise PluginLoadError(plugin_id, f"{path}: function table incomplete ({missing} is NULL)")
        self._call = PluginCallFn(api.call)
        self._free = FreeFn(api.free_buffer)
        self._shutdown = ShutdownFn(api.shutdown) if api.shutdown else None
        self.shut_down = False

    def call(self, method: str, request: bytes) -> tuple[int, bytes]:
        """Call the plugin; returns (rc, reply bytes). Runs in the calling thread, GIL released."""
        resp = Buffer()
        rc = self._call(method.encode(), request or None, len(request), ctypes.byref(resp))
        data = b""
        if resp.ptr:
            length = resp.len
            data = ctypes.string_at(resp.ptr, length)
            self._free(resp.ptr, length)
        return int(rc), data

    def shutdown(self) -> None:
        """Call the plugin's `shutdown` once (if it has one). The library stays mapped."""
        if self.shut_down:
            return
        self.shut_down = True
        if self._shutdown is not None:
            self._shutdown()


def callbacks_free_address(callbacks: HostCallbacks) -> int:
    return callbacks.allocator.free_address


__all__ = ["CAllocator", "NativeLibrary", "check_binary_format", "host_arch", "host_os"]
