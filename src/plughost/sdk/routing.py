"""Bot decorators for `Plugin`: `@plugin.route`, `@plugin.pre_handle`, `@plugin.after_completion`.

```python
@plugin.route("notice", "GroupPoke", "PrivatePoke")
async def on_poke(ev: NoticeEvent, bot: Bot) -> Reply | None: ...

@plugin.route("request", "Friend")
async def on_friend(ev: RequestEvent) -> Approve | Reject | None: ...

@plugin.pre_handle
async def filter_spam(ev: MessageEvent) -> bool: ...          # False blocks

@plugin.after_completion
async def log_it(ev: MessageEvent) -> None: ...
```

Handlers receive what their type hints ask for (see `plughost.sdk.binding`): the event (a
handler typed for a narrower event class is skipped for other events), the bot (`Bot`), the
plugin's `logging.Logger`, the raw wire event (`dict`), the event's `Message`, or the
`PluginContext`; unannotated parameters by name (`event`/`ev`, `bot`, `logger`/`log`,
`ctx`/`context`); parameters with defaults keep them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from plughost.errors import PlugHostError
from plughost.sdk.contributions import DescriptorContribution
from plughost.sdk.descriptor import Descriptor, InterceptorSpec, RouteSpec
from plughost.sdk.events import ROUTES_BY_KIND

if TYPE_CHECKING:
    from plughost.sdk.plugin import Handler

F = TypeVar("F", bound=Callable[..., Any])
ROUTE_KINDS = ("message", "message_sent", "notice", "request", "meta")


class BotDecoratorsMixin(DescriptorContribution):
    """Mixed into `Plugin`: bot routes and interceptors, added to the descriptor."""

    id: str
    add_handler: Callable[..., Handler]

    def _bot_state(self) -> tuple[list[RouteSpec], list[InterceptorSpec]]:
        return self._declared("_bot_specs", lambda: ([], []))

    def route(self, kind: str, *events: str) -> Callable[[F], F]:
        """Subscribe to routes of one kind (`notice`, `request`, `meta`, `message`, `message_sent`).

        No event names (or `"*"`) subscribes to every route of that kind, including `Unknown:…`.
        """
        if kind not in ROUTE_KINDS:
            raise PlugHostError(f"plugin '{self.id}': unknown route kind {kind!r}; use one of {', '.join(ROUTE_KINDS)}")
        for name in events:
            if name != "*" and name not in ROUTES_BY_KIND[kind] and not name.startswith("Unknown:"):
                known = ", ".join(sorted(ROUTES_BY_KIND[kind]))
                raise PlugHostError(f"plugin '{self.id}': {kind} has no route {name!r}; known routes: {known}")

        def register(func: F) -> F:
            name = self._unique_name(f"route.{kind}.{func.__name__}")
            self.add_handler(name, func, "route")
            self._bot_state()[0].append(RouteSpec(kind=kind, events=tuple(events), handler=name))  # type: ignore[arg-type]
            return func

        return register

    def pre_handle(self, func: F) -> F:
        """An interceptor run before commands and routes; returning False blocks the event."""
        return self._interceptor("pre_handle", func)

    def after_completion(self, func: F) -> F:
        """An interceptor run after the event was handled (in reverse priority order)."""
        return self._interceptor("after_completion", func)

    def _interceptor(self, stage: str, func: F) -> F:
        name = self._unique_name(f"{stage}.{func.__name__}")
        self.add_handler(name, func, stage)
        self._bot_state()[1].append(InterceptorSpec(stage=stage, handler=name))  # type: ignore[arg-type]
        return func

    def _unique_name(self, base: str) -> str:
        handlers: Mapping[str, Any] = getattr(self, "handlers", {})
        name, n = base, 1
        while name in handlers:
            n += 1
            name = f"{base}#{n}"
        return name

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Add routes and interceptors (cooperative: other mixins chain through `super()`)."""
        descriptor = super()._extend_descriptor(descriptor)
        routes, interceptors = self._bot_state()
        if not routes and not interceptors:
            return descriptor
        return dataclasses.replace(
            descriptor,
            routes=(*descriptor.routes, *routes),
            interceptors=(*descriptor.interceptors, *interceptors),
            capabilities=descriptor.capabilities | {"bot"},
        )
