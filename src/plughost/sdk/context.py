"""`PluginContext`: what a Python plugin knows about itself while it is loaded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PluginContext:
    """Handed to lifecycle hooks (and to any handler that asks for it): configuration,
    directories, logger, and the plugin's background tasks."""

    plugin_id: str
    config: dict[str, Any]
    plugin_dir: Path
    data_dir: Path
    logger: logging.Logger
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Start a background task owned by this plugin; it is cancelled when the plugin stops."""
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self.plugin_id}:task")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
