"""Command targets: a plugin's handlers (through the guard) or the host's own built-in commands."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from plughost.sdk.call import Call, Outcome
from plughost.sdk.context import PluginContext
from plughost.sdk.plugin import Plugin
from plughost.sdk.runner import run_handler, unknown_handler

GuardedCall = Callable[[Call], Awaitable[Outcome]]
"""`call -> outcome` through the guard (e.g. `partial(manager.call, plugin_id)`)."""


class PluginTarget:
    """A plugin's command handlers, called through the guard with the command payload."""

    def __init__(self, plugin_id: str, call: GuardedCall) -> None:
        self.plugin_id = plugin_id
        self._call = call

    def call(self, call: Call) -> Awaitable[Outcome]:
        return self._call(call)


class SdkTarget:
    """Command handlers of an SDK `Plugin` run by the host itself (the built-in commands): the same
    binder and runner as any in-process plugin, on the event loop (built-ins never block)."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.plugin_id = plugin.id
        self._context = PluginContext(plugin.id, {}, Path.cwd(), Path.cwd(), logging.getLogger(f"plughost.{plugin.id}"))

    async def call(self, call: Call) -> Outcome:
        handler = self.plugin.handlers.get(call.handler)
        if handler is None:
            return unknown_handler(self.plugin_id, call.handler, self.plugin.handlers)
        return await run_handler(handler, call, self._context, None)
