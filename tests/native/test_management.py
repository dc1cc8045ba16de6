"""Management routes of native plugins: `management.register` read with CLIProxyAPI's rules, and
`management.handle` served as an `http` call — in-process and in a worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plughost.core.manager import PluginManager
from plughost.runtime import default_runtimes
from plughost.runtime.native.management import handle_request, response_value, route_table
from plughost.sdk.call import Call, Outcome
from plughost.sdk.http import HttpRequest, HttpResponse
from tests.native.conftest import Builds, Loader

# The `management.register` answers of every CLIProxyAPI example that declares `management_api`
# (router-for-me/CLIProxyAPI a7e3596b7, examples/plugin/<example>/<language>), by plugin name.
# fmt: off
CLIPROXYAPI_EXAMPLES: dict[str, dict[str, Any]] = {
    f"example-{name}-{language}": {
        "resources": [{"Path": "/status", "Menu": menu, "Description": f"CPA exposes this menu resource under "
                       f"/v0/resource/plugins/example-{name}-{language}/status."}]
    }
    for name, menu in (("management-api", "Management API"), ("host-callback", "Host Callback"))
    for language in ("c", "go", "rust")
} | {
    "example-simple-c": {"Resources": [{"Path": "/status", "Menu": "Example C Plugin", "Description":
                         "CPA exposes this menu resource under /v0/resource/plugins/example-c/status."}]},
    "example": {"resources": [{"Path": "/status", "Menu": "Example Plugin", "Description":
                "Shows example plugin status as a browser-navigable resource.", "Handler": None}]},
    "example-simple-rust": {"Resources": [{"Path": "/status", "Menu": "Example Rust Plugin", "Description":
                            "CPA exposes this menu resource under /v0/resource/plugins/example-rust/status."}]},
    "host-callback-auth-files": {"resources": [{"Path": "/status", "Menu": "Host Auth Files", "Description":
                                 "Lists auth files and demonstrates host.auth list/get/runtime/save callbacks."}]},
    "host-model-callback": {"resources": [{"Path": "/status", "Menu": "Host Model Callback", "Description":
                            "Runs a model request through host.model callbacks and displays the result."}]},
}
# fmt: on


def http_call(method: str, path: str, handler: str = "management.handle", **fields: Any) -> Call:
    return Call(handler, HttpRequest(method, path, **fields).to_payload(), "http")


def test_register_results_are_normalised_with_the_reasons_of_rejections() -> None:
    table = route_table(
        "alpha",
        {
            "Routes": [
                {"Method": "post", "Path": "alpha/run", "Menu": "Alpha", "Description": "run it"},
                {"Path": "/v0/management/alpha/info/"},
                {"path": "alpha/status", "menu": "Alpha status"},  # GET + Menu: a resource (keys any case)
                {"Path": "alpha/../../x"},
                {"Path": "alpha/has space"},
                {"Path": "alpha/:param"},
                {"Path": "alpha/*"},
                {"Path": ""},
                {"Method": "BREW", "Path": "alpha/tea"},
                {"Method": "POST", "Path": "/v0/management/alpha/run"},
                "not an object",
            ],
            "resources": [
                {"Path": "app.js"},
                {"Path": "/plugins/alpha/app.js"},  # the same resource, by its legacy prefix
                {"Path": "../secrets"},
                {"Path": "/v0/resource/plugins/beta/x"},  # stays under alpha's own base
            ],
        },
    )
    assert [(s.kind, s.method, s.path, s.menu, s.handler) for s in table.specs] == [
        ("route", "POST", "/v0/management/alpha/run", "Alpha", "management.handle"),
        ("route", "GET", "/v0/management/alpha/info", "", "management.handle"),
        ("resource", "GET", "/v0/resource/plugins/alpha/alpha/status", "Alpha status", "management.handle"),
        ("resource", "GET", "/v0/resource/plugins/alpha/app.js", "", "management.handle"),
        ("resource", "GET", "/v0/resource/plugins/alpha/v0/resource/plugins/beta/x", "", "management.handle"),
    ]
    assert table.rejected == [
        "route 'alpha/../../x': path '/v0/management/alpha/../../x' contains '..'",
        "route 'alpha/has space': path '/v0/management/alpha/has space' contains whitespace",
        "route 'alpha/:param': path '/v0/management/alpha/:param' contains ':'",
        "route 'alpha/*': path '/v0/management/alpha/*' contains '*'",
        "route '': the path is empty",
        "route BREW 'alpha/tea': method 'BREW' is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        "route POST '/v0/management/alpha/run': route POST /v0/management/alpha/run is declared twice "
        "(the first one is kept)",
        "route 'not an object': not an object",
        "resource '/plugins/alpha/app.js': resource GET /v0/resource/plugins/alpha/app.js is declared twice "
        "(the first one is kept)",
        "resource '../secrets': path '/v0/resource/plugins/alpha/../secrets' contains '..'",
    ]
    assert route_table("alpha", None).specs == [] and route_table("alpha", {"routes": None}).rejected == []


@pytest.mark.parametrize("plugin_id", sorted(CLIPROXYAPI_EXAMPLES))
def test_every_cliproxyapi_management_example_is_accepted(plugin_id: str) -> None:
    """All eleven: the resource "/status" is served at /v0/resource/plugins/<id>/status, nothing rejected."""
    table = route_table(plugin_id, CLIPROXYAPI_EXAMPLES[plugin_id])
    assert table.rejected == []
    assert [(s.kind, s.method, s.path) for s in table.specs] == [
        ("resource", "GET", f"/v0/resource/plugins/{plugin_id}/status")
    ]
    assert table.specs[0].menu and table.specs[0].description


def test_handle_request_and_response_shapes() -> None:
    request = HttpRequest("post", "/p", {"A": ["1"]}, {"q": ["1", "2"]}, b"hi")
    assert handle_request(request.to_payload()) == {
        "Method": "POST",
        "Path": "/p",
        "Headers": {"A": ["1"]},
        "Query": {"q": ["1", "2"]},
        "Body": "aGk=",
    }
    assert handle_request(HttpRequest("GET", "/p").to_payload())["Body"] is None
    with pytest.raises(ValueError, match="not standard base64"):
        handle_request({"method": "GET", "path": "/p", "body": "%%%"})
    ok = response_value({"statuscode": 0, "headers": {"X": ["1"], "Y": "2"}, "body": "eA=="})
    assert HttpResponse.from_value(ok) == HttpResponse(200, {"X": ["1"], "Y": ["2"]}, b"x")
    assert response_value({"StatusCode": 418, "Body": None}) == {"status": 418, "headers": {}, "body": ""}
    for bad, reason in (([1], "not an object"), ({"StatusCode": 1000}, "status 1000"), ({"Body": "!"}, "base64")):
        with pytest.raises(ValueError, match=reason):
            response_value(bad)


async def test_failures_and_malformed_answers_are_failed_outcomes(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "mgmt")
    # the probe declares management_api but does not implement management.register: no routes, reason kept
    assert handle.descriptor.http == ()
    assert "management.register failed" in handle.descriptor.metadata["management"]["rejected"][0]
    failed = await handle.call(http_call("GET", "/v0/management/mgmt/x"))
    assert failed.error is not None and (failed.error.code, failed.error.message) == (
        "plugin_error",
        "plugin 'mgmt' call management.handle: plugin_error: management failed",
    )
    for path, reason in (
        ("/bad_status", "http status 1000 is not an integer from 100 to 599"),
        ("/bad_body", "an http body is not standard base64"),
        ("/not_object", "the result is not an object: [1]"),
    ):
        outcome = await handle.call(http_call("GET", path))
        assert outcome.error is not None and outcome.error.code == "invalid_answer"
        assert outcome.error.message.startswith("plugin 'mgmt' management.handle answered a malformed response: ")
        assert reason in outcome.error.message
    bad_request = await handle.call(Call("management.handle", {"headers": "X: 1"}, "http"))
    assert bad_request.error is not None and bad_request.error.code == "invalid_request"
    other = await handle.call(http_call("GET", "/x", handler="echo"))
    assert other.error is not None and other.error.code == "unknown_handler"


async def test_capability_lists_are_ordered_by_priority_then_id(c_builds: Builds, native_runtime, load_native: Loader):
    await load_native(c_builds["example_c"], "b-low", priority=1)
    await load_native(c_builds["example_c"], "a-high", priority=9)
    await load_native(c_builds["example_c"], "c-high", priority=9)
    await load_native(c_builds["bad_meta"], "inactive", priority=99)
    assert [h.plugin_id for h in native_runtime.with_capability("bot")] == ["a-high", "c-high", "b-low"]


async def serve(manager: PluginManager, plugin_id: str, method: str, path: str) -> tuple[str, Outcome]:
    """What the management server does: find the route in the plugin's descriptor, call its handler."""
    instance = manager.get_plugin(plugin_id)
    assert instance is not None and instance.descriptor is not None, instance and instance.error
    spec = next(s for s in instance.descriptor.http if (s.method, s.path) == (method, path))
    return spec.kind, await manager.call(plugin_id, Call(spec.handler, HttpRequest(method, path).to_payload(), "http"))


