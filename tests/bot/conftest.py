"""Fixtures: real Python plugins loaded by the in-process runtime, behind a real guard."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from plughost.runtime.base import LoadRequest
from plughost.runtime.python import PythonRuntime
from plughost.sdk.manifest import PluginManifest

from .directory import GuardedPlugins

HEADER = """\
from plughost.sdk import (
    Approve, Block, BotApi, Event, MessageEvent, MetaEvent, NoticeEvent, Plugin, Reject, Reply, ReplyBuilder,
    RequestEvent,
)
plugin = Plugin()
"""

LoadPlugin = Callable[..., Awaitable[Any]]


@pytest.fixture
async def plugins(tmp_path: Path) -> AsyncIterator[tuple[GuardedPlugins, LoadPlugin]]:
    """A directory of enabled plugins and a loader: `await load("id", source, priority=…, channels=[…])`."""
    directory = GuardedPlugins()
    runtime = PythonRuntime()
    handles: list[Any] = []

    async def load(plugin_id: str, source: str, *, priority: int = 0, channels: list[str] | None = None) -> Any:
        plugin_dir = tmp_path / plugin_id
        plugin_dir.mkdir()
        (plugin_dir / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n')
        (plugin_dir / "__init__.py").write_text(HEADER + textwrap.dedent(source))
        manifest = PluginManifest.model_validate(
            {"id": plugin_id, "version": "1.0.0", "priority": priority, "permissions": {"channels": channels or []}}
        )
        handle = await runtime.load(
            LoadRequest(plugin_id, plugin_dir, manifest, tmp_path / "data" / plugin_id, priority=priority)
        )
        handles.append(handle)
        directory.add(plugin_id, handle, manifest=manifest, priority=priority)
        return handle

    yield directory, load
    for handle in handles:
        await handle.stop()
