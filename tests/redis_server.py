"""A real `redis-server` for tests: started on a free loopback port in a temporary directory,
with persistence off (`--save '' --appendonly no`); `stop` and `start` again keep the port."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from pathlib import Path

READY = b"Ready to accept connections"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process (`url`); `stop()` kills it, `start()` brings it back on the same port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it accepts connections (a new port if the old is taken)."""
        for _ in range(3):
            settings = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no",
                        "dir": str(self.directory), "logfile": ""}  # fmt: skip
            self.process = subprocess.Popen(
                [self.binary, *(part for name, value in settings.items() for part in (f"--{name}", value))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            log = self._read_until_ready(timeout)
            if READY in log:
                return
            self.stop()
            self.port = free_port()  # someone took the port between choosing and binding it
        raise RuntimeError(f"redis-server did not start: {log.decode(errors='replace')[-2000:]}")

    def _read_until_ready(self, timeout: float) -> bytes:
        """The server's log up to "Ready to accept connections" (or its end, when it exits or the
        time is up); then the pipe is closed (redis-server ignores SIGPIPE)."""
        assert self.process is not None and self.process.stdout is not None
        pipe, log = self.process.stdout, b""
        deadline = time.monotonic() + timeout
        try:
            while READY not in log and (remaining := deadline - time.monotonic()) > 0:
                if not select.select([pipe], [], [], remaining)[0]:
                    break
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                log += chunk
        finally:
            pipe.close()
        return log

    def stop(self) -> None:
        """Kill the server and wait until it is gone (its port is free again)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
