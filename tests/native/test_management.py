"""Management route normalisation (the spec's rules) and the handle → 502 plumbing."""

from __future__ import annotations

import base64

from plughost.runtime.native.management import build_route_table, handle_request, parse_response
from tests.native.conftest import Builds, Loader


def test_routes_are_prefixed_upper_cased_and_checked() -> None:
    table = build_route_table(
        "alpha",
        {
            "Routes": [
                {"Method": "post", "Path": "alpha/run", "Menu": "Alpha", "Description": "run it"},
                {"Path": "/v0/management/alpha/info"},
                {"Path": "/v0/other/escape"},
                {"Path": "alpha/../../x"},
                {"Path": "alpha/has space"},
                {"Path": "alpha/:param"},
                {"Path": "alpha/*"},
                {"Method": "BREW", "Path": "alpha/tea"},
                {"Method": "POST", "Path": "/v0/management/alpha/run"},
                "not an object",
            ],
            "resources": [{"Path": "app.js"}, {"Path": "../secrets"}, {"Path": "/v0/resource/plugins/beta/x"}],
        },
        taken=[("GET", "/v0/management/config")],
    )
    assert [(r.method, r.path, r.menu) for r in table.routes] == [
        ("POST", "/v0/management/alpha/run", "Alpha"),
        ("GET", "/v0/management/alpha/info", ""),
        ("GET", "/v0/resource/plugins/alpha/app.js", ""),
    ]
    rejected = "\n".join(table.rejected)
    for expected in (
        "'/v0/other/escape' is not under /v0/management",
        "'alpha/../../x' contains '..'",
        "contains whitespace, ':' or '*'",
        "BREW /v0/management/alpha/tea: unknown HTTP method",
        "POST /v0/management/alpha/run: already served",
        "'not an object' is not an object",
        "'../secrets' contains '..'",
        "'/v0/resource/plugins/beta/x' is not under /v0/resource/plugins/alpha",
    ):
        assert expected in rejected
    assert len(table.rejected) == 10


def test_builtin_routes_win() -> None:
    table = build_route_table(
        "alpha", {"routes": [{"Path": "/v0/management/config"}]}, taken=[("GET", "/v0/management/config")]
    )
    assert table.routes == [] and "already served" in table.rejected[0]


def test_handle_request_and_response_shapes() -> None:
    assert handle_request("get", "/p", {"A": "1"}, {"q": ["1", "2"]}, None) == {
        "Method": "GET",
        "Path": "/p",
        "Headers": {"A": ["1"]},
        "Query": {"q": ["1", "2"]},
        "Body": None,
    }
    assert handle_request("POST", "/p", None, None, b"hi")["Body"] == "aGk="
    ok = parse_response({"statuscode": 0, "headers": {"X": ["1"]}, "body": base64.b64encode(b"x").decode()})
    assert (ok.status, ok.headers, ok.body) == (200, {"X": ["1"]}, b"x")
    assert parse_response({"StatusCode": 418}).status == 418


async def test_plugin_failure_in_management_handle_is_502(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "mgmt")
    # the probe declares management_api but does not implement management.register: no routes, reason kept
    assert "management.register failed" in handle.descriptor.metadata["management"]["rejected"][0]
    handle.routes = build_route_table("mgmt", {"routes": [{"Path": "mgmt/x"}]})
    response = await handle.handle_management("GET", "/v0/management/mgmt/x")
    assert response.status == 502
    assert "unknown method management.handle" in response.body.decode()
    assert (await handle.handle_management("GET", "/v0/management/mgmt/unknown")).status == 404


async def test_higher_priority_plugin_wins_a_route_collision(c_builds: Builds, native_runtime, load_native: Loader):
    low = await load_native(c_builds["example_c"], "low", priority=1)
    high = await load_native(c_builds["example_c"], "high", priority=9)
    # both declare example-c/status; the higher priority plugin serves it
    owners = {(r.method, r.path): r.plugin_id for r in native_runtime.management_routes()}
    assert owners[("GET", "/v0/management/example-c/status")] == "high"
    assert owners[("GET", "/v0/resource/plugins/low/index.html")] == "low"
    refused = await native_runtime.handle_management("low", "GET", "/v0/management/example-c/status")
    assert refused.status == 404 and b"served by plugin 'high'" in refused.body
    assert (await native_runtime.handle_management("high", "GET", "/v0/management/example-c/status")).status == 200
    assert low.descriptor.priority == 1 and high.descriptor.priority == 9


async def test_capability_lists_are_ordered_by_priority_then_id(c_builds: Builds, native_runtime, load_native: Loader):
    await load_native(c_builds["example_c"], "b-low", priority=1)
    await load_native(c_builds["example_c"], "a-high", priority=9)
    await load_native(c_builds["example_c"], "c-high", priority=9)
    await load_native(c_builds["bad_meta"], "inactive", priority=99)
    assert [h.plugin_id for h in native_runtime.with_capability("bot")] == ["a-high", "c-high", "b-low"]
