"""HTTP routes and resources of plugins, served by the host's management server as `http` calls.

A plugin declares routes (authenticated, under `/v0/management/...`) and resources (GET-only,
unauthenticated, under `/v0/resource/plugins/<id>/...`); both are `HttpRouteSpec`s in its
descriptor's `http` field. The server calls `Call(spec.handler, request.to_payload(), "http")`
and reads the answer with `HttpResponse.from_value(outcome.value)`.

Paths are normalised as CLIProxyAPI does (`internal/pluginhost/management.go`), for every runtime:

```python
normalise_route("get", "status")          # ("GET", "/v0/management/status")
normalise_resource("demo", "/status")     # "/v0/resource/plugins/demo/status"
```
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from plughost.sdk.call import USER_ERROR

MANAGEMENT_BASE = "/v0/management"
RESOURCE_BASE = "/v0/resource/plugins"
LEGACY_PLUGIN_PREFIX = "/plugins"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HttpRouteKind = Literal["route", "resource"]
HTTP_ROUTE_KINDS: tuple[HttpRouteKind, ...] = ("route", "resource")
_WHITESPACE = re.compile(r"\s")


# normalisation --------------------------------------------------------------------------------
def resource_base(plugin_id: str) -> str:
    """`/v0/resource/plugins/<id>`: where a plugin's resources live."""
    return f"{RESOURCE_BASE}/{plugin_id}"


def normalise_method(method: str | None) -> str:
    """The upper-case HTTP method (GET when blank); ValueError for anything but the standard ones."""
    verb = (method or "").strip().upper() or "GET"
    if _WHITESPACE.search(verb) or verb not in HTTP_METHODS:
        raise ValueError(f"method {verb!r} is not one of {', '.join(HTTP_METHODS)}")
    return verb


def normalise_route(method: str | None, path: str | None) -> tuple[str, str]:
    """`(METHOD, /v0/management/<path>)` for a management route; ValueError(reason) if invalid.

    A relative path is made absolute, a `/v0/management/` prefix is dropped and trailing `/`
    trimmed; whitespace, `:`, `*` and `..` segments are refused.
    """
    verb = normalise_method(method)
    rest = _absolute(path)
    if rest.startswith(MANAGEMENT_BASE + "/"):
        rest = rest.removeprefix(MANAGEMENT_BASE)
    full = MANAGEMENT_BASE + _trimmed(rest, path)
    _check(full, ".." in full.split("/"))
    return verb, full


def normalise_resource(plugin_id: str, path: str | None) -> str:
    """`/v0/resource/plugins/<id>/<path>` for a resource; ValueError(reason) if invalid.

    A relative path is made absolute, a `/v0/resource/plugins/<id>/` or legacy `/plugins/<id>/`
    prefix is dropped and trailing `/` trimmed; whitespace, `:`, `*` and `..` are refused.
    """
    plugin_id = plugin_id.strip()
    if not plugin_id:
        raise ValueError("a resource needs a plugin id")
    base = resource_base(plugin_id)
    rest = _absolute(path)
    for prefix in (base, f"{LEGACY_PLUGIN_PREFIX}/{plugin_id}"):
        if rest.startswith(prefix + "/"):
            rest = rest.removeprefix(prefix)
            break
    full = base + _trimmed(rest, path)
    _check(full, ".." in full)
    return full


def _absolute(path: str | None) -> str:
    text = (path or "").strip()
    if not text:
        raise ValueError("the path is empty")
    return text if text.startswith("/") else "/" + text


def _trimmed(rest: str, original: str | None) -> str:
    rest = rest.rstrip("/")
    if not rest:
        raise ValueError(f"path {original!r} is empty without its base and trailing '/'")
    return rest


def _check(full: str, dot_dot: bool) -> None:
    if _WHITESPACE.search(full):
        raise ValueError(f"path {full!r} contains whitespace")
    for char in ":*":
        if char in full:
            raise ValueError(f"path {full!r} contains {char!r}")
    if dot_dot:
        raise ValueError(f"path {full!r} contains '..'")


