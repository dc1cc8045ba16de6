"""Helpers: load real Python plugins from source text and wire them into a `CommandEngine`."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from plughost.bot.commands import CommandEngine, CommandSource, PermissionService, PluginTarget
from plughost.bot.config import CommandsConfig
from plughost.guard import Guard
from plughost.runtime.base import LoadRequest
from plughost.runtime.python import PythonPluginHandle, PythonRuntime
from plughost.sdk.call import Call, Outcome
from plughost.sdk.manifest import load_manifest
from plughost.sdk.message import Message

HEADER = """\
import datetime as dt
import enum
from typing import Optional
from plughost.sdk import (
    CommandArgumentError, CommandContext, GroupId, Message, PermissionId, PermitteeId, Plugin, Segment, UserId,
)
"""


class Lab:
    """Loads plugins into one guard and (re)builds an engine over them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtime = PythonRuntime()
        self.guard = Guard()
        self.handles: dict[str, tuple[PythonPluginHandle, int]] = {}

    async def load(self, plugin_id: str, source: str, *, priority: int = 0) -> PythonPluginHandle:
        directory = self.root / plugin_id
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "plugin.toml").write_text(
            f'id = "{plugin_id}"\nname = "{plugin_id}"\nversion = "1.0.0"\nruntime = "python"\n'
        )
        (directory / "plugin.py").write_text(HEADER + "plugin = Plugin()\n" + textwrap.dedent(source))
        manifest = load_manifest(directory / "plugin.toml")
        request = LoadRequest(plugin_id, directory, manifest, self.root / "data" / plugin_id, priority=priority)
        handle = await self.runtime.load(request)
        self.handles[plugin_id] = (handle, priority)
        return handle

    def sources(self) -> list[CommandSource]:
        return [
            CommandSource(pid, prio, h.descriptor, PluginTarget(pid, functools.partial(self.guard.call, pid, h)))
            for pid, (h, prio) in self.handles.items()
        ]

    def engine(
        self, config: CommandsConfig | None = None, permissions: PermissionService | None = None
    ) -> CommandEngine:
        engine = CommandEngine(config=config, permissions=permissions)
        engine.rebuild(self.sources())
        return engine

    async def close(self) -> None:
        for handle, _ in self.handles.values():
            await handle.stop()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        await lab.close()


EngineFactory = Callable[[str], Awaitable[CommandEngine]]


class FunctionTarget:
    """Host-side command handlers for tests: `handler(payload) -> reply text`."""

    def __init__(self, plugin_id: str, handlers: dict[str, Callable[[Any], str]]) -> None:
        self.plugin_id = plugin_id
        self.handlers = handlers
        self.calls: list[Call] = []

    async def call(self, call: Call) -> Outcome:
        self.calls.append(call)
        return Outcome([Message(self.handlers[call.handler](call.payload)).to_json()])
