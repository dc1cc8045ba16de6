"""plughost.sdk.http: CLIProxyAPI's path rules, the `http` call's payload and answer, the decorators."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from plughost.errors import PlugHostError
from plughost.sdk import Plugin, PluginContext
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.http import (
    HttpRequest,
    HttpResponse,
    HttpRoutes,
    HttpRouteSpec,
    checked_spec,
    normalise_resource,
    normalise_route,
    resource_spec,
    route_spec,
)


# routes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("get", "status", ("GET", "/v0/management/status")),  # relative: under the base
        (None, "/status", ("GET", "/v0/management/status")),  # no method: GET
        ("  post ", " /v0/management/a/b/ ", ("POST", "/v0/management/a/b")),  # prefixed, trailing / trimmed
        ("delete", "a///", ("DELETE", "/v0/management/a")),
        ("PATCH", "/v0/management/v0/management/x", ("PATCH", "/v0/management/v0/management/x")),  # one prefix only
        ("GET", "/v0/management", ("GET", "/v0/management/v0/management")),  # not "/v0/management/": kept
        ("GET", "/plugins/demo/x", ("GET", "/v0/management/plugins/demo/x")),
        ("options", "a..b/c.d", ("OPTIONS", "/v0/management/a..b/c.d")),  # '..' inside a segment is a name
        ("HEAD", "/caf\u00e9", ("HEAD", "/v0/management/caf\u00e9")),
    ],
)
def test_routes_are_normalised_like_cliproxyapi(method: str | None, path: str, expected: tuple[str, str]) -> None:
    assert normalise_route(method, path) == expected


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("BREW", "tea", "method 'BREW' is not one of GET, POST"),
        ("G ET", "x", "method 'G ET' is not one of"),
        ("GET", "", "the path is empty"),
        ("GET", "   ", "the path is empty"),
        (None, None, "the path is empty"),
        ("GET", "/", "is empty without its base"),
        ("GET", "/v0/management/", "is empty without its base"),
        ("GET", "/v0/management///", "is empty without its base"),
        ("GET", "a b", "contains whitespace"),
        ("GET", "a\tb", "contains whitespace"),
        ("GET", "a/:id", "contains ':'"),
        ("GET", "a/*", "contains '*'"),
        ("GET", "a/../b", "contains '..'"),
        ("GET", "..", "contains '..'"),
        ("GET", "/v0/management/../config", "contains '..'"),
    ],
)
def test_bad_routes_are_rejected_with_the_reason(method: str | None, path: str | None, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_route(method, path)
    assert reason in str(caught.value)


# resources ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/status", "/v0/resource/plugins/demo/status"),  # CLIProxyAPI's examples
        ("status/", "/v0/resource/plugins/demo/status"),
        ("/v0/resource/plugins/demo/app/index.html", "/v0/resource/plugins/demo/app/index.html"),
        ("/plugins/demo/x", "/v0/resource/plugins/demo/x"),  # the legacy prefix
        ("/plugins/other/x", "/v0/resource/plugins/demo/plugins/other/x"),
        # another plugin's base is not stripped: the path stays under this plugin's own base
        ("/v0/resource/plugins/other/x", "/v0/resource/plugins/demo/v0/resource/plugins/other/x"),
        ("/v0/management/x", "/v0/resource/plugins/demo/v0/management/x"),
    ],
)
def test_resources_are_normalised_like_cliproxyapi(path: str, expected: str) -> None:
    assert normalise_resource("demo", path) == expected


@pytest.mark.parametrize(
    ("plugin_id", "path", "reason"),
    [
        ("demo", "", "the path is empty"),
        ("demo", "/", "is empty without its base"),
        ("demo", "/v0/resource/plugins/demo/", "is empty without its base"),
        ("demo", "/plugins/demo//", "is empty without its base"),
        ("demo", "a b", "contains whitespace"),
        ("demo", "a\nb", "contains whitespace"),
        ("demo", "a:b", "contains ':'"),
        ("demo", "*", "contains '*'"),
        ("demo", "../secrets", "contains '..'"),
        ("demo", "a..b", "contains '..'"),  # resources refuse '..' anywhere, as CLIProxyAPI does
        ("  ", "/status", "needs a plugin id"),
    ],
)
def test_bad_resources_are_rejected_with_the_reason(plugin_id: str, path: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_resource(plugin_id, path)
    assert reason in str(caught.value)


def test_a_get_route_with_a_menu_is_a_resource() -> None:
    """CLIProxyAPI's legacy rule: the route's own path is read as a resource path."""
    assert route_spec("demo", "get", "/status", "h", menu="Status", description="d") == HttpRouteSpec(
        "resource", "GET", "/v0/resource/plugins/demo/status", "h", "Status", "d"
    )
    legacy = route_spec("demo", "GET", "/v0/management/page", "h", menu="Page")
    assert (legacy.kind, legacy.path) == ("resource", "/v0/resource/plugins/demo/v0/management/page")
    assert route_spec("demo", "POST", "/status", "h", menu="Status").kind == "route"  # only GET
    assert route_spec("demo", "GET", "/status", "h", menu="  ").kind == "route"  # a blank menu is none
    with pytest.raises(ValueError, match="contains ':'"):  # still a route first: its rules apply
        route_spec("demo", "GET", "/a:b", "h", menu="M")
    with pytest.raises(ValueError, match="not one of"):
        route_spec("demo", "BREW", "/status", "h", menu="M")


def test_the_first_entry_for_a_method_and_path_wins() -> None:
    routes = HttpRoutes()
    first = routes.add(resource_spec("demo", "/status", "a"))
    with pytest.raises(ValueError, match="declared twice"):
        routes.add(route_spec("demo", "GET", "/v0/resource/plugins/demo/status/", "b", menu="legacy"))
    routes.add(route_spec("demo", "POST", "/status", "c"))  # another method, another base: no conflict
    routes.add(route_spec("demo", "GET", "/status", "d"))
    assert [s.handler for s in routes.specs] == ["a", "c", "d"] and routes.specs[0] is first


# descriptors ----------------------------------------------------------------------------------
def test_http_specs_round_trip_through_the_descriptor_json() -> None:
    specs = (
        route_spec("demo", "post", "notes", "add", description="add a note"),
        resource_spec("demo", "/status", "status", menu="Demo"),
    )
    descriptor = Descriptor(id="demo", http=specs)
    data = json.loads(json.dumps(descriptor.to_json()))
    assert data["http"][1] == {
        "kind": "resource",
        "method": "GET",
        "path": "/v0/resource/plugins/demo/status",
        "handler": "status",
        "menu": "Demo",
        "description": "",
    }
    assert Descriptor.from_json(data) == descriptor
    assert Descriptor.from_json({"id": "demo"}).http == ()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"kind": "resource", "method": "GET", "path": "/v0/resource/plugins/other/x", "handler": "h"},
         "is not normalised"),  # another plugin's resource
        ({"kind": "route", "method": "GET", "path": "/status", "handler": "h"}, "is not normalised"),
        ({"kind": "route", "method": "BREW", "path": "/v0/management/x", "handler": "h"}, "not one of"),
        ({"kind": "resource", "method": "POST", "path": "/v0/resource/plugins/demo/x", "handler": "h"},
         "is not normalised"),
        ({"kind": "socket", "method": "GET", "path": "/x", "handler": "h"}, "kind 'socket'"),
        ({"kind": "route", "method": "GET", "path": "/v0/management/x", "handler": ""}, "names no handler"),
        ({"kind": "route", "method": "GET", "path": 5, "handler": "h"}, "path must be strings"),
        ("GET /x", "must be an object"),
    ],
)  # fmt: skip
def test_a_descriptor_from_the_wire_refuses_http_routes_that_are_not_normalised(entry: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        Descriptor.from_json({"id": "demo", "http": [entry]})
    assert reason in str(caught.value)


def test_checked_spec_accepts_normalised_specs() -> None:
    spec = route_spec("demo", "GET", "x", "h")
    assert checked_spec("demo", spec) is spec


# requests -------------------------------------------------------------------------------------
def test_requests_round_trip_as_call_payloads() -> None:
    request = HttpRequest(
        "POST",
        "/v0/management/notes",
        {"Content-Type": ["application/json"], "X-Many": ["1", "2"]},
        {"q": ["a", "b"], "empty": []},
        b'{"text": "h\xc3\xa9"}',
    )
    payload = request.to_payload()
    assert payload == {
        "method": "POST",
        "path": "/v0/management/notes",
        "headers": {"Content-Type": ["application/json"], "X-Many": ["1", "2"]},
        "query": {"q": ["a", "b"], "empty": []},
        "body": "eyJ0ZXh0IjogImjDqSJ9",
    }
    assert HttpRequest.from_payload(json.loads(json.dumps(payload))) == request
    assert request.header("content-type") == "application/json" and request.header("x-many") == "1"
    assert request.header("missing") is None and request.header("missing", "d") == "d"
    assert request.query_param("q") == "a" and request.query_param("empty") is None
    assert request.json() == {"text": "hé"} and request.text() == '{"text": "hé"}'
    empty = HttpRequest.from_payload({"method": "get", "path": "/x", "body": None})
    assert empty == HttpRequest("GET", "/x") and empty.to_payload()["body"] is None and empty.json() is None
    assert HttpRequest.from_payload({"headers": {"A": "1"}}).headers == {"A": ["1"]}  # a single value
    with pytest.raises(ValueError):
        HttpRequest(body=b"not json").json()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "must be an object, got NoneType"),
        ({"method": 1}, "must be strings"),
        ({"headers": ["A: 1"]}, "headers must be an object"),
        ({"headers": {"A": [1]}}, "headers 'A' must be a string or a list of strings"),
        ({"query": {"q": None}}, "query 'q' must be a string"),
        ({"body": "not base64!"}, "not standard base64"),
        ({"body": [1, 2]}, "must be base64 text, got list"),
    ],
)
def test_malformed_request_payloads_are_refused(payload: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        HttpRequest.from_payload(payload)
    assert reason in str(caught.value)


# responses ------------------------------------------------------------------------------------
class Note(BaseModel):
    text: str


def test_response_constructors_and_handler_answers() -> None:
    assert HttpResponse.json({"a": [1, "é"]}, status=201) == HttpResponse(
        201, {"Content-Type": ["application/json"]}, '{"a":[1,"é"]}'.encode()
    )
    assert HttpResponse.text("hi", 404).headers == {"Content-Type": ["text/plain; charset=utf-8"]}
    assert HttpResponse.html("<p>").headers == {"Content-Type": ["text/html; charset=utf-8"]}
    assert HttpResponse.text("x", content_type="text/csv").headers["Content-Type"] == ["text/csv"]
    assert HttpResponse.of("hi") == HttpResponse.text("hi")
    assert HttpResponse.of(b"\x00\x01") == HttpResponse(200, {"Content-Type": ["application/octet-stream"]}, b"\0\1")
    assert HttpResponse.of(Note(text="x")).body == b'{"text":"x"}'
    assert HttpResponse.of(None).body == b"null" and HttpResponse.of([1]).status == 200
    same = HttpResponse(418, {"X": ["1"]})
    assert HttpResponse.of(same) is same


def test_responses_round_trip_as_outcome_values() -> None:
    response = HttpResponse(201, {"Content-Type": ["text/plain"], "Set-Cookie": ["a=1", "b=2"]}, b"\xffdata")
    value = response.to_value()
    assert value == {"status": 201, "headers": {"Content-Type": ["text/plain"], "Set-Cookie": ["a=1", "b=2"]},
                     "body": "/2RhdGE="}  # fmt: skip
    assert HttpResponse.from_value(json.loads(json.dumps(value))) == response
    assert HttpResponse.from_value({"status": 0}) == HttpResponse(200)  # 0 means 200, as in CLIProxyAPI
    assert HttpResponse.from_value({}) == HttpResponse(200)
    assert HttpResponse().to_value() == {"status": 200, "headers": {}, "body": ""}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([200], "must be an object, got list"),
        ({"status": "200"}, "status '200' is not an integer from 100 to 599"),
        ({"status": 99}, "status 99 is not"),
        ({"status": 600}, "status 600 is not"),
        ({"status": True}, "status True is not"),
        ({"status": 200.0}, "status 200.0 is not"),
        ({"status": 200, "body": "!!"}, "not standard base64"),
        ({"status": 200, "body": 5}, "must be base64 text, got int"),
        ({"status": 200, "headers": [["A", "1"]]}, "headers must be an object"),
        ({"status": 200, "headers": {"A": {"b": 1}}}, "headers 'A' must be a string or a list of strings"),
    ],
)
def test_malformed_response_values_are_refused(value: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        HttpResponse.from_value(value)
    assert reason in str(caught.value)


# decorators -----------------------------------------------------------------------------------
def test_decorators_declare_normalised_routes_with_their_own_handler_names() -> None:
    plugin = Plugin(id="demo", version="1.0.0")

    @plugin.http_route("post", "notes/", description="add a note")
    def add(request: HttpRequest, ctx: PluginContext) -> HttpResponse: ...

    @plugin.http_resource("/status", menu="Demo")
    async def status(req, log) -> str: ...

    @plugin.http_route("GET", "page", menu="Page")  # the legacy rule: a resource
    def page(logger: logging.Logger, limit: int = 3) -> str: ...

    @plugin.method("add")  # a method may have a route's function name: handler names differ
    def add_method() -> None: ...

    http = plugin.describe().http
    assert [(s.kind, s.method, s.path, s.handler) for s in http] == [
        ("route", "POST", "/v0/management/notes", "http:POST /v0/management/notes"),
        ("resource", "GET", "/v0/resource/plugins/demo/status", "http:GET /v0/resource/plugins/demo/status"),
        ("resource", "GET", "/v0/resource/plugins/demo/page", "http:GET /v0/resource/plugins/demo/page"),
    ]
    assert (http[0].description, http[1].menu) == ("add a note", "Demo")
    assert {s.handler for s in http} | {"add"} == set(plugin.handlers)
    assert all(plugin.handlers[s.handler].kind == "http" for s in http)


def test_decorator_mistakes_fail_when_the_decorator_runs() -> None:
    plugin = Plugin(id="demo", version="1.0.0")
    with pytest.raises(PlugHostError, match=r"plugin 'demo': http route GET 'a b': path .* contains whitespace"):
        plugin.http_route("GET", "a b")
    with pytest.raises(PlugHostError, match=r"plugin 'demo': http resource '\.\./x': .* contains '\.\.'"):
        plugin.http_resource("../x")
    with pytest.raises(PlugHostError, match="method 'BREW' is not one of"):
        plugin.http_route("BREW", "/tea")

    @plugin.http_resource("/status")
    def status() -> str: ...

    with pytest.raises(PlugHostError, match=r"resource GET /v0/resource/plugins/demo/status is declared twice"):
        plugin.http_route("GET", "/v0/resource/plugins/demo/status", menu="again")(status)
    with pytest.raises(PlugHostError, match="nothing can fill parameter 'user'"):

        @plugin.http_route("GET", "/who")
        def who(user: str) -> str: ...

    assert [s.path for s in plugin.describe().http] == ["/v0/resource/plugins/demo/status"]  # `who` left nothing


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "..", ".", "", " ", ":", "*", "v0", "management", "resource", "plugins", "demo"]),
             max_size=6),
    st.booleans(),
    st.sampled_from(["get", "POST", ""]),
    st.sampled_from(["", "Menu"]),
)  # fmt: skip
def test_normalised_specs_are_fixed_points(parts: list[str], absolute: bool, method: str, menu: str) -> None:
    """Normalising twice changes nothing, so a spec that crossed a wire passes `checked_spec`."""
    path = ("/" if absolute else "") + "/".join(parts)
    for build in (lambda: route_spec("demo", method, path, "h", menu=menu), lambda: resource_spec("demo", path, "h")):
        try:
            spec = build()
        except ValueError:
            continue
        assert checked_spec("demo", spec) is spec
        again = (
            route_spec("demo", spec.method, spec.path, "h")
            if spec.kind == "route"
            else resource_spec("demo", spec.path, "h")
        )
        assert (again.kind, again.method, again.path) == (spec.kind, spec.method, spec.path)
