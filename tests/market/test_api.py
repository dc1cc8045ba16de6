"""`/api/v1/market/...` on a real management server: the same operations, errors in the one error shape."""

from __future__ import annotations

from pathlib import Path

from tests.manage.support import serve
from tests.market.conftest import Index, market_config, python_plugin


async def test_the_market_through_the_management_api(tmp_path: Path, index: Index) -> None:
    src = tmp_path / "src"
    index.publish(python_plugin(src, "app", "1.0.0", deps=("lib",)))
    index.publish(python_plugin(src, "lib", "1.0.0"))
    index.publish(python_plugin(src, "tampered", "1.0.0"), sha256="f" * 64)
    workspace = tmp_path / "ws"
    (workspace / "plugins").mkdir(parents=True)
    market_config(workspace, ("test", index.url))
    async with serve(workspace) as running:
        api = running.client
        refreshed = (await api.post("/api/v1/market/refresh")).json()
        assert refreshed["indexes"][0] | {"fetched_at": 0} == {
            "name": "test", "url": index.url, "priority": 0, "source": "network", "plugins": 3, "fetched_at": 0,
            "signed_by": None, "warning": None, "error": None,
        }  # fmt: skip
        found = (await api.get("/api/v1/market/search", params={"q": "app"})).json()
        assert [h["id"] for h in found["results"]] == ["app"]
        assert (await api.get("/api/v1/market/plugins/app")).json()["latest"] == "1.0.0"

        installed = await api.post("/api/v1/market/install", json={"id": "app"})
        assert installed.status_code == 200, installed.text
        assert [(c["id"], c["state"]) for c in installed.json()["changes"]] == [("lib", "enabled"), ("app", "enabled")]
        called = await api.post("/api/v1/plugins/app/execute", json={"method": "version"})
        assert called.json()["result"] == "1.0.0"
        rows = (await api.get("/api/v1/market/installed")).json()["plugins"]
        assert [(r["id"], r["dependency"], r["state"]) for r in rows] == [
            ("app", False, "enabled"),
            ("lib", True, "enabled"),
        ]

        refused = await api.post("/api/v1/market/install", json={"id": "tampered"})
        assert refused.status_code == 502
        assert refused.json()["error"]["code"] == "checksum_mismatch"
        assert set(refused.json()["error"]["detail"]) == {"expected", "actual"}
        missing = await api.post("/api/v1/market/install", json={"id": "ghost"})
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "market_not_found")
        blocked = await api.post("/api/v1/market/uninstall", json={"id": "lib"})
        assert blocked.status_code == 409 and blocked.json()["error"]["detail"]["dependents"] == ["app"]
        bad = await api.post("/api/v1/market/install", json={"id": "../etc"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
        nothing = await api.post("/api/v1/market/rollback", json={"id": "app"})
        assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "no_previous_version")

        forced = (await api.post("/api/v1/market/uninstall", json={"id": "lib", "force": True})).json()
        assert forced["dependents"] == ["app"]
        history = (await api.get("/api/v1/market/history/lib")).json()
        assert [e["action"] for e in history["entries"]] == ["install", "uninstall"]
        assert running.host.manager.get_plugin("lib") is None
        unknown = await api.get("/api/v1/market/history/ghost")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_installed")

        # deleted the CLIProxyAPI way: the market forgets it too, and it can be installed again
        deleted = await api.delete("/v0/management/plugins/app")
        assert deleted.status_code == 200 and deleted.json()["file_deleted"] is True, deleted.text
        assert (await api.get("/api/v1/market/installed")).json()["plugins"] == []
        assert [e["action"] for e in (await api.get("/api/v1/market/history/app")).json()["entries"]][-1] == "uninstall"
        again = await api.post("/api/v1/market/install", json={"id": "app"})
        assert again.status_code == 200, again.text
