"""HTTP decorators for `Plugin`: `@plugin.http_route` and `@plugin.http_resource`.

```python
@plugin.http_route("POST", "/notes")               # served at POST /v0/management/notes
async def add_note(request: HttpRequest, ctx: PluginContext) -> HttpResponse:
    return HttpResponse.json({"added": request.json()}, status=201)

@plugin.http_resource("/status", menu="Notes")     # GET /v0/resource/plugins/<id>/status
def status() -> str:
    return "ok"
```

A handler gets the `HttpRequest` (by type, or as `request`/`req`), the `PluginContext` and the
logger, like other handlers (see `plughost.sdk.binding`); it answers an `HttpResponse`, or `str`
(text/plain), `bytes` (application/octet-stream) or JSON-shaped data and models (application/json).
Routes sit behind the management API's authentication; resources are GET-only and public.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from plughost.errors import PlugHostError
from plughost.sdk.contributions import DescriptorContribution
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.http import HttpRoutes, HttpRouteSpec, handler_name, resource_spec, route_spec

if TYPE_CHECKING:
    from plughost.sdk.plugin import Handler

F = TypeVar("F", bound=Callable[..., Any])


class HttpDecoratorsMixin(DescriptorContribution):
    """Mixed into `Plugin`: HTTP routes and resources, added to the descriptor's `http`."""

    id: str
    add_handler: Callable[..., Handler]

    def _http_routes(self) -> HttpRoutes:
        return self._declared("_http_routes_declared", HttpRoutes)

    def http_route(self, method: str, path: str, *, menu: str = "", description: str = "") -> Callable[[F], F]:
        """Serve `method path` under `/v0/management` (authenticated) with the decorated function.

        As in CLIProxyAPI, a GET route with a `menu` label is served as a resource instead.
        """
        return self._http(lambda: route_spec(self.id, method, path, "", menu=menu, description=description),
                          f"route {method} {path!r}")  # fmt: skip

    def http_resource(self, path: str, *, menu: str = "", description: str = "") -> Callable[[F], F]:
        """Serve GET `path` under `/v0/resource/plugins/<id>` (public, browser-navigable)."""
        return self._http(lambda: resource_spec(self.id, path, "", menu=menu, description=description),
                          f"resource {path!r}")  # fmt: skip

    def _http(self, build: Callable[[], HttpRouteSpec], what: str) -> Callable[[F], F]:
        """Normalise now (a bad path fails here); the handler is named after the final method and path."""
        try:
            spec = build()
        except ValueError as exc:
            raise PlugHostError(f"plugin '{self.id}': http {what}: {exc}") from None
        spec = dataclasses.replace(spec, handler=handler_name(spec.method, spec.path))

        def register(func: F) -> F:
            routes = self._http_routes()
            try:
                routes.add(spec)
            except ValueError as exc:
                raise PlugHostError(f"plugin '{self.id}': http {what}: {exc}") from None
            try:
                self.add_handler(spec.handler, func, "http")
            except BaseException:
                routes.specs.remove(spec)
                raise
            return func

        return register

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Add the HTTP routes (cooperative: other mixins chain through `super()`)."""
        descriptor = super()._extend_descriptor(descriptor)
        specs = self._http_routes().specs
        if not specs:
            return descriptor
        return dataclasses.replace(descriptor, http=(*descriptor.http, *specs))
