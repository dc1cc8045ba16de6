"""Management routes and resources of native plugins (`management.register` / `management.handle`).

Routes live under the (authenticated) management API, `/v0/management/...`; resources are
GET-only and unauthenticated under `/v0/resource/plugins/<id>/...`.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from plughost.runtime.native.envelope import get_ci

MANAGEMENT_BASE = "/v0/management"
RESOURCE_BASE = "/v0/resource/plugins"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_FORBIDDEN = re.compile(r"[\s:*]")

RouteKind = Literal["route", "resource"]


@dataclass(frozen=True)
class ManagementRoute:
    """One normalised management route or resource of a plugin."""

    plugin_id: str
    kind: RouteKind
    method: str
    path: str
    menu: str = ""
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin_id": self.plugin_id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "menu": self.menu,
            "description": self.description,
        }


@dataclass
class RouteTable:
    """A plugin's accepted routes/resources and the entries it rejected, with reasons."""

    routes: list[ManagementRoute] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def find(self, method: str, path: str) -> ManagementRoute | None:
        method = method.upper()
        for route in self.routes:
            if route.path == path and (route.method == method or (method == "HEAD" and route.method == "GET")):
                return route
        return None

    def to_json(self) -> dict[str, Any]:
        return {"routes": [r.to_json() for r in self.routes], "rejected": list(self.rejected)}


@dataclass(frozen=True)
class ManagementResponse:
    """The answer to one management request (status 0 from the plugin is reported as 200)."""

    status: int
    headers: dict[str, list[str]]
    body: bytes


def resource_base(plugin_id: str) -> str:
    return f"{RESOURCE_BASE}/{plugin_id}"


def register_request(plugin_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {"Plugin": dict(metadata), "BasePath": MANAGEMENT_BASE, "ResourceBasePath": resource_base(plugin_id)}


def _normalise_path(raw: Any, base: str) -> tuple[str | None, str]:
    """(absolute path, "") or (None, reason)."""
    path = str(raw or "").strip()
    if not path:
        return None, "empty path"
    if _FORBIDDEN.search(path):
        return None, f"path {path!r} contains whitespace, ':' or '*'"
    if ".." in path.split("/"):
        return None, f"path {path!r} contains '..'"
    if not path.startswith("/"):
        path = f"{base}/{path}"
    cleaned = posixpath.normpath(path)
    if cleaned != base and not cleaned.startswith(base + "/"):
        return None, f"path {path!r} is not under {base}"
    return cleaned, ""


def build_route_table(plugin_id: str, result: Any, taken: Iterable[tuple[str, str]] = ()) -> RouteTable:
    """Normalise a `management.register` result.

    `taken` holds (method, path) pairs already served (built-in or higher-priority plugins);
    they win, and a plugin's own duplicates keep the first entry.
    """
    table = RouteTable()
    seen = set(taken)
    data = result if isinstance(result, Mapping) else {}
    for item in get_ci(data, "routes") or []:
        if not isinstance(item, Mapping):
            table.rejected.append(f"route {item!r} is not an object")
            continue
        method = str(get_ci(item, "Method") or "GET").strip().upper()
        path, reason = _normalise_path(get_ci(item, "Path"), MANAGEMENT_BASE)
        if path is None:
            table.rejected.append(f"route {method} {get_ci(item, 'Path')!r}: {reason}")
            continue
        if method not in HTTP_METHODS:
            table.rejected.append(f"route {method} {path}: unknown HTTP method")
            continue
        _add(table, seen, ManagementRoute(plugin_id, "route", method, path, *_labels(item)))
    base = resource_base(plugin_id)
    for item in get_ci(data, "resources") or []:
        if not isinstance(item, Mapping):
            table.rejected.append(f"resource {item!r} is not an object")
            continue
        path, reason = _normalise_path(get_ci(item, "Path"), base)
        if path is None:
            table.rejected.append(f"resource {get_ci(item, 'Path')!r}: {reason}")
            continue
        _add(table, seen, ManagementRoute(plugin_id, "resource", "GET", path, *_labels(item)))
    return table


def _labels(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(get_ci(item, "Menu") or ""), str(get_ci(item, "Description") or "")


def _add(table: RouteTable, seen: set[tuple[str, str]], route: ManagementRoute) -> None:
    key = (route.method, route.path)
    if key in seen:
        table.rejected.append(f"{route.kind} {route.method} {route.path}: already served by another handler")
        return
    seen.add(key)
    table.routes.append(route)


def handle_request(
    method: str,
    path: str,
    headers: Mapping[str, Any] | None,
    query: Mapping[str, Any] | None,
    body: bytes | None,
) -> dict[str, Any]:
    """The `management.handle` request (Go field names, every field present)."""
    return {
        "Method": method.upper(),
        "Path": path,
        "Headers": _multi(headers),
        "Query": _multi(query),
        "Body": base64.b64encode(body).decode("ascii") if body else None,
    }


def parse_response(result: Any) -> ManagementResponse:
    """Turn a `management.handle` result into a response; a malformed one raises ValueError."""
    if not isinstance(result, Mapping):
        raise ValueError(f"management.handle result is not an object: {result!r}")
    status = get_ci(result, "StatusCode") or 0
    if not isinstance(status, int) or not (0 <= status <= 999):
        raise ValueError(f"management.handle StatusCode {status!r} is invalid")
    body_b64 = get_ci(result, "Body")
    try:
        body = base64.b64decode(body_b64, validate=True) if body_b64 else b""
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ValueError(f"management.handle Body is not standard base64: {exc}") from None
    return ManagementResponse(status or 200, _multi(get_ci(result, "Headers")), body)


def _multi(values: Mapping[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in (values or {}).items():
        items = value if isinstance(value, list | tuple) else [value]
        out[str(key)] = [str(v) for v in items]
    return out
