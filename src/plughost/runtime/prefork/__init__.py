"""Pre-forked workers: a template process that has imported the worker forks one per plugin.

A Python worker started as a new program spends most of its start-up and much of its memory on
importing the SDK, pydantic and gRPC. `WorkerTemplate` (one per `WorkerRuntime`) starts a template
process on the first worker load (`plughost.runtime.prefork.template`), which imports all that once,
and then forks each worker from it; the forked workers share the template's pages. The worker is
still the host's child (the template clones it with `CLONE_PARENT`), so the host supervises, kills
and reaps it as any other (`ForkedProcess`), and it sets itself up exactly like a worker started as a
new program (process group, death signal, limits, descriptors, environment, cwd, then the sandbox).

A launch the template cannot serve — another interpreter, interpreter-level variables that differ
from the template's (`PYTHON*`, `LD_*`, `LC_*`, …), a platform without `CLONE_PARENT` or pidfds — and
any failure of the template start the worker as a new program. A dead template is replaced on the
next load; `aclose()` stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import weakref
from collections.abc import Mapping

from plughost.runtime.goplugin.launch import SECRET_FD_ENV, ChildProcess, LaunchSpec, exec_process, spawn_plan
from plughost.runtime.prefork.process import ForkedProcess, watch_exit
from plughost.runtime.prefork.wire import FORK, READY, TEMPLATE_FD_ENV, clone_supported

log = logging.getLogger("plughost.runtime.prefork")
WORKER_MODULE = "plughost.runtime.worker"
TEMPLATE_MODULE = "plughost.runtime.prefork.template"
REPLY_TIMEOUT_S = 5.0  # a fork request's answer (a clone: milliseconds)
# Variables the interpreter reads while it starts (or that the template's process keeps), which a
# forked worker cannot change: a launch whose values differ from the template's starts as a program.
STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_", "GLIBC_")
STARTUP_NAMES = ("LANG", "LANGUAGE", "PATH", "HOME", "TZ")
APPLIED_IN_CHILD = ("MALLOC_ARENA_MAX",)  # set in the forked worker (mallopt)


class TemplateUnavailable(RuntimeError):
    """The template could not start or answer; the worker starts as a new program instead."""


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a worker's environment that the template's interpreter must have started with."""
    return {
        name: value
        for name, value in env.items()
        if (name.startswith(STARTUP_PREFIXES) or name in STARTUP_NAMES) and name not in APPLIED_IN_CHILD
    }


