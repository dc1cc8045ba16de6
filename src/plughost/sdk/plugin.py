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

import asyncio
import inspect
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_type_hints

from plughost.errors import InvocationError, PlugHostError
from plughost.sdk.commands import CommandsMixin
from plughost.sdk.descriptor import Descriptor, MethodSpec
from plughost.sdk.manifest import find_manifest_file, load_manifest
from plughost.sdk.models import PluginExecutionContext
from plughost.sdk.routing import BotDecoratorsMixin
from plughost.sdk.signature import argument_model, json_schema

F = TypeVar("F", bound=Callable[..., Any])
HookName = Literal["load", "unload", "enable", "disable", "reconfigure"]
HOOKS: tuple[HookName, ...] = ("load", "unload", "enable", "disable", "reconfigure")
EXECUTE_HANDLER = "execute"


@dataclass
class PluginContext:
    """Handed to lifecycle hooks: configuration, directories, logger, owned tasks."""

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


Binder = Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Handler:
    """A declared callable and how to turn an invoke request into its arguments.

    `takes_arguments` is False for handlers without parameters (the request must be empty);
    runtimes may then skip `bind`, which only validates that.
    """

    func: Callable[..., Any]
    is_async: bool
    bind: Binder
    takes_arguments: bool = True


def bind_arguments(func: Callable[..., Any]) -> Binder:
    """A binder that validates a JSON object of keyword arguments against `func`'s type hints.

    A parameter annotated `PluginExecutionContext` receives the whole request as a context.
    """
    model = argument_model(func, skip=(PluginExecutionContext,))
    context_param = _param_of_type(func, PluginExecutionContext)
    if model is None and context_param is None:
        return _bind_nothing(func)

    def bind(request: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if context_param is not None:
            kwargs[context_param] = as_context(request)
            return (), kwargs
        if model is not None:
            validated = model.model_validate(request if request is not None else {})
            kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        elif request not in (None, {}):
            raise InvocationError(f"'{func.__name__}' takes no arguments, got {request!r}", code="invalid_request")
        return (), kwargs

    bind.schema = json_schema(model)  # type: ignore[attr-defined]
    return bind


def _bind_nothing(func: Callable[..., Any]) -> Binder:
    """Binder for handlers without parameters: accepts only an empty request."""

    def bind(request: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if request is None or request == {}:
            return (), {}
        raise InvocationError(f"'{func.__name__}' takes no arguments, got {request!r}", code="invalid_request")

    bind.schema = json_schema(None)  # type: ignore[attr-defined]
    bind.takes_arguments = False  # type: ignore[attr-defined]
    return bind


def as_context(request: Any) -> PluginExecutionContext:
    """Accept a context object or its JSON form."""
    if isinstance(request, PluginExecutionContext):
        return request
    return PluginExecutionContext.model_validate(request or {})


class Plugin(CommandsMixin, BotDecoratorsMixin):
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
        self.hooks: dict[HookName, list[Callable[..., Any]]] = {h: [] for h in HOOKS}
        self.handlers: dict[str, Handler] = {}
        self.methods: dict[str, MethodSpec] = {}
        self.capabilities: set[str] = set()

    def _manifest_beside(self) -> Any:
        if self.module_file is None:
            return None
        path = find_manifest_file(self.module_file.parent)
        if path is None:
            return None
        return load_manifest(path, default_id=self.module_file.parent.name)

    # lifecycle hooks -------------------------------------------------------------------------
    def _hook(self, name: HookName) -> Callable[[F], F]:
        def register(func: F) -> F:
            self.hooks[name].append(func)
            return func

        return register

    def on_load(self, func: F) -> F:
        """Called with a `PluginContext` when the plugin is loaded (sync or async)."""
        return self._hook("load")(func)

    def on_unload(self, func: F) -> F:
        return self._hook("unload")(func)

    def on_enable(self, func: F) -> F:
        return self._hook("enable")(func)

    def on_disable(self, func: F) -> F:
        return self._hook("disable")(func)

    def on_reconfigure(self, func: F) -> F:
        """Called with `(ctx, new_config)` after the plugin's configuration changed."""
        return self._hook("reconfigure")(func)

    # handlers --------------------------------------------------------------------------------
    def add_handler(self, name: str, func: Callable[..., Any], bind: Binder | None = None) -> Handler:
        """Register `func` under the invoke name `name` (the decorators use this)."""
        if name in self.handlers:
            raise PlugHostError(f"plugin '{self.id}': handler '{name}' is declared twice")
        binder = bind or bind_arguments(func)
        handler = Handler(func, _is_async(func), binder, getattr(binder, "takes_arguments", True))
        self.handlers[name] = handler
        return handler

    def execute(self, func: F) -> F:
        """LurkBot's `execute(context)`: called by `execute_plugin(s)` with a context."""
        self.add_handler(EXECUTE_HANDLER, func, _bind_context(func))
        self.capabilities.add("execute")
        return func

    def method(self, name: str | None = None, *, description: str = "") -> Callable[[F], F]:
        """A callable method (Jank's Execute(method, args)); arguments validated from type hints."""

        def register(func: F) -> F:
            method_name = name or func.__name__
            handler = self.add_handler(method_name, func)
            doc = description or inspect.getdoc(func) or ""
            schema = getattr(handler.bind, "schema", {})
            self.methods[method_name] = MethodSpec(method_name, doc, schema)
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
        )
        return self._extend_descriptor(descriptor)


async def call_maybe_async(func: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async function and await the result when needed."""
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.isroutine(func):
        return inspect.iscoroutinefunction(func)
    return inspect.iscoroutinefunction(vars(type(func)).get("__call__"))


def _param_of_type(func: Callable[..., Any], kind: type) -> str | None:
    try:
        hints = get_type_hints(func)
    except Exception:  # unresolvable annotations: treat as untyped
        return None
    return next((k for k, h in hints.items() if k != "return" and isinstance(h, type) and issubclass(h, kind)), None)


def _bind_context(func: Callable[..., Any]) -> Binder:
    """`execute(context)`: the context is passed positionally whatever the parameter is called."""
    takes_arg = bool(inspect.signature(func).parameters)

    def bind(request: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ((as_context(request),) if takes_arg else ()), {}

    return bind


def _caller_file() -> Path | None:
    frame = sys._getframe(2)
    name = frame.f_globals.get("__file__")
    return Path(name).resolve() if name else None
