"""HTTP routes of a Python plugin: the same `http` calls answer the same outcomes in-process and in
a worker (over the invoke lane and over gRPC), and a worker's routes reach the host's descriptor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plughost.core.manager import PluginManager
from plughost.errors import PluginLoadError
from plughost.guard import Guard
from plughost.runtime import default_runtimes
from plughost.sdk.call import Call, Outcome
from plughost.sdk.http import HttpRequest, HttpResponse

PLUGIN = """
import os

from pydantic import BaseModel

from plughost.sdk import HttpRequest, HttpResponse, Plugin, PluginContext

plugin = Plugin()


class Note(BaseModel):
    text: str
    length: int


@plugin.http_route("GET", "/status", description="the plugin's status")
async def status(request: HttpRequest, ctx: PluginContext) -> dict:
    return {"plugin": ctx.plugin_id, "verbose": request.query_param("verbose"), "agent": request.header("user-agent")}


@plugin.http_route("POST", "notes")
def add_note(req, log) -> HttpResponse:  # sync, the request and the logger by name
    data = req.json()
    log.info("adding %s", data)
    return HttpResponse.json(Note(text=data["text"], length=len(data["text"])), status=201)


@plugin.http_resource("/status", menu="Web", description="a page")
def page() -> str:
    return "all good"


@plugin.http_resource("logo.bin")
async def logo(request) -> bytes:
    return request.body or bytes([137, 80, 78, 71])


@plugin.http_route("GET", "page", menu="Legacy")  # a GET route with a menu is a resource
def legacy(request: HttpRequest) -> HttpResponse:
    return HttpResponse.html(f"<p>{request.method} {request.path}</p>", status=203)


@plugin.http_route("DELETE", "notes")
def refuse(request: HttpRequest) -> None:
    raise PermissionError("notes are forever")


@plugin.http_route("PUT", "model")
async def model(request: HttpRequest) -> Note:
    return Note(text=request.text(), length=len(request.body))


@plugin.http_route("GET", "pid")
def pid() -> int:
    return os.getpid()
