"""Enforcing a manifest's `permissions` in a worker with the kernel's own mechanisms.

A worker whose permissions switch anything off is sandboxed in two steps:

- `prepare(permissions)` runs first thing in `plughost worker`, while it has a single thread:
  with `filesystem = false` it moves the worker into a private mount namespace (`mounts`).
- `confine(permissions, plugin_dir=…, data_dir=…, prepared=…)` runs after the worker's sockets
  exist and before the plugin's code is imported:

  - `filesystem = false`: no reading or writing outside the plugin and data directories
    (Landlock; the Python installation, `sys.path` and shared libraries stay readable, and of
    `/proc` only the worker's own few entries — not its view of the network's sockets).
    `TMPDIR` and `HOME` move into the data directory. File metadata (mode, owner, times,
    extended attributes), which Landlock does not cover, cannot change outside the two
    directories either: every other mount is read-only in the worker's namespace — or, where no
    namespace can be made, a seccomp filter refuses those calls everywhere.
  - `network = false` (seccomp): no new sockets of any kind, unix ones included — the link to
    the host already exists — and (Landlock ABI ≥ 6) no abstract unix sockets of other processes.
  - `exec = false` (seccomp): no new programs or processes (threads are fine).
  - always: no `ptrace` or other access to another process's memory, no mounts or namespaces
    (seccomp), and no signals to processes outside the worker (Landlock ABI ≥ 6; elsewhere a
    seccomp filter that lets it signal only itself).

What cannot be enforced on this machine is an error (`SandboxUnavailable`), never a silent no-op.
Where a guarantee has a fallback (signals, abstract sockets, metadata), the fallback is used and
logged; `PLUGHOST_SANDBOX_FALLBACKS=1` in the host's environment makes workers use the fallbacks
even where the kernel offers more (tests check both ways with it).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plughost.runtime.sandbox import landlock, mounts, seccomp
from plughost.sdk.manifest import Permissions

FALLBACKS_ENV = "PLUGHOST_SANDBOX_FALLBACKS"
SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime")
# what of /proc/self stays readable: the process's own state, not its network namespace's sockets
# (net/), mounts or environment, and no task/ directory (each task has a net/ of its own)
PROC_SELF = ("fd", "fdinfo", "stat", "statm", "status", "cmdline", "comm", "maps", "limits")
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
log = logging.getLogger("plughost.sandbox")


class SandboxUnavailable(RuntimeError):
    """A permission the manifest switches off cannot be enforced here."""


@dataclass(frozen=True)
class Preparation:
    """What `prepare` did while the worker had one thread."""

    mount_namespace: str = ""  # how the private mount namespace was made; "" when there is none
    reason: str = ""  # why there is none, when one was wanted


def restricts(permissions: Permissions) -> bool:
    """True when the permissions switch off anything a worker can enforce."""
    return not (permissions.filesystem and permissions.network and permissions.exec)


def fallbacks_forced() -> bool:
    """True when `PLUGHOST_SANDBOX_FALLBACKS` asks for the fallbacks of older kernels."""
    return os.environ.get(FALLBACKS_ENV, "").lower() in ("1", "true", "yes")


def python_paths() -> list[Path]:
    """What this interpreter reads to run and import: its prefixes and `sys.path`."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths.update(Path(p) for p in sys.path if p)
    paths.add(Path(sys.executable).resolve().parent)
    return sorted(paths)


def prepare(permissions: Permissions, *, fallbacks: bool = False) -> Preparation:
    """Before any thread starts: the private mount namespace `filesystem = false` needs."""
    if permissions.filesystem:
        return Preparation()
    if fallbacks:
        return Preparation(reason=f"{FALLBACKS_ENV} is set")
    try:
        return Preparation(mount_namespace=mounts.enter())
    except mounts.MountsUnavailable as exc:
        return Preparation(reason=str(exc))


