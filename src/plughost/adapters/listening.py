"""Listening sockets and uvicorn embedded in the host (shared by the OneBot and management servers)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import uvicorn


def bind_socket(address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket (port 0 picks a free port)."""
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(512)
    sock.setblocking(False)
    return sock


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside plughost: the host, not uvicorn, handles SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
