"""Properties: any reply bytes give a result or a NativeCallError; routes never escape their base."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from plughost.runtime.native.envelope import NativeCallError, decode_reply
from plughost.runtime.native.management import route_table
from plughost.sdk.http import MANAGEMENT_BASE, resource_base

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
@given(path_parts, st.booleans(), st.sampled_from(["get", "POST", "brew", ""]), st.sampled_from(["", "Menu"]))
def test_normalised_routes_stay_under_their_base(parts: list[str], absolute: bool, method: str, menu: str) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    route = {"Method": method, "Path": path, "Menu": menu}
    table = route_table("alpha", {"routes": [route], "resources": [{"Path": path}]})
    for spec in table.specs:
        base = MANAGEMENT_BASE if spec.kind == "route" else resource_base("alpha")
        assert spec.path.startswith(base + "/") and not spec.path.endswith("/")
        assert ".." not in spec.path.split("/") and " " not in spec.path and ":" not in spec.path
        assert spec.method == spec.method.upper() and (spec.kind == "route" or spec.method == "GET")
    assert len(table.specs) + len(table.rejected) == 2
