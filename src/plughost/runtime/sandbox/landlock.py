"""Landlock: confine a process's filesystem access to a list of directory trees, and scope it.

`restrict(read_only=…, read_write=…)` handles every filesystem right the kernel's Landlock ABI
knows; afterwards the calling thread and every thread or process it creates can only reach the
listed paths (read-only: read, list, execute; read-write: everything). `scopes` (ABI ≥ 6) also
keep it from signalling processes and connecting to abstract unix sockets outside its own
domain. Whatever the rules, a process in a Landlock domain cannot ptrace (or read the memory of)
a process outside it. It cannot be undone. Threads that already exist are not covered, so call it
before the code to confine creates any.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable
from pathlib import Path

SYS_CREATE_RULESET = 444  # the same number on x86_64 and aarch64
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights a file (not a directory) takes
READ_ONLY = EXECUTE | READ_FILE | READ_DIR


class LandlockUnavailable(RuntimeError):
    """The kernel has no (enabled) Landlock."""


class _RulesetAttr(ctypes.Structure):
    # older kernels take the larger struct as long as the fields they do not know are zero
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    version = _libc().syscall(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def handled_rights(abi: int) -> int:
    """Every filesystem right of Landlock ABI `abi`."""
    rights = (1 << 13) - 1  # ABI 1: EXECUTE … MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def supported_scopes(abi: int) -> int:
    """The scopes of Landlock ABI `abi` (none before ABI 6)."""
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def restrict(*, read_only: Iterable[Path] = (), read_write: Iterable[Path] | None = None, scopes: int = 0) -> int:
    """Confine this process; the ABI version used.

    With `read_write` (even empty) the filesystem is confined to the listed paths (missing ones
    are skipped); without, only `scopes` apply, which the kernel must support.
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockUnavailable("Landlock is not available on this kernel (Linux ≥ 5.13 with Landlock enabled)")
    missing = scopes & ~supported_scopes(abi)
    if missing:
        raise LandlockUnavailable(f"Landlock ABI {abi} cannot scope {missing:#x} (needs ABI 6, Linux ≥ 6.12)")
    libc = _libc()
    handled = handled_rights(abi) if read_write is not None else 0
    attr = _RulesetAttr(handled, 0, scopes)
    ruleset = libc.syscall(
        ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise LandlockUnavailable(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        if read_write is not None:
            for paths, rights in ((read_only, READ_ONLY & handled), (read_write, handled)):
                for path in paths:
                    _allow(libc, ruleset, path, rights)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LandlockUnavailable(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc: ctypes.CDLL, ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_RIGHTS
        beneath = _PathBeneathAttr(rights, fd)
        result = libc.syscall(
            ctypes.c_long(SYS_ADD_RULE),
            ctypes.c_int(ruleset),
            ctypes.c_int(RULE_PATH_BENEATH),
            ctypes.byref(beneath),
            ctypes.c_uint32(0),
        )
        if result != 0:
            raise LandlockUnavailable(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