class WorkerTemplate:
    """The worker template of one `WorkerRuntime`: `spawn` is the `Spawn` its workers start with."""

    def __init__(self, start_timeout_s: float = 30.0) -> None:
        self.start_timeout_s = start_timeout_s
        self.starts = 0  # templates started so far
        self.forks = 0  # workers forked so far
        self._process: subprocess.Popen[bytes] | None = None
        self._link: socket.socket | None = None
        self._env: dict[str, str] = {}
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finalizer: weakref.finalize[..., WorkerTemplate] | None = None

    @property
    def pid(self) -> int | None:
        """The template process's pid while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def unsuitable(self, spec: LaunchSpec, env: Mapping[str, str]) -> str | None:
        """Why the template cannot start this launch (None: it can)."""
        if not clone_supported():
            return "this platform cannot clone a worker for the host (Linux x86_64/aarch64 with pidfds)"
        if list(spec.argv[:3]) != [sys.executable, "-m", WORKER_MODULE]:
            return "the worker runs another program or interpreter"
        wanted = startup_env(env)
        if self.pid is not None and wanted != self._env:
            return "the worker's interpreter variables differ from the template's"
        return None

    async def spawn(self, spec: LaunchSpec, env: dict[str, str], secret_fd: int | None) -> ChildProcess:
        """Fork the worker from the template, or start it as a new program when it cannot be."""
        reason = self.unsuitable(spec, env)
        if reason is None:
            try:
                return await self._fork(spec, env, secret_fd)
            except TemplateUnavailable as exc:
                reason = str(exc)
                log.warning("worker template: %s; starting the worker as a new program", reason)
        log.debug("worker template not used (%s)", reason)
        return await exec_process(spec, env, secret_fd)

    async def _fork(self, spec: LaunchSpec, env: dict[str, str], secret_fd: int | None) -> ForkedProcess:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._lock is None:
            self._loop, self._lock = loop, asyncio.Lock()
        child_env = {name: value for name, value in env.items() if name != SECRET_FD_ENV}
        payload = {
            "args": list(spec.argv[3:]),
            "cwd": str(spec.cwd),
            "env": child_env,
            "host_pid": os.getpid(),
            "memory_mb": spec.memory_mb,
            "cpu_seconds": spec.cpu_seconds,
        }
        spec_fd = os.memfd_create("plughost-worker-spec", os.MFD_CLOEXEC)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            with os.fdopen(os.dup(spec_fd), "wb") as spec_file:
                spec_file.write(json.dumps(payload).encode())
            os.lseek(spec_fd, 0, os.SEEK_SET)
            fds = [spec_fd, out_w, err_w, *([] if secret_fd is None else [secret_fd])]
            async with self._lock:
                link = await self._running(startup_env(env))
                pid = self._request(link, fds)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            for fd in (spec_fd, out_w, err_w):
                os.close(fd)
        self.forks += 1
        return await ForkedProcess.attach(pid, out_r, err_r)

    def _request(self, link: socket.socket, fds: list[int]) -> int:
        """One fork, answered within milliseconds: the event loop waits for it rather than leave a
        child whose pid nobody learns (a cancelled request)."""
        try:
            link.settimeout(REPLY_TIMEOUT_S)
            socket.send_fds(link, [FORK], fds)
            reply = link.recv(256)
        except OSError as exc:  # a timeout included
            self._discard()
            raise TemplateUnavailable(f"the template did not answer ({exc})") from None
        if reply.startswith(b"P") and reply[1:].isdigit():
            return int(reply[1:])
        if not reply:
            code = self._discard()
            raise TemplateUnavailable(f"the template exited (exit code {code})")
        raise TemplateUnavailable(f"the template could not fork: {reply[1:].decode(errors='replace')}")

    async def _running(self, env: dict[str, str]) -> socket.socket:
        """The template's link, starting the template when none runs (the first load, or it died)."""
        if self._link is not None and self.pid is not None:
            return self._link
        self._discard()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = _start_template(env, theirs.fileno())
        except OSError as exc:
            ours.close()
            raise TemplateUnavailable(f"cannot start the template: {exc}") from None
        finally:
            theirs.close()
        self._process, self._link, self._env = process, ours, env
        self._finalizer = weakref.finalize(self, _abandon, ours, process)
        self.starts += 1
        ours.setblocking(False)
        try:
            ready = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(ours, 16), self.start_timeout_s)
        except (OSError, TimeoutError) as exc:
            self._discard()
            raise TemplateUnavailable(f"the template did not start: {exc or 'timeout'}") from None
        if ready != READY:
            code = self._discard()
            raise TemplateUnavailable(f"the template exited while starting (exit code {code})")
        log.debug("worker template started (pid %d)", process.pid)
        return ours

    def _discard(self) -> int | None:
        """Let go of the current template (killed if it still runs); its exit code when known."""
        link, process, self._link, self._process = self._link, self._process, None, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is None:
            return None
        _abandon(link, process)
        return process.poll()

    async def aclose(self) -> None:
        """Stop the template (workers forked from it run on: they are the host's children)."""
        link, process = self._link, self._process
        if process is None or link is None:
            self._discard()
            return
        link.close()  # the template sees the end of its link and exits
        exited = watch_exit(process.pid, process.poll)
        try:
            await asyncio.wait_for(asyncio.shield(exited), 2.0)
        except TimeoutError:
            process.kill()
            await exited
        finally:
            self._discard()


def _start_template(env: Mapping[str, str], link_fd: int) -> subprocess.Popen[bytes]:
    """Start the template process (Popen returns at once; nothing here waits for the child) with its
    end of the link, its own process group and the host's death signal (`spawn_plan`)."""
    command, preexec = spawn_plan([sys.executable, "-m", TEMPLATE_MODULE], None, None)
    return subprocess.Popen(
        command,
        cwd="/",
        env={**env, TEMPLATE_FD_ENV: str(link_fd)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        pass_fds=(link_fd,),
        process_group=0 if preexec is None else None,
        preexec_fn=preexec,  # noqa: PLW1509 (only without util-linux's setpriv, as `launch` does)
    )


def _abandon(link: socket.socket | None, process: subprocess.Popen[bytes]) -> None:
    """Close the template's link (it exits at its end) and kill it: nothing waits for it any more."""
    if link is not None:
        link.close()
    if process.poll() is None:
        process.kill()


__all__ = ["ForkedProcess", "TemplateUnavailable", "WorkerTemplate", "startup_env"]
