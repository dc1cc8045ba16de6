"""The sandbox launcher of stdio MCP servers: confine this process, then become the server.

`McpRuntime` starts a server whose manifest switches permissions off (with isolation `process`
or `sandbox`) as

    python -I -c "<import this module>; main()" PLUGIN_DIR DATA_DIR PERMISSIONS_JSON -- PROGRAM ARG…

This process applies the worker's sandbox (`plughost.runtime.sandbox`: the private mount
namespace while it has one thread, Landlock, seccomp) and then `execve`s the server, which
inherits every restriction — they cannot be undone. Whatever cannot be enforced here ends the
launcher with the reason on stderr (exit code 78) before the server runs: the host reports it as
the load error.

`exec = false` cannot be applied as in a worker, since starting the server *is* an exec. Here it
means: no new processes at all — `fork`, `vfork`, `clone` without `CLONE_THREAD` and `execveat`
are refused (`EPERM`) — and `execve` is allowed for one call only: the one whose arguments are
this launcher's own buffers (the filter compares the pointers). A server that could still reach
an `execve` with those exact addresses would only replace itself, inside the same sandbox.
Because that one exec must start the real program, a script's `#!` line is followed here
(`#!/usr/bin/env node` included): the launcher starts the interpreter with the script.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from plughost.runtime.sandbox import SandboxUnavailable, confine, fallbacks_forced, prepare, restricts, seccomp
from plughost.sdk.manifest import Permissions

EXIT_UNENFORCEABLE = 78  # EX_CONFIG: a permission cannot be enforced on this machine
EXIT_USAGE = 64  # EX_USAGE
EXIT_NOT_STARTED = 127
MAX_INTERPRETERS = 4  # `#!` lines followed (an interpreter may be a script itself)
SHEBANG_BYTES = 256

Instruction = tuple[int, int, int, int]


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 5 or args[3] != "--":
        _die(EXIT_USAGE, "usage: confine PLUGIN_DIR DATA_DIR PERMISSIONS_JSON -- PROGRAM [ARG…]")
    plugin_dir, data_dir, permissions = Path(args[0]), Path(args[1]), Permissions.model_validate_json(args[2])
    command = args[4:]
    if not permissions.exec:
        command = interpreted(command, os.environ.get("PATH", os.defpath))
    fallbacks = fallbacks_forced()
    try:
        prepared = prepare(permissions, fallbacks=fallbacks)
        # the server is started by an exec: the worker's exec rule would forbid that one too
        startable = permissions.model_copy(update={"exec": True})
        applied = confine(startable, plugin_dir=plugin_dir, data_dir=data_dir, prepared=prepared, fallbacks=fallbacks)
        if not restricts(startable):  # only `exec` is off: what every sandbox denies, and signals
            seccomp.install(seccomp.Policy(signals_pid=os.getpid()))
            applied.append("processes: no ptrace or memory access to other processes, no mounts or namespaces")
            applied.append("signals: only to the server itself (seccomp)")
    except SandboxUnavailable as exc:
        _die(EXIT_UNENFORCEABLE, f"sandbox: {exc}")
    program = os.fsencode(command[0])
    path = ctypes.create_string_buffer(program)
    arguments = _strings([os.fsencode(a) for a in command])
    environment = _strings([os.fsencode(f"{k}={v}") for k, v in os.environ.items()])
    if not permissions.exec:
        try:
            install_one_exec(ctypes.addressof(path), ctypes.addressof(arguments), ctypes.addressof(environment))
        except seccomp.SeccompUnavailable as exc:
            _die(EXIT_UNENFORCEABLE, f"sandbox: permissions.exec = false cannot be enforced: {exc}")
        applied.append("exec: no new processes or programs (seccomp; the server itself was the last)")
    for line in applied:
        print(f"sandbox: {line}", file=sys.stderr, flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.execve(path, arguments, environment)
    _die(EXIT_NOT_STARTED, f"cannot start {command[0]}: {os.strerror(ctypes.get_errno())}")


def interpreted(command: list[str], path: str) -> list[str]:
    """`command` with every `#!` line followed: `[interpreter, (its argument,) script, args…]`;
    `#!/usr/bin/env name` looks `name` up on `path` (what env would exec)."""
    for _ in range(MAX_INTERPRETERS):
        try:
            with open(command[0], "rb") as handle:
                head = handle.read(SHEBANG_BYTES)
        except OSError:
            return command  # the exec reports it
        if not head.startswith(b"#!"):
            return command
        line = head[2:].split(b"\n", 1)[0].decode(errors="replace").strip()
        interpreter, _, argument = line.partition(" ")
        argument = argument.strip()
        if os.path.basename(interpreter) == "env" and argument and not argument.startswith("-"):
            name, _, rest = argument.partition(" ")
            found = shutil.which(name, path=path)
            if found is None:
                return command
            interpreter, argument = found, rest.strip()
        command = [interpreter, *([argument] if argument else []), *command]
    return command


def _strings(values: list[bytes]) -> ctypes.Array[ctypes.c_char_p]:
    """A NULL-terminated `char *[]` (what execve takes)."""
    array = (ctypes.c_char_p * (len(values) + 1))()
    for index, value in enumerate(values):
        array[index] = value
    array[len(values)] = None
    return array


def _die(code: int, message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code)


def exec_filter(arch: seccomp.Arch, path: int, argv: int, envp: int) -> list[Instruction]:
    """The BPF program of `exec = false` for a server (see the module docstring)."""
    deny = seccomp.RET_ERRNO | errno.EPERM
    ld, jeq, jset, ret = seccomp.LD_W_ABS, seccomp.JEQ_K, seccomp.JSET_K, seccomp.RET_K
    rules: list[Instruction] = []

    def rule(name: str, body: list[Instruction]) -> None:
        nr = arch.nr(name)
        if nr is not None:  # a syscall that is not `nr` skips the body; every path through it returns
            rules.append((jeq, 0, len(body), nr))
            rules.extend(body)

    for name in ("fork", "vfork", "execveat"):
        rule(name, [(ret, 0, 0, deny)])
    rule("clone3", [(ret, 0, 0, seccomp.RET_ERRNO | errno.ENOSYS)])  # libc falls back to clone
    # clone: threads only; a new process is refused
    clone_flags = (ld, 0, 0, seccomp.offset_arg(0))
    rule("clone", [clone_flags, (jset, 0, 1, seccomp.CLONE_THREAD), (ret, 0, 0, seccomp.RET_ALLOW), (ret, 0, 0, deny)])
    # execve: only with the launcher's own three pointers (each compared in full, low and high half)
    checks: list[Instruction] = []
    for index, value in enumerate((path, argv, envp)):
        low, high = value & 0xFFFFFFFF, value >> 32
        checks.append((ld, 0, 0, seccomp.offset_arg(index)))
        checks.append((jeq, 0, 0, low))  # jf patched below to the denial
        checks.append((ld, 0, 0, seccomp.offset_arg(index) + 4))
        checks.append((jeq, 0, 0, high))
    body = [*checks, (ret, 0, 0, seccomp.RET_ALLOW), (ret, 0, 0, deny)]
    for position, (code, jt, _, k) in enumerate(body):
        if code == jeq:  # a mismatch jumps to the final denial
            body[position] = (code, jt, len(body) - 2 - position, k)
    rule("execve", body)
    head: list[Instruction] = [
        (ld, 0, 0, seccomp.OFFSET_ARCH),
        (jeq, 1, 0, arch.audit_arch),
        (ret, 0, 0, seccomp.RET_KILL_PROCESS),
        (ld, 0, 0, seccomp.OFFSET_NR),
    ]
    if arch.x32:
        head.extend([(seccomp.JGE_K, 0, 1, seccomp.X32_SYSCALL_BIT), (ret, 0, 0, seccomp.RET_KILL_PROCESS)])
    return head + rules + [(ret, 0, 0, seccomp.RET_ALLOW)]


def install_one_exec(path: int, argv: int, envp: int) -> None:
    """Install `exec_filter` for this process (all threads); `SeccompUnavailable` when it cannot be."""
    arch = seccomp.current_arch()
    program = exec_filter(arch, path, argv, envp)
    encoded = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(seccomp.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise seccomp.SeccompUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    result = libc.syscall(
        ctypes.c_long(arch.numbers["seccomp"]),
        ctypes.c_ulong(seccomp.SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(seccomp.SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result != 0:
        raise seccomp.SeccompUnavailable(f"seccomp(SET_MODE_FILTER) failed: {os.strerror(ctypes.get_errno())}")


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


if __name__ == "__main__":
    main()
