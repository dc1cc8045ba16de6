"""The C and Rust example plugins, built with the real compilers, through the real loader."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from plughost.runtime.native import NativePluginHandle
from plughost.sdk.call import Action, Call
from plughost.sdk.http import HttpRequest, HttpResponse
from tests.native.conftest import Builds, Loader
from tests.native.test_callbacks import http_server  # noqa: F401  (fixture)

EXAMPLE_IDS = {"c": "example-c", "rust": "example-rust"}


def command_payload(*words: str, group_id: int | None = None) -> dict[str, object]:
    """The command payload the engine sends (see plughost.sdk.commands)."""
    sender = {"kind": "member" if group_id else "console", "user_id": 10001, "group_id": group_id}
    return {"context": {"sender": sender, "command": "echo"}, "args": {}, "varargs": list(words), "words": list(words)}


def http_call(method: str, path: str, **fields: Any) -> Call:
    """The call the management server makes for a native plugin's route."""
    return Call("management.handle", HttpRequest(method, path, **fields).to_payload(), "http")


@pytest.fixture(params=["c", "rust"])
def example(request: pytest.FixtureRequest) -> tuple[str, Path]:
    if request.param == "c":
        builds: Builds = request.getfixturevalue("c_builds")
        return "c", builds["example_c"]
    return "rust", request.getfixturevalue("rust_example")


@pytest.fixture
async def plugin(example: tuple[str, Path], load_native: Loader) -> NativePluginHandle:
    lang, path = example
    return await load_native(path, EXAMPLE_IDS[lang], config={"greeting": "Hi"}, priority=5)


async def test_register_metadata_and_bot_descriptor(plugin: NativePluginHandle, example: tuple[str, Path]):
    d = plugin.descriptor
    assert d.metadata["active"] is True, d.metadata["inactive_reason"]
    assert d.metadata["plugin"]["Name"] == EXAMPLE_IDS[example[0]]
    assert d.capabilities == {"management_api", "bot"}
    echo = next(c for c in d.commands if c.name == "echo")
    assert echo.aliases == ("say",) and echo.overloads[0].handler == "echo"
    assert echo.overloads[0].params[0].variadic is True
    assert [(r.kind, r.events, r.handler) for r in d.routes] == [("notice", ("GroupPoke",), "on_poke")]
    assert [(i.stage, i.handler) for i in d.interceptors] == [("pre_handle", "guard")]
    assert d.priority == 5


async def test_bot_command_replies_logs_and_queues_sends_in_order(
    plugin: NativePluginHandle, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO):
        outcome = await plugin.call(Call("echo", command_payload("hello", "wörld", group_id=20002), "command"))
    assert outcome.value == [[{"type": "text", "data": {"text": "Hi, hello wörld"}}]]
    assert outcome.sends == (
        Action("send_group_msg", {"group_id": 20002, "message": [{"type": "text", "data": {"text": "(echo logged)"}}]}),
    )
    assert any("echo called" in r.getMessage() and "group=20002" in r.getMessage() for r in caplog.records)
    assert plugin.take_pending_sends() == []  # in-call sends went with the result, not to the handle


async def test_bot_route_and_pre_handle(plugin: NativePluginHandle):
    poke = {"post_type": "notice", "notice_type": "notify", "sub_type": "poke", "group_id": 1, "user_id": 2}
    answer = await plugin.call(Call("on_poke", {"event": poke, "group_id": "1"}, "route"))
    assert answer.value == {"action": "reply", "text": "ouch"}
    spam = await plugin.call(Call("guard", {"event": {"raw_message": "buy spam"}}, "pre_handle"))
    assert spam.value == {"action": "block", "reason": "spam"}
    hello = await plugin.call(Call("guard", {"event": {"raw_message": "hello"}}, "pre_handle"))
    assert hello.value == {"action": "allow"}


async def test_bot_fetch_uses_host_http_do(plugin: NativePluginHandle, http_server):  # noqa: F811
    url, seen = http_server
    outcome = await plugin.call(Call("fetch", command_payload(f"{url}/ping"), "command"))
    assert outcome.value == [[{"type": "text", "data": {"text": "status 201"}}]]
    assert seen[0]["path"] == "/ping"


async def test_management_routes_are_normalised_and_served_as_http_calls(
    plugin: NativePluginHandle, example: tuple[str, Path]
):
    plugin_id = EXAMPLE_IDS[example[0]]
    resources = f"/v0/resource/plugins/{plugin_id}"
    assert [(s.kind, s.method, s.path, s.handler) for s in plugin.descriptor.http] == [
        ("route", "GET", f"/v0/management/{plugin_id}/status", "management.handle"),
        ("resource", "GET", f"{resources}/index.html", "management.handle"),
        ("resource", "GET", f"{resources}/status", "management.handle"),  # registered as "/status"
    ]
    assert plugin.descriptor.metadata["management"] == {"rejected": []}
    page = await plugin.call(http_call("GET", f"{resources}/index.html"))
    who = "C" if example[0] == "c" else "Rust"
    assert HttpResponse.from_value(page.value) == HttpResponse.html(f"<h1>Hi from {who}</h1>")
    await plugin.call(Call("echo", command_payload("x"), "command"))
    for path in (f"/v0/management/{plugin_id}/status", f"{resources}/status"):
        status = HttpResponse.from_value((await plugin.call(http_call("GET", path, query={"q": ["1"]}))).value)
        assert status.status == 200 and json.loads(status.body) == {"calls": 1, "greeting": "Hi"}
        assert status.headers == {"Content-Type": ["application/json"]}


async def test_reconfigure_changes_the_greeting(plugin: NativePluginHandle):
    await plugin.reconfigure({"greeting": "Ahoy"})
    outcome = await plugin.call(Call("echo", command_payload("there"), "command"))
    assert outcome.value == [[{"type": "text", "data": {"text": "Ahoy, there"}}]]
