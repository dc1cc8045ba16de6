"""A seccomp-BPF filter for a sandboxed worker: what no thread of it may do, whatever it runs.

`install(Policy(...))` denies, with `EPERM` unless said otherwise:

- always: `ptrace`, `process_vm_readv`/`process_vm_writev` and `pidfd_getfd` (no reading or
  changing another process); mounting, `unshare`, `setns`, `chroot` and `clone` with a namespace
  flag (the worker's mount namespace and Landlock domain stay as they are); `io_uring_setup`
  (io_uring performs operations without the system calls this filter sees);
- `network = False`: `socket()` of every family, unix included — the worker's link to the host
  exists before the filter, so the plugin can reach nothing else — and `socketpair()` but for
  connected unix stream pairs (asyncio's wake-up pair; a datagram pair could send to any path);
- `exec_ = False`: `execve`, `execveat`, `fork`, `vfork` and `clone` without `CLONE_THREAD`
  (threads stay allowed);
- `signals_pid = pid` (where Landlock cannot scope signals): signals only to `pid` itself (`kill`
  also to its own process group), no `tkill`, `pidfd_send_signal`, and no `F_SETOWN`/`FIOSETOWN`,
  which would have the kernel signal another process on the plugin's behalf;
- `metadata = False` (where no read-only mount namespace is available): no `chmod`, `chown`,
  `utime` or extended-attribute call of any kind (nor the file-flag ioctls), anywhere.

`clone3` answers `ENOSYS`, so libc falls back to `clone`, whose flags the filter can inspect.
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
LD_W_ABS = 0x20
ALU_AND_K = 0x54
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
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR = 0
OFFSET_ARCH = 4


def offset_arg(index: int) -> int:
    """Offset of syscall argument `index`'s low 32 bits in `struct seccomp_data` (little-endian)."""
    return 16 + 8 * index


AF_UNIX = 1
SOCK_TYPE_MASK = 0xF
SOCK_STREAM = 1
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NAMESPACES = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
CLONE_NAMESPACES |= CLONE_NEWNET
F_SETOWN = 8
F_SETOWN_EX = 15
FIOSETOWN = 0x8901
SIOCSPGRP = 0x8902
FS_IOC_SETFLAGS = 0x40086602
FS_IOC32_SETFLAGS = 0x40046602
FS_IOC_FSSETXATTR = 0x401C5820

_COMMON = {  # the same number on x86_64 and aarch64 (the unified table from 424 on)
    "pidfd_send_signal": 424,
    "io_uring_setup": 425,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
    "fchmodat2": 452,
    "setxattrat": 463,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_setattr": 469,
}
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        **_COMMON,
        "ioctl": 16,
        "socket": 41,
        "socketpair": 53,
        "clone": 56,
        "fork": 57,
        "vfork": 58,
        "execve": 59,
        "kill": 62,
        "fcntl": 72,
        "chmod": 90,
        "fchmod": 91,
        "chown": 92,
        "fchown": 93,
        "lchown": 94,
        "ptrace": 101,
        "rt_sigqueueinfo": 129,
        "utime": 132,
        "pivot_root": 155,
        "chroot": 161,
        "mount": 165,
        "umount2": 166,
        "setxattr": 188,
        "lsetxattr": 189,
        "fsetxattr": 190,
        "removexattr": 197,
        "lremovexattr": 198,
        "fremovexattr": 199,
        "tkill": 200,
        "tgkill": 234,
        "utimes": 235,
        "fchownat": 260,
        "futimesat": 261,
        "fchmodat": 268,
        "unshare": 272,
        "utimensat": 280,
        "rt_tgsigqueueinfo": 297,
        "setns": 308,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "seccomp": 317,
        "execveat": 322,
    },
    "aarch64": {  # asm-generic/unistd.h: no chmod, chown, utime, fork … (only their *at forms)
        **_COMMON,
        "setxattr": 5,
        "lsetxattr": 6,
        "fsetxattr": 7,
        "removexattr": 14,
        "lremovexattr": 15,
        "fremovexattr": 16,
        "fcntl": 25,
        "ioctl": 29,
        "umount2": 39,
        "mount": 40,
        "pivot_root": 41,
        "chroot": 51,
        "fchmod": 52,
        "fchmodat": 53,
        "fchownat": 54,
        "fchown": 55,
        "utimensat": 88,
        "unshare": 97,
        "ptrace": 117,
        "kill": 129,
        "tkill": 130,
        "tgkill": 131,
        "rt_sigqueueinfo": 138,
        "socket": 198,
        "socketpair": 199,
        "clone": 220,
        "execve": 221,
        "rt_tgsigqueueinfo": 240,
        "setns": 268,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "seccomp": 277,
        "execveat": 281,
    },
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

PROCESS_ACCESS = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd")
MOUNTS_AND_NAMESPACES = (
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
)
METADATA = (
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "setxattrat",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "removexattrat",
    "file_setattr",
)
EXEC = ("execve", "execveat", "fork", "vfork")


@dataclass(frozen=True)
class Arch:
    name: str
    audit_arch: int
    numbers: Mapping[str, int]
    x32: bool = False

    def nr(self, name: str) -> int | None:
        """The syscall's number; None when this architecture has no such call."""
        return self.numbers.get(name)


ARCHES = {name: Arch(name, AUDIT_ARCH[name], SYSCALLS[name], x32=name == "x86_64") for name in SYSCALLS}


@dataclass(frozen=True)
class Policy:
    """What the filter allows, besides what it always denies (see the module docstring)."""

    network: bool = True
    exec_: bool = True
    signals_pid: int | None = None  # signals only to this process (None: not filtered here)
    metadata: bool = True


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class SeccompUnavailable(RuntimeError):
    """This machine cannot install the filter (architecture or kernel)."""


Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)