async def test_native_routes_are_served_the_same_in_process_and_in_a_worker(placed_workspace: Path):
    async with PluginManager(placed_workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 4
        worker = manager.get_plugin("example-c-worker")
        assert worker is not None and worker.handle.info()["pid"] != os.getpid()  # type: ignore[union-attr]
        answers: dict[str, list[Any]] = {}
        for where in ("local", "worker"):
            cliproxy, example = f"cliproxy-management-api-{where}", f"example-c-{where}"
            descriptor = manager.get_plugin(cliproxy).descriptor  # type: ignore[union-attr]
            assert descriptor.metadata["management"] == {"rejected": []}
            assert [(s.kind, s.path, s.menu) for s in descriptor.http] == [
                ("resource", f"/v0/resource/plugins/{cliproxy}/status", "Management API")
            ]
            answers[where] = [
                await serve(manager, cliproxy, "GET", f"/v0/resource/plugins/{cliproxy}/status"),
                await serve(manager, example, "GET", f"/v0/resource/plugins/{example}/status"),
                await serve(manager, example, "GET", f"/v0/resource/plugins/{example}/index.html"),
                await serve(manager, example, "GET", "/v0/management/example-c/status"),
            ]
    local = [(kind, HttpResponse.from_value(outcome.value)) for kind, outcome in answers["local"]]
    assert local == [
        ("resource", HttpResponse(200, {"content-type": ["text/html; charset=utf-8"]},
                                  b"<!doctype html><title>Management API</title><main>Management API resource</main>")),
        ("resource", HttpResponse.json({"calls": 0, "greeting": "Hello"})),
        ("resource", HttpResponse.html("<h1>Hello from C</h1>")),
        ("route", HttpResponse.json({"calls": 0, "greeting": "Hello"})),
    ]  # fmt: skip
    assert answers["worker"] == answers["local"]
