"""A real host with its management server on a free loopback port, and an httpx client for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
