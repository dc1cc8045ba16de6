"""A real host with its management server on a free loopback port, and an httpx client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from plughost.host import Host
from plughost.manage.server import ManageServer
from plughost.manage.settings import ManageSettings
from tests.conftest import PluginWriter

SETTINGS_PLUGIN = """
import logging

from plughost import Plugin, PluginContext

plugin = Plugin()
seen = []

@plugin.on_reconfigure
def reconfigure(ctx: PluginContext, config: dict) -> None:
    seen.append(config)

@plugin.method()
def echo(text: str) -> str:
    return text

@plugin.method()
def applied() -> list:
    return seen

@plugin.method()
def shout(logger: logging.Logger, text: str) -> None:
    logger.warning("shouting %s", text)
    logger.debug("whispering %s", text)

@plugin.method()
def boom() -> None:
    raise RuntimeError("kaboom")
"""

PLAIN_PLUGIN = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def hi() -> str:
    return "hi"
"""

SETTINGS_SCHEMA = """
[config_schema]
type = "object"
required = ["greeting"]
additionalProperties = false
[config_schema.properties.greeting]
type = "string"
minLength = 1
[config_schema.properties.repeat]
type = "integer"
minimum = 1
maximum = 10
"""


@dataclass
class Running:
    host: Host
    server: ManageServer
    client: httpx.AsyncClient
    key: str

    @property
    def workspace(self) -> Path:
        return self.host.workspace


@pytest.fixture
def manage_workspace(workspace: Path, write_plugin: PluginWriter) -> Path:
    write_plugin("settings", SETTINGS_PLUGIN, manifest_extra=SETTINGS_SCHEMA)
    write_plugin("plain", PLAIN_PLUGIN)
    return workspace


@pytest.fixture
async def running(manage_workspace: Path) -> AsyncIterator[Running]:
    host = Host(manage_workspace)
    server = host.add_adapter(ManageServer(host, ManageSettings(bind="127.0.0.1:0", failed_auth_limit=5)))
    async with host:
        assert server.key is not None
        headers = {"Authorization": f"Bearer {server.key.value}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            yield Running(host, server, client, server.key.value)