def _stmt(code: int, k: int) -> Instruction:
    return (code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> Instruction:
    return (code, jt, jf, k)


class _Program:
    """Rules, each starting with the syscall number in A and ending in a return on every path."""

    def __init__(self) -> None:
        self.rules: list[Instruction] = []

    def _rule(self, nr: int, body: list[Instruction]) -> None:
        # a syscall that is not `nr` skips the body; every path through the body returns
        self.rules.append(_jump(JEQ_K, nr, 0, len(body)))
        self.rules.extend(body)

    def deny(self, nr: int | None, answer: int) -> None:
        if nr is not None:
            self._rule(nr, [_stmt(RET_K, answer)])

    def arg_in(self, nr: int | None, arg: int, values: Iterable[int], *, allowed: bool, answer: int) -> None:
        """`nr` with argument `arg` (low 32 bits) in `values` is allowed (else denied), or the other way."""
        if nr is None:
            return
        listed = list(dict.fromkeys(v & 0xFFFFFFFF for v in values))
        match, other = (RET_ALLOW, answer) if allowed else (answer, RET_ALLOW)
        body = [_stmt(LD_W_ABS, offset_arg(arg))]
        for index, value in enumerate(listed):
            body.append(_jump(JEQ_K, value, len(listed) - index, 0))  # to `match`
        body.extend([_stmt(RET_K, other), _stmt(RET_K, match)])
        self._rule(nr, body)

    def clone(self, nr: int | None, *, threads_only: bool, answer: int) -> None:
        """`clone(flags, …)`: never a new namespace; with `threads_only`, threads (CLONE_THREAD) only."""
        if nr is None:
            return
        body = [_stmt(LD_W_ABS, offset_arg(0)), _jump(JSET_K, CLONE_NAMESPACES, 2 if threads_only else 1, 0)]
        if threads_only:
            body.append(_jump(JSET_K, CLONE_THREAD, 0, 1))
        body.extend([_stmt(RET_K, RET_ALLOW), _stmt(RET_K, answer)])
        self._rule(nr, body)

    def socketpair(self, nr: int | None, answer: int) -> None:
        """`socketpair(domain, type, …)`: connected unix stream pairs only."""
        if nr is None:
            return
        body = [
            _stmt(LD_W_ABS, offset_arg(0)),
            _jump(JEQ_K, AF_UNIX, 0, 4),  # to the denial
            _stmt(LD_W_ABS, offset_arg(1)),
            _stmt(ALU_AND_K, SOCK_TYPE_MASK),
            _jump(JEQ_K, SOCK_STREAM, 0, 1),
            _stmt(RET_K, RET_ALLOW),
            _stmt(RET_K, answer),
        ]
        self._rule(nr, body)


def build_filter(arch: Arch, policy: Policy) -> list[Instruction]:
    """The BPF program: (code, jt, jf, k) instructions enforcing `policy`."""
    deny = RET_ERRNO | errno.EPERM
    program = _Program()
    for name in (*PROCESS_ACCESS, *MOUNTS_AND_NAMESPACES, "io_uring_setup"):
        program.deny(arch.nr(name), deny)
    program.deny(arch.nr("clone3"), RET_ERRNO | errno.ENOSYS)
    program.clone(arch.nr("clone"), threads_only=not policy.exec_, answer=deny)
    if not policy.network:
        program.deny(arch.nr("socket"), deny)
        program.socketpair(arch.nr("socketpair"), deny)
    if not policy.exec_:
        for name in EXEC:
            program.deny(arch.nr(name), deny)
    ioctls: list[int] = []
    if policy.signals_pid is not None:
        pid = policy.signals_pid
        program.arg_in(arch.nr("kill"), 0, (pid, 0, -pid), allowed=True, answer=deny)
        for name in ("tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            program.arg_in(arch.nr(name), 0, (pid,), allowed=True, answer=deny)
        program.deny(arch.nr("tkill"), deny)
        program.deny(arch.nr("pidfd_send_signal"), deny)
        program.arg_in(arch.nr("fcntl"), 1, (F_SETOWN, F_SETOWN_EX), allowed=False, answer=deny)
        ioctls.extend((FIOSETOWN, SIOCSPGRP))
    if not policy.metadata:
        for name in METADATA:
            program.deny(arch.nr(name), deny)
        ioctls.extend((FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR))
    if ioctls:
        program.arg_in(arch.nr("ioctl"), 1, ioctls, allowed=False, answer=deny)
    head = [
        _stmt(LD_W_ABS, OFFSET_ARCH),
        _jump(JEQ_K, arch.audit_arch, 1, 0),
        _stmt(RET_K, RET_KILL_PROCESS),
        _stmt(LD_W_ABS, OFFSET_NR),
    ]
    if arch.x32:
        head.extend([_jump(JGE_K, X32_SYSCALL_BIT, 0, 1), _stmt(RET_K, RET_KILL_PROCESS)])
    return head + program.rules + [_stmt(RET_K, RET_ALLOW)]


def current_arch() -> Arch:
    arch = ARCHES.get(platform.machine())
    if arch is None:
        raise SeccompUnavailable(f"no seccomp filter for architecture {platform.machine()}")
    return arch


def install(policy: Policy) -> None:
    """Install the filter for the whole process (all threads). Raises `SeccompUnavailable`."""
    arch = current_arch()
    program = build_filter(arch, policy)
    encoded = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SeccompUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    result = libc.syscall(
        ctypes.c_long(arch.numbers["seccomp"]),
        ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        reason = os.strerror(ctypes.get_errno()) if result < 0 else f"thread {result} could not be synchronised"
        raise SeccompUnavailable(f"seccomp(SET_MODE_FILTER) failed: {reason}")