def confine(
    permissions: Permissions,
    *,
    plugin_dir: Path,
    data_dir: Path,
    prepared: Preparation | None = None,
    fallbacks: bool = False,
) -> list[str]:
    """Enforce `permissions` on this process for good; one line per restriction applied."""
    if not restricts(permissions):
        return []
    prepared = prepared or Preparation(reason="the worker did not prepare one")
    applied: list[str] = []
    abi = landlock.abi_version()
    scopes = 0 if fallbacks else landlock.supported_scopes(abi) & _wanted_scopes(permissions)
    metadata_allowed = permissions.filesystem
    if not permissions.filesystem:  # then metadata calls are only allowed when read-only mounts guard them
        metadata_allowed = _confine_files(permissions, plugin_dir, data_dir, prepared, scopes, applied)
    elif scopes:
        try:
            landlock.restrict(scopes=scopes)
        except landlock.LandlockUnavailable as exc:
            raise SandboxUnavailable(f"the sandbox cannot scope signals and sockets: {exc}") from None
    signals_scoped = bool(scopes & landlock.SCOPE_SIGNAL)
    policy = seccomp.Policy(
        network=permissions.network,
        exec_=permissions.exec,
        signals_pid=None if signals_scoped else os.getpid(),
        metadata=metadata_allowed,
    )
    try:
        seccomp.install(policy)
    except seccomp.SeccompUnavailable as exc:
        raise SandboxUnavailable(f"the sandbox cannot be enforced: {exc}") from None
    applied.append("processes: no ptrace or memory access to other processes, no mounts or namespaces (seccomp)")
    if signals_scoped:
        applied.append(f"signals: only within the worker (Landlock ABI {abi} scope)")
    else:
        why = f"{FALLBACKS_ENV} is set" if fallbacks else f"Landlock ABI {abi} cannot scope signals, which takes ABI 6"
        applied.append(f"signals: only to the worker itself (seccomp; {why})")
    if not permissions.network:
        abstract = ", nor abstract sockets of others (Landlock scope)" if scopes else ""
        applied.append(f"network: no new sockets, unix ones included (seccomp){abstract}")
    if not permissions.exec:
        applied.append("exec: no new programs or processes (seccomp)")
    return applied


def _wanted_scopes(permissions: Permissions) -> int:
    wanted = landlock.SCOPE_SIGNAL
    if not permissions.network:
        wanted |= landlock.SCOPE_ABSTRACT_UNIX_SOCKET
    return wanted


def _confine_files(
    permissions: Permissions, plugin_dir: Path, data_dir: Path, prepared: Preparation, scopes: int, applied: list[str]
) -> bool:
    """Landlock and, when prepared, the read-only mounts; True when metadata is guarded by them."""
    temp = data_dir / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(temp)
    os.environ["HOME"] = str(data_dir)
    tempfile.tempdir = None  # recomputed from TMPDIR on next use
    mounted = False
    if prepared.mount_namespace:
        writable = [p for p in (plugin_dir, data_dir) if not _read_only(p)]  # read-only ones stay so
        try:
            mounts.seal(writable)
        except mounts.MountsUnavailable as exc:
            raise SandboxUnavailable(f"permissions.filesystem = false cannot be enforced: {exc}") from None
        mounted = True
    read_only = [*python_paths(), *map(Path, SYSTEM_READ_ONLY), *(Path("/proc/self", n) for n in PROC_SELF)]
    if permissions.network:
        read_only.extend(map(Path, NETWORK_READ_ONLY))
    try:
        abi = landlock.restrict(
            read_only=read_only, read_write=[plugin_dir, data_dir, *map(Path, DEVICES)], scopes=scopes
        )
    except landlock.LandlockUnavailable as exc:
        raise SandboxUnavailable(f"permissions.filesystem = false cannot be enforced: {exc}") from None
    applied.append(f"filesystem: only {plugin_dir} and {data_dir} (Landlock ABI {abi})")
    if mounted:
        applied.append(f"file metadata: read-only outside them ({prepared.mount_namespace})")
    else:
        log.warning(
            "sandbox: no private mount namespace (%s); file metadata (chmod, chown, utime, xattrs) cannot change "
            "anywhere, not even in the plugin's own directories (seccomp)",
            prepared.reason,
        )
        applied.append("file metadata: no changes anywhere (seccomp)")
    return mounted


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


__all__ = [
    "FALLBACKS_ENV",
    "Preparation",
    "SandboxUnavailable",
    "confine",
    "fallbacks_forced",
    "prepare",
    "python_paths",
    "restricts",
]
