"""Fixtures: a workspace with two Python plugins, served by a real host with its management server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import PluginWriter
from tests.manage.support import Running, serve

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


@pytest.fixture
def manage_workspace(workspace: Path, write_plugin: PluginWriter) -> Path:
    write_plugin("settings", SETTINGS_PLUGIN, manifest_extra=SETTINGS_SCHEMA)
    write_plugin("plain", PLAIN_PLUGIN)
    return workspace


@pytest.fixture
async def running(manage_workspace: Path) -> AsyncIterator[Running]:
    async with serve(manage_workspace) as served:
        yield served
