"""Command targets: plugin handlers (through the guard) and host-side (built-in) handlers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from plughost.guard import CallFailed
from plughost.runtime.python import PythonPluginHandle
from plughost.sdk.commands import CommandArgumentError
from plughost.sdk.handle import PluginHandle
from plughost.sdk.plugin import Plugin

GuardedCall = Callable[[str, Any], Awaitable[Any]]
"""`(handler, request) -> value`, raising `CallFailed` (e.g. `partial(manager.call, plugin_id)`)."""


class PluginTarget:
    """A plugin's command handlers, called through the guard.

    In-process Python handles receive `CommandRequest` objects; every other runtime receives the
    request's JSON form.
    """

    def __init__(self, plugin_id: str, handle: PluginHandle, call: GuardedCall) -> None:
        self.plugin_id = plugin_id
        self.handle = handle
        self._call = call
        self.wants_objects = isinstance(handle, PythonPluginHandle)

    def custom_parser(self, handler: str, type_name: str) -> Callable[[str], Any] | None:
        plugin = getattr(self.handle, "plugin", None)
        lookup = getattr(plugin, "custom_parser", None)
        if lookup is None:
            return None
        parser: Callable[[str], Any] | None = lookup(handler, type_name)
        return parser

    async def call(self, handler: str, request: Any) -> Any:
        try:
            return await self._call(handler, request)
        except CallFailed as failed:
            if failed.metadata.get("exception_type") == CommandArgumentError.__name__:
                raise CommandArgumentError(str(failed).removeprefix(f"{CommandArgumentError.__name__}: ")) from None
            raise


LocalHandler = Callable[[Any], Awaitable[Any]]


class LocalTarget:
    """Handlers implemented by the host itself (built-in commands)."""

    wants_objects = True

    def __init__(self, plugin_id: str, handlers: Mapping[str, LocalHandler]) -> None:
        self.plugin_id = plugin_id
        self.handlers = dict(handlers)

    def custom_parser(self, handler: str, type_name: str) -> Callable[[str], Any] | None:
        return None

    async def call(self, handler: str, request: Any) -> Any:
        return await self.handlers[handler](request)


class SdkTarget:
    """Command handlers of an SDK `Plugin` object run by the host itself (the built-in commands)."""

    wants_objects = True

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.plugin_id = plugin.id

    def custom_parser(self, handler: str, type_name: str) -> Callable[[str], Any] | None:
        return self.plugin.custom_parser(handler, type_name)

    async def call(self, handler: str, request: Any) -> Any:
        entry = self.plugin.handlers[handler]
        args, kwargs = entry.bind(request)
        result = entry.func(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