"""

PLACEMENTS = ["worker", "worker-grpc"]
BASE = "/v0/resource/plugins/web"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "web"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "web"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(PLUGIN)
    return directory


def http_call(method: str, path: str, *, handler: str | None = None, **fields: Any) -> Call:
    """The call the management server makes for a request (the handler named by the route's spec)."""
    request = HttpRequest(method, path, **fields)
    return Call(handler or f"http:{method} {path}", request.to_payload(), "http")


CALLS = [
    http_call("GET", "/v0/management/status", headers={"User-Agent": ["t/1"]}, query={"verbose": ["1", "2"]}),
    http_call("POST", "/v0/management/notes", body=b'{"text": "h\xc3\xa9llo"}'),
    http_call("GET", f"{BASE}/status"),
    http_call("GET", f"{BASE}/logo.bin"),
    http_call("GET", f"{BASE}/logo.bin", body=b"\x00\xff"),
    http_call("HEAD", f"{BASE}/page", handler=f"http:GET {BASE}/page"),  # HEAD served by the GET route
    http_call("DELETE", "/v0/management/notes"),
    http_call("PUT", "/v0/management/model", body=b"abc"),
    Call("http:GET /v0/management/status", {"method": "GET", "path": "/", "body": "not base64!"}, "http"),
    Call("http:GET /v0/management/nope", HttpRequest().to_payload(), "http"),
]


async def transcript(handle: Any) -> list[Any]:
    guard = Guard()
    lines: list[Any] = []
    for call in CALLS:
        outcome = await guard.call("web", handle, call)
        error = outcome.error
        response = HttpResponse.from_value(outcome.value) if outcome.ok else None
        lines.append((call.handler, response, error and (error.code, error.type, error.message)))
    return lines


@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_http_calls_answer_the_same_in_process_and_in_a_worker(
    load_python: Any, web_dir: Path, placement: str
) -> None:
    local = await load_python(web_dir, "in_process")
    remote = await load_python(web_dir, placement)
    assert remote.descriptor.to_json() == local.descriptor.to_json()
    assert [(s.kind, s.method, s.path, s.menu) for s in local.descriptor.http] == [
        ("route", "GET", "/v0/management/status", ""),
        ("route", "POST", "/v0/management/notes", ""),
        ("resource", "GET", f"{BASE}/status", "Web"),
        ("resource", "GET", f"{BASE}/logo.bin", ""),
        ("resource", "GET", f"{BASE}/page", "Legacy"),
        ("route", "DELETE", "/v0/management/notes", ""),
        ("route", "PUT", "/v0/management/model", ""),
        ("route", "GET", "/v0/management/pid", ""),
    ]
    json_type = {"Content-Type": ["application/json"]}
    expected = await transcript(local)
    assert [line[1] for line in expected[:8]] == [
        HttpResponse(200, json_type, b'{"plugin":"web","verbose":"1","agent":"t/1"}'),
        HttpResponse(201, json_type, '{"text":"héllo","length":5}'.encode()),
        HttpResponse.text("all good"),
        HttpResponse(200, {"Content-Type": ["application/octet-stream"]}, b"\x89PNG"),
        HttpResponse(200, {"Content-Type": ["application/octet-stream"]}, b"\x00\xff"),
        HttpResponse.html(f"<p>HEAD {BASE}/page</p>", status=203),
        None,
        HttpResponse(200, json_type, b'{"text":"abc","length":3}'),
    ]
    assert expected[6][2] == ("plugin_error", "PermissionError", "notes are forever")
    assert expected[8][2] == ("invalid_request", "InvocationError", expected[8][2][2])
    assert "invalid http request: an http body is not standard base64" in expected[8][2][2]
    assert expected[9][2][0] == "unknown_handler"
    assert await transcript(remote) == expected


async def test_a_worker_hosted_plugin_serves_its_routes_through_the_manager(web_dir: Path) -> None:
    """`isolation = "process"` in plugin.toml: the routes arrive with the worker's descriptor and the
    server's dispatch — find the spec, call its handler with kind "http" — reaches the worker."""
    workspace = web_dir.parent / "workspace"
    (workspace / "plugins").mkdir(parents=True)
    target = workspace / "plugins" / "web"
    target.mkdir()
    (target / "plugin.toml").write_text('id = "web"\nversion = "1.0.0"\nisolation = "process"\n')
    (target / "plugin.py").write_text(PLUGIN)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 1
        instance = manager.get_plugin("web")
        assert instance is not None and instance.descriptor is not None, instance and instance.error
        specs = {(s.method, s.path): s for s in instance.descriptor.http}
        spec = specs[("GET", "/v0/management/pid")]
        outcome: Outcome = await manager.call(
            "web", Call(spec.handler, HttpRequest("GET", spec.path).to_payload(), "http")
        )
        response = HttpResponse.from_value(outcome.value)
        assert response.status == 200 and int(response.body) != os.getpid()  # served by the worker
        page = specs[("GET", f"{BASE}/status")]
        outcome = await manager.call("web", Call(page.handler, HttpRequest("GET", page.path).to_payload(), "http"))
        assert HttpResponse.from_value(outcome.value) == HttpResponse.text("all good")


async def test_a_worker_cannot_claim_another_plugins_resources(tmp_path: Path, load_python: Any) -> None:
    """The host checks the http specs a worker describes: plugin code in the worker could forge them."""
    directory = tmp_path / "forger"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "forger"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(
        "import dataclasses\n"
        "from plughost.sdk import HttpRouteSpec, Plugin\n"
        "plugin = Plugin()\n"
        "honest = plugin.describe\n"
        "forged = HttpRouteSpec('resource', 'GET', '/v0/resource/plugins/victim/login', 'h')\n"
        "plugin.describe = lambda: dataclasses.replace(honest(), http=(forged,))\n"
    )
    with pytest.raises(PluginLoadError, match="invalid descriptor: ValueError: http resource GET "
                       "/v0/resource/plugins/victim/login is not normalised"):  # fmt: skip
        await load_python(directory, "worker")
