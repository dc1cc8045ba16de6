"""A private mount namespace in which everything but the plugin's own directories is read-only.

Landlock decides which files a process may open, read, write, create or remove, but it has no
right for changing a file's metadata: `chmod`, `chown`, `utime` and extended attributes work on
any file the process can name. seccomp cannot look at paths. A read-only mount can: in its own
mount namespace the worker makes every mount read-only and bind-mounts the plugin and data
directories over themselves, writable. Metadata changes outside them fail with `EROFS` (so does
any other write, which Landlock already refuses); inside, the plugin works as usual. The host's
mounts are not touched (the namespace's mounts are private).

Making the namespace takes two steps:

- `enter()` — at the start of the worker, while it has a single thread: `unshare(CLONE_NEWNS)`
  with `CAP_SYS_ADMIN` (a host run as root), else together with a new user namespace that maps
  only the worker's own user and group (Linux ≥ 3.8 with unprivileged user namespaces, which
  some distributions restrict). Every thread started afterwards lives in it.
- `seal(writable)` — after the worker's sockets exist: the bind mounts, then
  `mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)` on `/` (Linux ≥ 5.12), then the binds
  writable again. The seccomp filter the sandbox installs next forbids mounting and new
  namespaces, so the plugin cannot undo it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1


class MountsUnavailable(RuntimeError):
    """No private read-only mount namespace can be made here; the message says why."""


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _failed(what: str) -> str:
    return f"{what}: {os.strerror(ctypes.get_errno())}"


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def enter() -> str:
    """Move this (single-threaded) process into a new private mount namespace; how it was made.

    Raises `MountsUnavailable` and leaves the process as it was when none can be made.
    """
    if _threads() > 1:
        raise MountsUnavailable("the process already runs several threads")
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    how = "mount namespace"
    if libc.unshare(ctypes.c_int(CLONE_NEWNS)) != 0:
        plain = _failed("unshare(CLONE_NEWNS)")
        if libc.unshare(ctypes.c_int(CLONE_NEWNS | CLONE_NEWUSER)) != 0:
            raise MountsUnavailable(f"{plain}; with a user namespace: {_failed('unshare')}")
        how = "user and mount namespace"
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            raise MountsUnavailable(f"cannot map the user into its namespace: {exc}") from None
    if libc.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
        raise MountsUnavailable(_failed("making the mounts private"))
    return how


def seal(writable: Iterable[Path]) -> None:
    """Make every mount read-only except bind mounts of `writable` (existing directories)."""
    libc = _libc()
    keep = sorted({Path(p).resolve() for p in writable}, key=lambda p: len(p.parts))
    for path in keep:  # a parent before the directories inside it: each bind covers the one before
        raw = os.fsencode(path)
        if libc.mount(raw, raw, None, ctypes.c_ulong(MS_BIND), None) != 0:
            raise MountsUnavailable(_failed(f"bind-mounting {path}"))
    _set_attr(libc, Path("/"), AT_RECURSIVE, set_=MOUNT_ATTR_RDONLY)
    for path in keep:
        _set_attr(libc, path, 0, clear=MOUNT_ATTR_RDONLY)
    os.chdir(os.getcwd())  # a working directory inside a bind must be entered through it


def _set_attr(libc: ctypes.CDLL, path: Path, flags: int, *, set_: int = 0, clear: int = 0) -> None:
    attr = _MountAttr(set_, clear, 0, 0)
    result = libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        os.fsencode(path),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result != 0:
        change = "read-only" if set_ else "writable"
        raise MountsUnavailable(_failed(f"making {path} {change} (mount_setattr, Linux ≥ 5.12)"))


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
