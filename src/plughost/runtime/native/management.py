"""Management routes and resources of native plugins: the ABI shapes of `management.register`
and `management.handle`, converted to and from plughost's `http` call kind.

Routes are normalised by `plughost.sdk.http` (the same rules for every runtime); every route
of a native plugin names the handler `management.handle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plughost.runtime.native.envelope import get_ci
from plughost.sdk.http import (
    MANAGEMENT_BASE,
    HttpRequest,
    HttpResponse,
    HttpRoutes,
    resource_base,
    resource_spec,
    route_spec,
)

MANAGEMENT_HANDLE = "management.handle"


def register_request(plugin_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The `management.register` request."""
    return {"Plugin": dict(metadata), "BasePath": MANAGEMENT_BASE, "ResourceBasePath": resource_base(plugin_id)}


def route_table(plugin_id: str, result: Any) -> HttpRoutes:
    """The routes and resources of a `management.register` result (keys case-insensitive), and
    the entries rejected, with reasons."""
    table = HttpRoutes()
    data = result if isinstance(result, Mapping) else {}
    for kind in ("route", "resource"):
        items = get_ci(data, kind + "s") or []
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, Mapping):
                table.rejected.append(f"{kind} {item!r}: not an object")
                continue
            path, menu, description = (_text(get_ci(item, key)) for key in ("Path", "Menu", "Description"))
            method = _text(get_ci(item, "Method"))
            try:
                if kind == "route":
                    spec = route_spec(plugin_id, method, path, MANAGEMENT_HANDLE, menu=menu, description=description)
                else:
                    spec = resource_spec(plugin_id, path, MANAGEMENT_HANDLE, menu=menu, description=description)
                table.add(spec)
            except ValueError as exc:
                label = f"{method.upper()} {path!r}" if method else repr(path)
                table.rejected.append(f"{kind} {label}: {exc}")
    return table


def handle_request(payload: Any) -> dict[str, Any]:
    """The `management.handle` request (Go field names, every field present) for an `http`
    call's payload; ValueError if the payload is malformed."""
    request = HttpRequest.from_payload(payload).to_payload()
    fields = {"Method": "method", "Path": "path", "Headers": "headers", "Query": "query", "Body": "body"}
    return {name: request[key] for name, key in fields.items()}


def response_value(result: Any) -> dict[str, Any]:
    """The `http` outcome value of a `management.handle` result (`StatusCode` 0 → 200);
    ValueError naming what is malformed."""
    if not isinstance(result, Mapping):
        raise ValueError(f"the result is not an object: {result!r:.200}")
    fields = {"status": "StatusCode", "headers": "Headers", "body": "Body"}
    return HttpResponse.from_value({key: get_ci(result, name) for key, name in fields.items()}).to_value()


def _text(value: Any) -> str:
    return "" if value is None else str(value)
