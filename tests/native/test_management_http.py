"""Native plugins' management routes and resources over the real management server, and CLIProxyAPI's
plugin management routes — CLIProxyAPI's own management-api example and the C example, each
in-process and in a worker."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.manage.support import serve

WHERE = ("local", "worker")


async def test_resources_are_public_and_routes_need_the_key(placed_workspace: Path) -> None:
    async with serve(placed_workspace) as running:
        async with httpx.AsyncClient(base_url=running.server.url) as browser:
            for where in WHERE:
                page = await browser.get(f"/v0/resource/plugins/cliproxy-management-api-{where}/status")
                assert page.status_code == 200, page.text
                assert page.headers["content-type"] == "text/html; charset=utf-8"
                assert "Management API resource" in page.text
                example = await browser.get(f"/v0/resource/plugins/example-c-{where}/index.html")
                assert example.text == "<h1>Hello from C</h1>"
            refused = await browser.get("/v0/management/example-c/status")
            assert refused.status_code == 401
            escape = await browser.get("/v0/resource/plugins/example-c-local/%2e%2e/example-c-worker/status")
            assert escape.status_code == 404
            assert (await browser.post("/v0/resource/plugins/example-c-local/status")).status_code == 405
        counter = await running.client.get("/v0/management/example-c/status")  # the higher-priority/first id wins
        assert counter.status_code == 200 and counter.json()["greeting"] == "Hello"
        unknown = await running.client.get("/v0/management/nobody/here")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_cliproxyapi_plugin_list_config_enable_and_delete(placed_workspace: Path) -> None:
    async with serve(placed_workspace) as running:
        api = running.client
        listed = (await api.get("/v0/management/plugins")).json()
        assert listed["plugins_enabled"] is True
        entries = {p["id"]: p for p in listed["plugins"]}
        assert sorted(entries) == [f"{b}-{w}" for b in ("cliproxy-management-api", "example-c") for w in WHERE]
        local = entries["cliproxy-management-api-local"]
        assert local["registered"] and local["enabled"] and local["effective_enabled"]
        assert local["metadata"]["name"] == "example-management-api-c"
        assert local["logo"] == "https://example.invalid/example-management-api-c.png"
        assert local["menus"] == [
            {
                "path": "/v0/resource/plugins/cliproxy-management-api-local/status",
                "menu": "Management API",
                "description": "CPA exposes this menu resource under "
                "/v0/resource/plugins/example-management-api-c/status.",
            }
        ]
        assert {m["menu"] for m in entries["example-c-worker"]["menus"]} == {"Example C", "Example C status"}

        plugin = "example-c-worker"
        assert (await api.get(f"/v0/management/plugins/{plugin}/config")).json() == {"enabled": True, "priority": 0}
        put = await api.put(f"/v0/management/plugins/{plugin}/config", json={"greeting": "Hej", "priority": 7})
        assert put.json() == {"status": "ok"}
        assert (await api.get(f"/v0/management/plugins/{plugin}/config")).json() == {
            "greeting": "Hej",
            "enabled": True,
            "priority": 7,
        }
        status = await api.get(f"/v0/resource/plugins/{plugin}/status")
        assert status.json()["greeting"] == "Hej"  # reconfigured in the worker
        patch = await api.patch(f"/v0/management/plugins/{plugin}/config", json={"greeting": None})
        assert patch.json() == {"status": "ok"}
        assert "greeting" not in (await api.get(f"/v0/management/plugins/{plugin}/config")).json()

        off = await api.patch(f"/v0/management/plugins/{plugin}/enabled", json={"enabled": False})
        assert off.json() == {"status": "ok"}
        assert (await api.get(f"/v0/resource/plugins/{plugin}/status")).status_code == 404  # disabled: not served
        assert "example-c-worker = false" in (placed_workspace / "plugin-state.toml").read_text()

        deleted = (await api.delete(f"/v0/management/plugins/{plugin}")).json()
        assert deleted["status"] == "deleted" and deleted["file_deleted"] is True
        assert not (placed_workspace / "plugins" / f"{plugin}.so").exists()
        assert "example-c-worker" not in (placed_workspace / "plugin-state.toml").read_text()
        assert (await api.get(f"/v0/management/plugins/{plugin}/config")).status_code == 404


async def test_cliproxyapi_bad_inputs(placed_workspace: Path) -> None:
    async with serve(placed_workspace) as running:
        api = running.client
        plugin = "example-c-local"

        def error(response: httpx.Response, status: int, code: str) -> None:
            assert response.status_code == status, response.text
            assert response.json()["error"] == code and response.json()["message"]

        error(await api.get("/v0/management/plugins/-bad-/config"), 400, "invalid_plugin_id")
        error(await api.get("/v0/management/plugins/ghost/config"), 404, "plugin_not_found")
        error(await api.delete("/v0/management/plugins/ghost"), 404, "plugin_not_found")
        error(await api.patch(f"/v0/management/plugins/{plugin}/enabled", json={}), 400, "invalid_body")
        error(await api.patch(f"/v0/management/plugins/{plugin}/enabled", json={"enabled": "yes"}), 400, "invalid_body")
        error(await api.put(f"/v0/management/plugins/{plugin}/config", json=[1]), 400, "invalid_body")
        error(await api.put(f"/v0/management/plugins/{plugin}/config", json={"priority": 5000}), 400, "invalid_config")
        error(await api.put(f"/v0/management/plugins/{plugin}/config", json={"enabled": 1}), 400, "invalid_config")
        assert (await api.get(f"/v0/management/plugins/{plugin}/config")).json() == {"enabled": True, "priority": 0}
        assert (placed_workspace / "plugins" / f"{plugin}.so").exists()
