"""Jank's HTTP plugin API: paging, filters and every bad input, answered in Jank's envelope."""

from __future__ import annotations

import httpx

from tests.manage.support import Running


def jank_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "requestId", "timeStamp"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return dict(body["error"])


async def test_pages_and_status_filter(running: Running) -> None:
    api = running.client
    first = (await api.get("/api/v1/plugin/list", params={"page_no": 1, "page_size": 1})).json()["data"]
    second = (await api.get("/api/v1/plugin/list", params={"page_no": 2, "page_size": 1})).json()["data"]
    beyond = (await api.get("/api/v1/plugin/list", params={"page_no": 3, "page_size": 1})).json()["data"]
    assert first["total"] == second["total"] == 2
    assert {first["list"][0]["id"], second["list"][0]["id"]} == {"plain", "settings"}
    assert beyond["list"] == []
    await api.post("/api/v1/plugins/plain/disable")
    stopped = (await api.get("/api/v1/plugin/list", params={"page_no": 1, "page_size": 10, "status": "stopped"})).json()
    assert [p["id"] for p in stopped["data"]["list"]] == ["plain"]


async def test_execute_wraps_non_object_answers(running: Running) -> None:
    answer = await running.client.post("/api/v1/plugin/execute", json={"id": "plain", "method": "hi"})
    assert answer.json()["data"] == {"method": "hi", "data": {"result": "hi"}}


async def test_register_enables_a_disabled_plugin_and_persists(running: Running) -> None:
    await running.client.post("/api/v1/plugins/plain/disable")
    answer = await running.client.post("/api/v1/plugin/register", json={"id": "plain"})
    assert answer.status_code == 200
    assert running.host.manager.get_plugin("plain").is_enabled  # type: ignore[union-attr]
    assert "plain = true" in (running.workspace / "plugin-state.toml").read_text(encoding="utf-8")


async def test_bad_inputs_answer_in_janks_envelope(running: Running) -> None:
    api = running.client
    jank_error(await api.get("/api/v1/plugin/list", params={"page_no": 0, "page_size": 10}), 400, "10002")
    jank_error(await api.get("/api/v1/plugin/list", params={"page_no": 1, "page_size": 101}), 400, "10002")
    jank_error(await api.get("/api/v1/plugin/list"), 400, "10002")
    jank_error(await api.get("/api/v1/plugin/get"), 400, "10002")
    jank_error(await api.post("/api/v1/plugin/register", json={}), 400, "10002")
    jank_error(await api.post("/api/v1/plugin/execute", json={"id": "plain"}), 400, "10002")
    malformed = await api.post("/api/v1/plugin/execute", content=b"{", headers={"Content-Type": "application/json"})
    jank_error(malformed, 400, "10002")
    jank_error(await api.get("/api/v1/plugin/get", params={"id": "ghost"}), 404, "20001")
    jank_error(await api.post("/api/v1/plugin/register", json={"id": "ghost"}), 404, "20001")
    jank_error(await api.post("/api/v1/plugin/unregister", json={"id": "ghost"}), 404, "20001")
    jank_error(await api.post("/api/v1/plugin/execute", json={"id": "ghost", "method": "x"}), 404, "20001")
    unknown_method = await api.post("/api/v1/plugin/execute", json={"id": "plain", "method": "nope"})
    jank_error(unknown_method, 500, "20004")


async def test_register_reports_an_invalid_manifest(running: Running) -> None:
    broken = running.workspace / "plugins" / "broken"
    broken.mkdir()
    (broken / "plugin.toml").write_text('id = "broken"\nversion = 5\n', encoding="utf-8")
    answer = await running.client.post("/api/v1/plugin/register", json={"id": "broken"})
    assert "version" in jank_error(answer, 409, "20002")["message"]


async def test_jank_routes_need_the_key(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as anonymous:
        answer = await anonymous.get("/api/v1/plugin/list", params={"page_no": 1, "page_size": 10})
        assert answer.status_code == 401