# specs ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpRouteSpec:
    """One HTTP route or resource of a plugin: its normalised method and absolute path, and the
    handler an `http` call names."""

    kind: HttpRouteKind
    method: str
    path: str
    handler: str
    menu: str = ""
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "handler": self.handler,
            "menu": self.menu,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, data: Any) -> HttpRouteSpec:
        """Read a spec from its JSON shape (not re-normalised: see `checked_spec`); ValueError if malformed."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an http route must be an object, got {type(data).__name__}")
        kind = data.get("kind")
        if kind not in HTTP_ROUTE_KINDS:
            raise ValueError(f"http route kind {kind!r} is not 'route' or 'resource'")
        text = {key: data.get(key, "") for key in ("method", "path", "handler", "menu", "description")}
        wrong = [key for key, value in text.items() if not isinstance(value, str)]
        if wrong:
            raise ValueError(f"http route field(s) {', '.join(wrong)} must be strings")
        if not text["handler"]:
            raise ValueError(f"http route {text['method']} {text['path']} names no handler")
        return cls(kind, text["method"], text["path"], text["handler"], text["menu"], text["description"])


def route_spec(plugin_id: str, method: str | None, path: str | None, handler: str, *, menu: str = "",
               description: str = "") -> HttpRouteSpec:  # fmt: skip
    """The spec of a management route; ValueError(reason) if invalid.

    CLIProxyAPI's legacy rule: a GET route with a menu label is a resource (its path is read as
    a resource path).
    """
    verb, full = normalise_route(method, path)
    if verb == "GET" and menu.strip():
        return resource_spec(plugin_id, path, handler, menu=menu, description=description)
    return HttpRouteSpec("route", verb, full, handler, menu, description)


def resource_spec(plugin_id: str, path: str | None, handler: str, *, menu: str = "",
                  description: str = "") -> HttpRouteSpec:  # fmt: skip
    """The spec of a resource (always GET); ValueError(reason) if invalid."""
    return HttpRouteSpec("resource", "GET", normalise_resource(plugin_id, path), handler, menu, description)


def checked_spec(plugin_id: str, spec: HttpRouteSpec) -> HttpRouteSpec:
    """`spec` if it is already normalised for plugin `plugin_id` (a resource under its own base);
    ValueError otherwise. For specs that arrive over a wire."""
    if spec.kind == "route":
        expected: tuple[str, str] = normalise_route(spec.method, spec.path)
    else:
        expected = ("GET", normalise_resource(plugin_id, spec.path))
    if expected != (spec.method, spec.path):
        raise ValueError(f"http {spec.kind} {spec.method} {spec.path} is not normalised: {' '.join(expected)}")
    return spec


@dataclass(slots=True)
class HttpRoutes:
    """A plugin's routes and resources as they are declared: the first entry for a method and
    path wins, later ones are rejected with the reason."""

    specs: list[HttpRouteSpec] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def add(self, spec: HttpRouteSpec) -> HttpRouteSpec:
        """Add `spec`; ValueError if its method and path are taken."""
        if any((s.method, s.path) == (spec.method, spec.path) for s in self.specs):
            raise ValueError(f"{spec.kind} {spec.method} {spec.path} is declared twice (the first one is kept)")
        self.specs.append(spec)
        return spec


# requests and responses -----------------------------------------------------------------------
Headers = dict[str, list[str]]


class BadRequest(ValueError):
    """The client's request cannot be read: the host answers 400 with this message. Raise it from
    an HTTP route for input the client must fix; like `UserError`, it is not a plugin failure."""

    code = USER_ERROR


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What an `http` handler receives: the request as the server read it."""

    method: str = "GET"
    path: str = "/"
    headers: Headers = field(default_factory=dict)
    query: Headers = field(default_factory=dict)
    body: bytes = b""

    def text(self, encoding: str = "utf-8") -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode(encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); `BadRequest` (a ValueError) if it is not JSON:
        left to the host, the client gets 400 with why, and the plugin's breaker does not count it."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError as exc:  # undecodable bytes too
            raise BadRequest(f"the request body is not JSON: {exc}") from None

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        wanted = name.lower()
        return next((v[0] for k, v in self.headers.items() if k.lower() == wanted and v), default)

    def query_param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def to_payload(self) -> dict[str, Any]:
        """The `http` call's payload: `{"method","path","headers","query","body": base64 | null}`."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": {k: list(v) for k, v in self.headers.items()},
            "query": {k: list(v) for k, v in self.query.items()},
            "body": base64.b64encode(self.body).decode("ascii") if self.body else None,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> HttpRequest:
        """Read an `http` call's payload; ValueError naming what is malformed."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"an http request must be an object, got {type(payload).__name__}")
        method, path = payload.get("method") or "GET", payload.get("path") or "/"
        if not isinstance(method, str) or not isinstance(path, str):
            raise ValueError("an http request's method and path must be strings")
        return cls(
            method.upper(),
            path,
            multi_values(payload.get("headers"), "headers"),
            multi_values(payload.get("query"), "query"),
            decode_body(payload.get("body")),
        )


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What an `http` handler answers (a handler may also return text, bytes or JSON-shaped data)."""

    status: int = 200
    headers: Headers = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, data: Any, status: int = 200) -> HttpResponse:
        """`data` (JSON-shaped, or a model, dataclass …) as `application/json`."""
        encoded = json.dumps(to_jsonable_python(data, fallback=str), ensure_ascii=False, separators=(",", ":"))
        return cls(status, {"Content-Type": ["application/json"]}, encoded.encode())

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> HttpResponse:
        return cls(status, {"Content-Type": [content_type]}, text.encode())

    @classmethod
    def html(cls, html: str, status: int = 200) -> HttpResponse:
        return cls.text(html, status, "text/html; charset=utf-8")

    @classmethod
    def of(cls, result: Any) -> HttpResponse:
        """A handler's return value as a response: itself, `str` → text/plain, `bytes` →
        application/octet-stream, anything else → application/json; all with status 200."""
        if isinstance(result, HttpResponse):
            return result
        if isinstance(result, str):
            return cls.text(result)
        if isinstance(result, bytes | bytearray | memoryview):
            return cls(200, {"Content-Type": ["application/octet-stream"]}, bytes(result))
        return cls.json(result)

    def to_value(self) -> dict[str, Any]:
        """The `http` outcome's value: `{"status", "headers": {k: [v]}, "body": base64}`."""
        return {
            "status": self.status,
            "headers": {k: list(v) for k, v in self.headers.items()},
            "body": base64.b64encode(self.body).decode("ascii"),
        }

    @classmethod
    def from_value(cls, value: Any) -> HttpResponse:
        """Read an `http` outcome's value (status 0 means 200); ValueError naming what is malformed."""
        if not isinstance(value, Mapping):
            raise ValueError(f"an http response must be an object, got {type(value).__name__}")
        status = value.get("status") or 0
        if not isinstance(status, int) or isinstance(status, bool) or not (status == 0 or 100 <= status <= 599):
            raise ValueError(f"http status {status!r} is not an integer from 100 to 599")
        return cls(status or 200, multi_values(value.get("headers"), "headers"), decode_body(value.get("body")))


