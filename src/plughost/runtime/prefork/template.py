"""The worker template: a process that imports the worker once and forks one worker per plugin.

`plughost.runtime.prefork.WorkerTemplate` starts it as `python -m plughost.runtime.prefork.template`
with one end of a `SOCK_SEQPACKET` socket pair in `TEMPLATE_FD_ENV`. It imports what every worker
imports, freezes those objects out of the garbage collector's reach (so forked children keep sharing
their pages), answers `READY` and then serves requests one at a time, single-threaded:

- request: one byte with the descriptors `[spec, stdout, stderr]` (+ the secret's pipe), `spec`
  being a memfd with the launch's JSON (`argv`, `cwd`, `env`, limits, the host's pid);
- it clones a child with `CLONE_PARENT`, so that the child's parent is the host (which supervises,
  signals and reaps it like any worker it started) and answers `P<pid>` (or `E<reason>`).

The template never reads a spec: the child does, after the fork, so no plugin's environment or
configuration is ever in the template's memory, which every later child inherits. The child sets
itself up as `launch` + `spawn_plan` set up a worker started as a new program — its own process
group, `PR_SET_PDEATHSIG = SIGKILL` (on the host), the resource limits, stdin from /dev/null,
stdout/stderr on the host's pipes, the secret on descriptor 3, nothing else open, the environment,
the cwd, `sys.argv` and `sys.path[0]` — and runs `plughost.runtime.worker.main`, which puts the
sandbox in place exactly as in a worker started the other way.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

from plughost.runtime.prefork.wire import FORK, MAX_FDS, READY, SYS_CLONE, TEMPLATE_FD_ENV

CHILD_SECRET_FD = 3
CLONE_PARENT = 0x00008000
CLONE_CHILD_SETTID = 0x01000000
DESCRIPTOR_SCAN = 1024  # bytes of `struct pthread` searched for the tid (x86_64 glibc 2.36: at 720)
PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8  # glibc's mallopt(): what MALLOC_ARENA_MAX does at start-up


def preload() -> None:
    """Import what every worker imports (the worker, its runtimes, gRPC, the SDK)."""
    import grpc.aio  # noqa: F401

    import plughost.runtime.native
    import plughost.runtime.placement
    import plughost.runtime.worker
    import plughost.sdk  # noqa: F401


def _libc() -> ctypes.PyDLL:
    return ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across clone()


def _thread_tid() -> int:
    """This thread's tid as glibc knows it (from its thread descriptor: `pthread_getcpuclockid`)."""
    clock = time.pthread_getcpuclockid(threading.get_ident())
    return ~(clock >> 3)  # glibc: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)


def find_tid_field() -> int:
    """The address of this thread's tid in glibc's thread descriptor (`struct pthread`).

    A raw clone() does not update it as fork() does, and glibc uses it (thread CPU clocks,
    `pthread_kill` …): the child has the kernel write its tid there (`CLONE_CHILD_SETTID`). Found by
    changing each candidate for a moment and asking glibc: single-threaded, nothing else reads it.
    """
    descriptor = ctypes.CDLL(None).pthread_self
    descriptor.restype = ctypes.c_void_p
    base = descriptor()
    tid = threading.get_native_id()
    if base is None or _thread_tid() != tid:
        raise OSError("glibc's thread descriptor does not hold this thread's tid")
    for offset in range(0, DESCRIPTOR_SCAN, 4):
        field = ctypes.c_int.from_address(base + offset)
        if field.value != tid:
            continue
        field.value = tid ^ 0x5A5A
        try:
            seen = _thread_tid()
        finally:
            field.value = tid
        if seen == tid ^ 0x5A5A:
            return int(base + offset)
    raise OSError("cannot find the tid in glibc's thread descriptor")


