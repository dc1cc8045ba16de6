"""Jank's HTTP plugin API (`/api/v1/plugin/...`) served by plughost, driving a real Jank-style Go plugin."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from tests.manage.support import serve

JANK_ID = "com.example.jank-echo"


def data(response: httpx.Response, status: int = 200) -> object:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["requestId"], str) and body["requestId"]
    assert isinstance(body["timeStamp"], int)
    assert "error" not in body
    return body["data"]


def error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    return dict(body["error"])


async def test_jank_lifecycle_over_http_with_a_go_plugin(workspace: Path, go_plugins: dict[str, Path]) -> None:
    shutil.copytree(go_plugins["jank-echo"], workspace / "plugins" / "jank-echo")
    async with serve(workspace) as running:
        api = running.client
        listed = data(await api.get("/api/v1/plugin/list", params={"page_no": 1, "page_size": 10}))
        assert listed["total"] == 1 and listed["list"][0]["status"] == "running"  # type: ignore[index]

        assert data(await api.post("/api/v1/plugin/unregister", json={"id": JANK_ID})) == {
            "message": "Plugin unregistered successfully"
        }
        assert data(await api.get("/api/v1/plugin/get", params={"id": JANK_ID}))["status"] == "stopped"  # type: ignore[index]
        error(await api.post("/api/v1/plugin/unregister", json={"id": JANK_ID}), 409, "20003")
        failed = await api.post("/api/v1/plugin/execute", json={"id": JANK_ID, "method": "add", "args": {}})
        error(failed, 500, "20004")

        assert data(await api.post("/api/v1/plugin/register", json={"id": JANK_ID})) == {
            "message": "Plugin registered successfully"
        }
        info = data(await api.get("/api/v1/plugin/get", params={"id": JANK_ID}))
        assert info["status"] == "running" and info["type"] == "handler" and info["author"] == "plughost"  # type: ignore[index]
        assert info["start_timeout"] == 10000  # type: ignore[index]

        add = {"id": JANK_ID, "method": "add", "args": {"a": 2, "b": 3}}
        assert data(await api.post("/api/v1/plugin/execute", json=add)) == {"method": "add", "data": {"sum": 5}}
        failed = await api.post("/api/v1/plugin/execute", json={"id": JANK_ID, "method": "fail", "args": {}})
        assert "fail was asked to fail" in error(failed, 500, "20004")["message"]