def multi_values(data: Any, what: str) -> Headers:
    """`{name: [value, …]}` from a JSON object whose values are strings or lists of strings."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"http {what} must be an object, got {type(data).__name__}")
    out: Headers = {}
    for key, values in data.items():
        items = values if isinstance(values, list | tuple) else [values]
        if not all(isinstance(v, str) for v in items):
            raise ValueError(f"http {what} {key!r} must be a string or a list of strings")
        out[str(key)] = list(items)
    return out


def decode_body(data: Any) -> bytes:
    """A body from its standard base64 text (None or "" is empty)."""
    if not data:
        return b""
    if not isinstance(data, str):
        raise ValueError(f"an http body must be base64 text, got {type(data).__name__}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"an http body is not standard base64: {exc}") from None


def handler_name(method: str, path: str) -> str:
    """The handler name of a Python plugin's route (`http:GET /v0/management/status`)."""
    return f"http:{method} {path}"


__all__ = [
    "HTTP_METHODS",
    "LEGACY_PLUGIN_PREFIX",
    "MANAGEMENT_BASE",
    "RESOURCE_BASE",
    "HttpRequest",
    "HttpResponse",
    "HttpRouteKind",
    "HttpRouteSpec",
    "HttpRoutes",
    "checked_spec",
    "decode_body",
    "handler_name",
    "multi_values",
    "normalise_method",
    "normalise_resource",
    "normalise_route",
    "resource_base",
    "resource_spec",
    "route_spec",
]
