"""A seccomp-BPF filter that takes away IP sockets and/or new processes, for every thread.

`install(network=False, exec_=False)` denies, with `EPERM`:

- network: `socket()` of any family but `AF_UNIX` (the worker's link to the host), and
  `io_uring_setup` (io_uring can open sockets without the `socket` syscall);
- exec: `execve`, `execveat`, `fork`, `vfork` and `clone` without `CLONE_THREAD` (threads stay
  allowed); `clone3` answers `ENOSYS`, so libc falls back to `clone`, which the filter can inspect.

A syscall of another architecture (x32, i386 on x86_64) kills the process. The filter is
installed with `SECCOMP_FILTER_FLAG_TSYNC`, so threads that already exist get it too, and it can
never be removed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
AF_UNIX = 1
CLONE_THREAD = 0x00010000
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARG0_LOW = 16  # args[0], low 32 bits (little-endian)


@dataclass(frozen=True)
class Arch:
    audit_arch: int
    seccomp: int
    socket: int
    execve: int
    execveat: int
    clone: int
    clone3: int
    io_uring_setup: int
    fork: int | None = None
    vfork: int | None = None
    x32: bool = False


ARCHES = {
    "x86_64": Arch(0xC000003E, 317, 41, 59, 322, 56, 435, 425, fork=57, vfork=58, x32=True),
    "aarch64": Arch(0xC00000B7, 277, 198, 221, 281, 220, 435, 425),
}


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class SeccompUnavailable(RuntimeError):
    """This machine cannot install the filter (architecture or kernel)."""


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def build_filter(arch: Arch, *, network: bool, exec_: bool) -> list[tuple[int, int, int, int]]:
    """The BPF program: (code, jt, jf, k) instructions denying what is switched off."""
    deny = RET_ERRNO | errno.EPERM
    rules: list[tuple[int, int, int, int]] = []  # each rule: expects the syscall number in A
    tail: list[tuple[int, int, int, int]] = [_stmt(RET_K, RET_ALLOW)]

    def deny_nr(nr: int, answer: int = deny) -> None:
        rules.extend([_jump(JEQ_K, nr, 0, 1), _stmt(RET_K, answer)])

    if not network:
        # socket(domain, …): allow AF_UNIX only
        rules.extend(
            [
                _jump(JEQ_K, arch.socket, 0, 4),
                _stmt(LD_W_ABS, OFFSET_ARG0_LOW),
                _jump(JEQ_K, AF_UNIX, 0, 1),
                _stmt(RET_K, RET_ALLOW),
                _stmt(RET_K, deny),
            ]
        )
        deny_nr(arch.io_uring_setup)
    if not exec_:
        for nr in (arch.execve, arch.execveat, arch.fork, arch.vfork):
            if nr is not None:
                deny_nr(nr)
        deny_nr(arch.clone3, RET_ERRNO | errno.ENOSYS)
        # clone(flags, …): threads (CLONE_THREAD) only
        rules.extend(
            [
                _jump(JEQ_K, arch.clone, 0, 4),
                _stmt(LD_W_ABS, OFFSET_ARG0_LOW),
                _jump(JSET_K, CLONE_THREAD, 0, 1),
                _stmt(RET_K, RET_ALLOW),
                _stmt(RET_K, deny),
            ]
        )
    head = [
        _stmt(LD_W_ABS, OFFSET_ARCH),
        _jump(JEQ_K, arch.audit_arch, 1, 0),
        _stmt(RET_K, RET_KILL_PROCESS),
        _stmt(LD_W_ABS, OFFSET_NR),
    ]
    if arch.x32:
        head.extend([_jump(JGE_K, X32_SYSCALL_BIT, 0, 1), _stmt(RET_K, RET_KILL_PROCESS)])
    # every branch that loads an argument into A returns, so later rules still see the number
    return head + rules + tail


def install(*, network: bool, exec_: bool) -> None:
    """Install the filter for the whole process (all threads). Raises `SeccompUnavailable`."""
    if network and exec_:
        return
    arch = ARCHES.get(platform.machine())
    if arch is None:
        raise SeccompUnavailable(f"no seccomp filter for architecture {platform.machine()}")
    program = build_filter(arch, network=network, exec_=exec_)
    encoded = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SeccompUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    result = libc.syscall(
        ctypes.c_long(arch.seccomp),
        ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        reason = os.strerror(ctypes.get_errno()) if result < 0 else f"thread {result} could not be synchronised"
        raise SeccompUnavailable(f"seccomp(SET_MODE_FILTER) failed: {reason}")
