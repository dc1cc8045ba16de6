"""A real host with its management server on a free loopback port, and an httpx client for it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from plughost.host import Host
from plughost.manage.server import ManageServer
from plughost.manage.settings import ManageSettings


@dataclass
class Running:
    host: Host
    server: ManageServer
    client: httpx.AsyncClient
    key: str

    @property
    def workspace(self) -> Path:
        return self.host.workspace


@contextlib.asynccontextmanager
async def serve(workspace: Path, **settings: Any) -> AsyncIterator[Running]:
    """A host on `workspace` with its management server on a free loopback port, and a client with the key."""
    host = Host(workspace)
    options = {"bind": "127.0.0.1:0", "failed_auth_limit": 5} | settings
    server = host.add_adapter(ManageServer(host, ManageSettings.model_validate(options)))
    async with host:
        assert server.key is not None
        headers = {"Authorization": f"Bearer {server.key.value}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            yield Running(host, server, client, server.key.value)


STARTUP_TIMEOUT_S = 60
T = TypeVar("T")


class LiveServer:
    """A host with its management server on its own thread and event loop (schemathesis calls are blocking)."""

    def __init__(self, workspace: Path, **settings: Any) -> None:
        self.workspace = workspace
        self.settings = settings
        self.host: Host | None = None
        self.url = ""
        self.key = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="manage-live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S):
            raise TimeoutError("the management server did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STARTUP_TIMEOUT_S)

    def call(self, work: Callable[[Host], Awaitable[T]], timeout: float = 30) -> T:
        """Run `work(host)` on the host's loop from another thread and return its result."""
        assert self.host is not None
        return asyncio.run_coroutine_threadsafe(_call(work, self.host), self._loop).result(timeout)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self.workspace, **self.settings) as running:
            self.url, self.key, self.host = running.server.url, running.key, running.host
            self._ready.set()
            await self._stop.wait()


async def _call(work: Callable[[Host], Awaitable[T]], host: Host) -> T:
    return await work(host)
