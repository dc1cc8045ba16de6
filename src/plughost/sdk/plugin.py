"""`Plugin`: what a Python plugin author creates and decorates.

```python
plugin = Plugin()                      # id/version from plugin.toml beside the module

@plugin.on_load
async def setup(ctx: PluginContext) -> None: ...

@plugin.method("greet")
def greet(name: str, times: int = 1) -> dict: ...
```
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from plughost.errors import PlugHostError
from plughost.sdk.binding import ANSWERS, Answer, Binding, HandlerKind, compile_binding
from plughost.sdk.commands import CommandsMixin
from plughost.sdk.context import PluginContext
from plughost.sdk.descriptor import Descriptor, MethodSpec, SubscriptionSpec
from plughost.sdk.http_routes import HttpDecoratorsMixin
from plughost.sdk.manifest import PluginManifest, find_manifest_file, load_manifest
from plughost.sdk.matchers import MatcherDecoratorsMixin
from plughost.sdk.routing import BotDecoratorsMixin
from plughost.sdk.schedules import ScheduleDecoratorsMixin

F = TypeVar("F", bound=Callable[..., Any])
HookName = Literal["load", "unload", "enable", "disable", "reconfigure"]
HOOKS: tuple[HookName, ...] = ("load", "unload", "enable", "disable", "reconfigure")
EXECUTE_HANDLER = "execute"


@dataclass(frozen=True, slots=True)
class Handler:
    """A declared callable, its kind, how a call's payload becomes its arguments and how its
    result becomes the JSON answer."""

    func: Callable[..., Any]
    kind: HandlerKind
    binding: Binding
    is_async: bool
    answer: Answer
    trivial: bool = False  # an async method or execute handler without parameters: called without binding


def make_handler(func: Callable[..., Any], kind: HandlerKind, **options: Any) -> Handler:
    """Check `func`'s signature for handlers of `kind` now (not at the first call) and bind it."""
    binding = compile_binding(func, kind, **options)
    is_async = _is_async(func)
    trivial = is_async and binding.takes_nothing and kind in ("method", "execute")
    return Handler(func, kind, binding, is_async, ANSWERS[kind], trivial)


class Plugin(CommandsMixin, BotDecoratorsMixin, HttpDecoratorsMixin, ScheduleDecoratorsMixin, MatcherDecoratorsMixin):
    """A Python plugin: collects hooks and handlers and describes them as a `Descriptor`."""

    def __init__(self, id: str | None = None, version: str | None = None, *, description: str = "") -> None:
        self.module_file = _caller_file()
        if id is None or version is None:
            manifest = self._manifest_beside()
            id = id or (manifest.id if manifest else None)
            version = version or (manifest.version if manifest else None)
        if not id:
            raise PlugHostError(
                f"{self.module_file}: Plugin() needs an id: put a plugin.toml beside the module "
                "or pass Plugin(id=..., version=...)"
            )
        self.id: str = id
        self.version: str = version or "0.1.0"
        self.description = description
        self.hooks: dict[HookName, list[Handler]] = {h: [] for h in HOOKS}
        self.handlers: dict[str, Handler] = {}
        self.methods: dict[str, MethodSpec] = {}
        self.capabilities: set[str] = set()
        self.subscriptions: list[SubscriptionSpec] = []

    def _manifest_beside(self) -> PluginManifest | None:
        if self.module_file is None:
            return None
        path = find_manifest_file(self.module_file.parent)
        if path is None:
            return None
        return load_manifest(path, default_id=self.module_file.parent.name)

    # lifecycle hooks -------------------------------------------------------------------------
    def _hook(self, name: HookName) -> Callable[[F], F]:
        def register(func: F) -> F:
            self.hooks[name].append(make_handler(func, "hook"))
            return func

        return register

    def on_load(self, func: F) -> F:
        """Called with a `PluginContext` when the plugin is loaded (sync or async)."""
        return self._hook("load")(func)

    def on_unload(self, func: F) -> F:
        """Called when the plugin is unloaded (before its tasks are cancelled)."""
        return self._hook("unload")(func)

    def on_enable(self, func: F) -> F:
        """Called when the plugin is enabled."""
        return self._hook("enable")(func)

    def on_disable(self, func: F) -> F:
        """Called when the plugin is disabled."""
        return self._hook("disable")(func)

    def on_reconfigure(self, func: F) -> F:
        """Called with `(ctx, new_config)` after the plugin's configuration changed."""
        return self._hook("reconfigure")(func)

    # handlers --------------------------------------------------------------------------------
    def add_handler(self, name: str, func: Callable[..., Any], kind: HandlerKind = "method", **options: Any) -> Handler:
        """Register `func` under the handler name `name` (the decorators use this)."""
        if name in self.handlers:
            raise PlugHostError(f"plugin '{self.id}': handler '{name}' is declared twice")
        try:
            handler = make_handler(func, kind, **options)
        except PlugHostError as exc:
            exc.args = (f"plugin '{self.id}': {exc}",)
            raise
        self.handlers[name] = handler
        return handler

    def execute(self, func: F) -> F:
        """LurkBot's `execute(context)`: called by `execute_plugin(s)` with a context."""
        self.add_handler(EXECUTE_HANDLER, func, "execute")
        self.capabilities.add("execute")
        return func

    def method(self, name: str | None = None, *, description: str = "") -> Callable[[F], F]:
        """A callable method (Jank's Execute(method, args)); arguments validated from type hints."""

        def register(func: F) -> F:
            method_name = name or func.__name__
            handler = self.add_handler(method_name, func, "method")
            doc = description or inspect.getdoc(func) or ""
            self.methods[method_name] = MethodSpec(method_name, doc, dict(handler.binding.schema or {}))
            return func

        return register

    def subscribe(self, topic: str) -> Callable[[F], F]:
        """Called with every bus message on `topic` (`*` matches one segment, `>` the rest);
        parameters: `data`, `topic`, `sender` by name, `PluginContext` by type."""
        return self._bus_handler(topic, "subscribe")

    def reply_to(self, topic: str) -> Callable[[F], F]:
        """Answers `ctx.bus.request(topic, data)`: its return value (JSON) is the answer."""
        return self._bus_handler(topic, "reply")

    def _bus_handler(self, topic: str, mode: Literal["subscribe", "reply"]) -> Callable[[F], F]:
        def register(func: F) -> F:
            name = f"bus.{mode}.{len(self.subscriptions)}:{topic}"
            self.add_handler(name, func, "bus")
            self.subscriptions.append(SubscriptionSpec(topic, name, mode))
            return func

        return register

    def describe(self) -> Descriptor:
        """The plugin's descriptor, built from everything declared so far."""
        descriptor = Descriptor(
            id=self.id,
            version=self.version,
            methods=tuple(self.methods.values()),
            capabilities=frozenset(self.capabilities | ({"methods"} if self.methods else set())),
            metadata={"description": self.description} if self.description else {},
            subscriptions=tuple(self.subscriptions),
        )
        return self._extend_descriptor(descriptor)


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.isroutine(func):
        return inspect.iscoroutinefunction(func)
    return inspect.iscoroutinefunction(vars(type(func)).get("__call__"))


def _caller_file() -> Path | None:
    frame = sys._getframe(2)
    name = frame.f_globals.get("__file__")
    return Path(name).resolve() if name else None


__all__ = ["EXECUTE_HANDLER", "HOOKS", "Handler", "HookName", "Plugin", "PluginContext", "make_handler"]
