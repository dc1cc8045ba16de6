"""Enforcing a manifest's `permissions` in a worker with the kernel's own mechanisms.

`confine(permissions, plugin_dir=…, data_dir=…)` runs inside `plughost worker` after its sockets
exist and before the plugin's code is imported:

- `filesystem = false` (Landlock): no reading or writing outside the plugin and data
  directories. The Python installation, `sys.path` and shared libraries stay readable, and
  `TMPDIR` moves into the data directory.
- `network = false` (seccomp): no sockets but unix ones (the link to the host).
- `exec = false` (seccomp): no new programs or processes (threads are fine).

What cannot be enforced on this machine is an error (`SandboxUnavailable`), never a silent no-op.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from plughost.runtime.sandbox import landlock, seccomp
from plughost.sdk.manifest import Permissions

SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime", "/proc/self")
NETWORK_READ_ONLY = (  # what name resolution and TLS read, when the plugin may use the network
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full")


class SandboxUnavailable(RuntimeError):
    """A permission the manifest switches off cannot be enforced here."""


def restricts(permissions: Permissions) -> bool:
    """True when the permissions switch off anything a worker can enforce."""
    return not (permissions.filesystem and permissions.network and permissions.exec)


def python_paths() -> list[Path]:
    """What this interpreter reads to run and import: its prefixes and `sys.path`."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths.update(Path(p) for p in sys.path if p)
    paths.add(Path(sys.executable).resolve().parent)
    return sorted(paths)


def confine(permissions: Permissions, *, plugin_dir: Path, data_dir: Path) -> list[str]:
    """Enforce `permissions` on this process for good; one line per restriction applied."""
    applied: list[str] = []
    if not permissions.filesystem:
        temp = data_dir / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = str(temp)
        tempfile.tempdir = None  # recomputed from TMPDIR on next use
        read_only = [*python_paths(), *map(Path, SYSTEM_READ_ONLY)]
        if permissions.network:
            read_only.extend(map(Path, NETWORK_READ_ONLY))
        try:
            abi = landlock.restrict(
                read_only=read_only,
                read_write=[plugin_dir, data_dir, *map(Path, DEVICES)],
            )
        except landlock.LandlockUnavailable as exc:
            raise SandboxUnavailable(f"permissions.filesystem = false cannot be enforced: {exc}") from None
        applied.append(f"filesystem: only {plugin_dir} and {data_dir} (Landlock ABI {abi})")
    if not (permissions.network and permissions.exec):
        try:
            seccomp.install(network=permissions.network, exec_=permissions.exec)
        except seccomp.SeccompUnavailable as exc:
            raise SandboxUnavailable(f"permissions.network/exec = false cannot be enforced: {exc}") from None
        if not permissions.network:
            applied.append("network: no sockets but unix ones (seccomp)")
        if not permissions.exec:
            applied.append("exec: no new programs or processes (seccomp)")
    return applied


__all__ = ["SandboxUnavailable", "confine", "python_paths", "restricts"]
