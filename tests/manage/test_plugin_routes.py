"""Python plugins' HTTP routes and resources on the management server: served, failing, too slow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conftest import PluginWriter
from tests.manage.support import serve

WEB_PLUGIN = """
import asyncio

from plughost import HttpRequest, HttpResponse, Plugin

plugin = Plugin()
hits = []

@plugin.http_resource("/status", menu="Web status")
def status() -> HttpResponse:
    return HttpResponse.html(f"<p>{len(hits)} hits</p>")

@plugin.http_route("POST", "web/echo")
async def echo(request: HttpRequest) -> dict:
    hits.append(request.path)
    return {"body": request.json(), "q": request.query_param("q"), "agent": request.header("x-agent")}

@plugin.http_route("GET", "/web/boom")
def boom() -> str:
    raise RuntimeError("route exploded")

@plugin.http_route("GET", "/web/slow")
async def slow() -> str:
    await asyncio.sleep(60)
    return "late"

@plugin.http_route("GET", "/web/teapot")
def teapot() -> HttpResponse:
    return HttpResponse(418, {"X-Brew": ["green", "black"]}, b"short and stout")
"""


async def test_python_routes_resources_and_failures(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("web", WEB_PLUGIN)
    async with serve(workspace, route_timeout_s=0.5) as running:
        api = running.client
        echo = await api.post("/v0/management/web/echo", params={"q": "1"}, json={"a": 1}, headers={"X-Agent": "t"})
        assert echo.status_code == 200 and echo.json() == {"body": {"a": 1}, "q": "1", "agent": "t"}
        async with httpx.AsyncClient(base_url=running.server.url) as browser:
            page = await browser.get("/v0/resource/plugins/web/status")
            assert (page.status_code, page.text) == (200, "<p>1 hits</p>")
            assert page.headers["content-security-policy"] == "sandbox allow-scripts allow-forms allow-popups"
            assert (await browser.post("/v0/management/web/echo", json={})).status_code == 401
        teapot = await api.get("/v0/management/web/teapot")
        assert (teapot.status_code, teapot.content) == (418, b"short and stout")
        assert teapot.headers.get_list("x-brew") == ["green", "black"]

        boom = await api.get("/v0/management/web/boom")
        assert boom.status_code == 502
        assert boom.json()["error"]["code"] == "plugin_failed" and "route exploded" in boom.json()["error"]["message"]
        slow = await api.get("/v0/management/web/slow")
        assert slow.status_code == 502 and "timed out" in slow.json()["error"]["message"]
        # the host carries on: other routes, other plugins, the API itself
        assert (await api.post("/v0/management/web/echo", json=None)).status_code == 200
        assert (await api.get("/api/v1/status")).status_code == 200
        assert (await api.get("/v0/management/web/nothing")).status_code == 404
        assert (await api.delete("/v0/management/web/echo")).status_code == 404  # wrong method


async def test_plughost_routes_win_over_plugin_routes(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin(
        "squatter",
        """
from plughost import Plugin

plugin = Plugin()

@plugin.http_route("GET", "/plugins")
def plugins() -> str:
    return "not the real list"
""",
    )
    async with serve(workspace) as running:
        listed = await running.client.get("/v0/management/plugins")
        assert listed.status_code == 200 and listed.json()["plugins"][0]["id"] == "squatter"


async def test_many_concurrent_route_calls_are_all_answered(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("web", WEB_PLUGIN)
    async with serve(workspace) as running:
        answers = await asyncio.gather(
            *(running.client.post("/v0/management/web/echo", json={"n": n}) for n in range(50))
        )
        assert sorted(a.json()["body"]["n"] for a in answers) == list(range(50))


async def test_a_body_that_is_not_json_is_the_clients_mistake_not_the_plugins(
    workspace: Path, write_plugin: PluginWriter
) -> None:
    """`request.json()` on a body that is not JSON: 400 saying why, and however often a client sends
    one, the plugin's breaker stays closed (before, three such requests isolated the plugin)."""
    write_plugin("web", WEB_PLUGIN)
    async with serve(workspace) as running:
        api = running.client
        threshold = running.host.manager.guard.policy.breaker.failure_threshold
        for body in [b"notjson", b"{", b"\xff\xfe"] * threshold:
            bad = await api.post("/v0/management/web/echo", content=body, headers={"Content-Type": "application/json"})
            assert bad.status_code == 400, bad.text
            error = bad.json()["error"]
            assert error["code"] == "bad_request" and error["message"].startswith("the request body is not JSON: ")
        assert running.host.manager.guard.snapshot("web")["breaker"]["consecutive_failures"] == 0
        echo = await api.post("/v0/management/web/echo", json={"a": 1})
        assert echo.status_code == 200 and echo.json()["body"] == {"a": 1}
