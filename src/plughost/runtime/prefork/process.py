"""`ForkedProcess`: a worker forked by the template, supervised like `asyncio.subprocess.Process`.

The worker is this process's child (the template clones it with `CLONE_PARENT`), so its exit is seen
on a pidfd and it is reaped here with `waitpid`; until then its pid cannot be reused, and killing it
(or its process group) is as safe as for any child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

UNKNOWN_EXIT = 255  # another waiter reaped the child first: its status is lost


def watch_exit(pid: int, reap: Callable[[], int | None]) -> asyncio.Future[int]:
    """A future of the exit code of child `pid`, set as soon as it exits (a pidfd on the event loop).

    `reap` collects the exit code without blocking (None while the child runs).
    """
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # reaped already
        code = reap()
        exited.set_result(UNKNOWN_EXIT if code is None else code)
        return exited

    def check() -> None:
        code = reap()
        if code is None:
            return
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, check)
    return exited


def _waitpid(pid: int) -> Callable[[], int | None]:
    def reap() -> int | None:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return UNKNOWN_EXIT
        return os.waitstatus_to_exitcode(status) if done else None

    return reap


async def _reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", 0))
    return reader


class ForkedProcess:
    """A forked worker: `pid`, `returncode`, `stdout`/`stderr` readers, `wait()`, `kill()`."""

    def __init__(
        self, pid: int, exited: asyncio.Future[int], stdout: asyncio.StreamReader, stderr: asyncio.StreamReader
    ) -> None:
        self._pid = pid
        self._exited = exited
        self.stdout: asyncio.StreamReader | None = stdout
        self.stderr: asyncio.StreamReader | None = stderr

    @classmethod
    async def attach(cls, pid: int, stdout_fd: int, stderr_fd: int) -> ForkedProcess:
        """Supervise child `pid`, whose stdout and stderr are the read ends `stdout_fd`, `stderr_fd`."""
        exited = watch_exit(pid, _waitpid(pid))
        try:
            stdout = await _reader(stdout_fd)
        except BaseException:
            os.close(stderr_fd)
            raise
        return cls(pid, exited, stdout, await _reader(stderr_fd))

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: the signal that killed it)."""
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)

    def __repr__(self) -> str:
        return f"<ForkedProcess {self._pid} returncode={self.returncode}>"