def _clone_to_host(tid_field: int) -> int:
    """fork(), but the child's parent is the host (this process's parent); 0 in the child."""
    syscall = _libc().syscall
    syscall.restype = ctypes.c_long
    api = ctypes.pythonapi
    flags = ctypes.c_ulong(CLONE_PARENT | CLONE_CHILD_SETTID | signal.SIGCHLD)
    child_tid = ctypes.c_void_p(tid_field)
    # x86_64: clone(flags, stack, parent_tid, child_tid, tls); aarch64: (flags, stack, parent_tid, tls, child_tid)
    tail = (child_tid, None) if platform.machine() == "x86_64" else (None, child_tid)
    api.PyOS_BeforeFork()
    pid = syscall(ctypes.c_long(SYS_CLONE[platform.machine()]), flags, None, None, *tail)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        if _thread_tid() != threading.get_native_id():
            os.write(2, b"plughost worker template: the forked worker's tid is wrong\n")
            os._exit(1)
        return 0
    error = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(error, f"clone: {os.strerror(error)}")
    return int(pid)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def serve(link: socket.socket, tid_field: int) -> int:
    """Answer fork requests until the host closes its end (`tid_field`: `find_tid_field()`)."""
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(link, 16, MAX_FDS)
        except OSError:
            return 0
        if not message:
            return 0
        try:
            if message != FORK or len(fds) < 3:
                raise OSError(f"malformed request ({len(message)} bytes, {len(fds)} descriptors)")
            if _threads() != 1:  # forking a process with threads is unsafe
                raise OSError(f"the template runs {_threads()} threads; it forks only with one")
            pid = _clone_to_host(tid_field)
            if pid == 0:
                become_worker(link, fds)
            reply = b"P%d" % pid
        except OSError as exc:
            reply = b"E" + str(exc).encode()
        finally:
            for fd in fds:
                os.close(fd)
        link.send(reply)


def become_worker(link: socket.socket, fds: list[int]) -> NoReturn:
    """In the child: set up as a worker started as a new program would be, run it, exit."""
    code = 1
    try:
        link.close()
        high = [_move_high(fd) for fd in fds]
        with os.fdopen(high[0], "rb") as spec_file:
            spec = json.loads(spec_file.read())
        code = _run_worker(spec, high[1], high[2], high[3] if len(high) > 3 else None)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _move_high(fd: int) -> int:
    """`fd` moved above the descriptors the worker's will be (0–3)."""
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def _run_worker(spec: dict[str, Any], stdout: int, stderr: int, secret: int | None) -> int:
    libc = _libc()
    os.setpgid(0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != spec["host_pid"]:  # the host died before the death signal was set
        return 1
    if spec.get("memory_mb") is not None:
        limit = int(spec["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if spec.get("cpu_seconds") is not None:
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (int(spec["cpu_seconds"]), hard))
    devnull = os.open(os.devnull, os.O_RDWR)
    for source, target in ((devnull, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
    env: dict[str, str] = dict(spec["env"])
    keep = 3
    if secret is not None:
        from plughost.runtime.goplugin.launch import SECRET_FD_ENV

        os.dup2(secret, CHILD_SECRET_FD)
        env[SECRET_FD_ENV] = str(CHILD_SECRET_FD)
        keep = CHILD_SECRET_FD + 1
    os.closerange(keep, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if "MALLOC_ARENA_MAX" in env:
        libc.mallopt(M_ARENA_MAX, int(env["MALLOC_ARENA_MAX"]))
    os.environ.clear()
    os.environ.update(env)
    os.chdir(spec["cwd"])
    sys.path[0] = spec["cwd"]  # `python -m` puts the cwd first
    args: list[str] = list(spec["args"])
    from plughost.runtime import worker

    sys.argv = [worker.__file__ or "plughost worker", *args]
    gc.enable()
    return worker.main(args)


def main() -> int:
    link = socket.socket(fileno=int(os.environ.pop(TEMPLATE_FD_ENV)))
    gc.disable()
    preload()
    gc.freeze()  # the imported objects stay out of every collection: their pages stay shared
    tid_field = find_tid_field()
    link.sendall(READY)
    return serve(link, tid_field)


if __name__ == "__main__":
    sys.exit(main())
