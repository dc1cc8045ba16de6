"""`PluginContext`: what a Python plugin knows about itself while it is loaded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plughost.sdk.shared import BusApi, StateApi, unavailable
from plughost.sdk.tasks import TaskOwner


@dataclass
class PluginContext:
    """Handed to lifecycle hooks (and to any handler that asks for it): configuration,
    directories, logger, the plugin's background tasks (`tasks`, iterable), the message bus
    (`bus`) and its shared state (`state`)."""

    plugin_id: str
    config: dict[str, Any]
    plugin_dir: Path
    data_dir: Path
    logger: logging.Logger
    tasks: TaskOwner = field(default_factory=lambda: TaskOwner("plugin"))
    bus: BusApi = field(default_factory=unavailable)
    """The message bus (`publish`, `request`, `unsubscribe`), checked against the manifest's permissions."""
    state: StateApi = field(default_factory=unavailable)
    """The plugin's own key/value namespace; `state.namespace("shared.ns")` for a declared shared one."""

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Start a background task owned by this plugin: unloading the plugin cancels and awaits it.

        Only tasks started here are the plugin's; a failure is logged to the plugin's logger.
        """
        return self.tasks.spawn(coro, name=name or f"{self.plugin_id}:task")
