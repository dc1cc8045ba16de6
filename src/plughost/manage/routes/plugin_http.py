"""Plugin routes (`/v0/management/...`, authenticated) and resources (`/v0/resource/plugins/<id>/...`, public).

Enabled plugins declare them in their descriptor's `http` field (Python decorators, a native
plugin's `management.register`, a worker's Describe). The first enabled plugin in priority order
(higher first, ties by id) that serves a method and path wins; plughost's own routes always win.
A request becomes an `http` call through the guard; a plugin that fails, times out or answers
something malformed gives 502 with the reason, and the host carries on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, ApiError
from plughost.manage.security import require_key
from plughost.sdk.call import USER_ERROR, Call
from plughost.sdk.http import MANAGEMENT_BASE, RESOURCE_BASE, HttpRequest, HttpResponse

Ctx = Annotated[ManageContext, Depends(context)]
RESOURCE_SANDBOX = "sandbox allow-scripts allow-forms allow-popups"
"""Plugin resources run as an opaque origin wherever they are opened: no access to the console's storage."""
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"})


async def serve_plugin(ctx: ManageContext, request: Request, kind: str) -> Response:
    path = request.url.path.rstrip("/")
    served = ctx.plugin_routes.lookup(ctx.host.manager.enabled_plugins(), request.method, path)
    if served is None or served.spec.kind != kind:
        raise ApiError(404, "not_found", f"no plugin serves {request.method} {path}")
    body = await request.body()
    http_request = HttpRequest(
        method=request.method,
        path=path,
        headers=_multi(request.headers.items()),
        query=_multi(request.query_params.multi_items()),
        body=body,
    )
    outcome = await ctx.host.manager.call(
        served.plugin_id,
        Call(served.spec.handler, http_request.to_payload(), "http"),
        timeout=ctx.settings.route_timeout_s,
    )
    if outcome.error is not None and outcome.error.code == USER_ERROR:  # the client's to fix (`BadRequest`)
        raise ApiError(400, "bad_request", outcome.error.message, {"plugin_id": served.plugin_id})
    if outcome.error is not None:
        raise ApiError(
            502,
            "plugin_failed",
            f"plugin '{served.plugin_id}' failed to answer {request.method} {path}: {outcome.error}",
            {"plugin_id": served.plugin_id, "plugin_error": outcome.error.to_json()},
        )
    try:
        answer = HttpResponse.from_value(outcome.value)
    except ValueError as exc:
        raise ApiError(
            502,
            "plugin_failed",
            f"plugin '{served.plugin_id}' answered malformed HTTP: {exc}",
            {"plugin_id": served.plugin_id},
        ) from None
    response = Response(answer.body, status_code=answer.status)
    if kind == "resource":  # a plugin's page, on the console's origin, must not reach the console's key
        response.headers["Content-Security-Policy"] = RESOURCE_SANDBOX
    for name, values in answer.headers.items():
        if name.lower() not in HOP_BY_HOP:
            for value in values:
                response.headers.append(name, value)
    return response


def _multi(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


management = APIRouter(tags=["plugin routes"], responses=ERROR_RESPONSES, dependencies=[Depends(require_key)])
resources = APIRouter(tags=["plugin routes"], responses=ERROR_RESPONSES)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def plugin_route(ctx: Ctx, request: Request, path: str) -> Response:
    """Served by the plugin that registered it (authenticated like the rest of the API)."""
    return await serve_plugin(ctx, request, "route")


def _route_each_method(router: APIRouter) -> None:
    """One operation per HTTP method (one operation for all would repeat its OpenAPI id)."""
    for method in METHODS:
        router.add_api_route(
            MANAGEMENT_BASE + "/{path:path}",
            plugin_route,
            methods=[method],
            operation_id=f"plugin_route_{method.lower()}",
            summary=f"A plugin's management route ({method})",
        )


_route_each_method(management)


@resources.get(RESOURCE_BASE + "/{plugin_id}/{path:path}", summary="A plugin's public resource (menus, pages)")
async def plugin_resource(ctx: Ctx, request: Request, plugin_id: str, path: str) -> Response:
    """GET only and no key: browsers open these pages directly. A resource belongs to its plugin."""
    return await serve_plugin(ctx, request, "resource")
