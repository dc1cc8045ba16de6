"""Properties: any reply bytes give a result or a NativeCallError; routes never escape their base."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from plughost.runtime.native.envelope import NativeCallError, decode_reply
from plughost.runtime.native.management import MANAGEMENT_BASE, build_route_table, resource_base

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()), st.integers(-3, 3))
def test_any_reply_decodes_or_raises_a_native_call_error(data: bytes, rc: int) -> None:
    try:
        decode_reply("p", "m", rc, data)
    except NativeCallError as exc:
        assert str(exc)
    else:
        assert rc == 0  # a non-zero rc is never a success


path_parts = st.lists(st.sampled_from(["a", "..", ".", "", "x y", "b:c", "*", "v0", "management", "%2e"]), max_size=5)


@settings(max_examples=300, deadline=None)
@given(path_parts, st.booleans(), st.sampled_from(["get", "POST", "brew", ""]))
def test_normalised_routes_stay_under_their_base(parts: list[str], absolute: bool, method: str) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    table = build_route_table("alpha", {"routes": [{"Method": method, "Path": path}], "resources": [{"Path": path}]})
    for route in table.routes:
        base = MANAGEMENT_BASE if route.kind == "route" else resource_base("alpha")
        assert route.path == base or route.path.startswith(base + "/")
        assert ".." not in route.path.split("/") and " " not in route.path and ":" not in route.path
        assert route.method == route.method.upper()
    assert len(table.routes) + len(table.rejected) == 2
