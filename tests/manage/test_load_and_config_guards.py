"""Loading by path and saving configurations: bad input is refused, nothing is registered, lost or half-saved."""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost.core.config_schema import MAX_CONFIG_DEPTH
from plughost.core.discovery import candidate_from_path
from plughost.errors import PluginLoadError
from tests.conftest import PluginWriter
from tests.manage.support import Running, serve
from tests.manage.test_api import assert_error

JSON = {"Content-Type": "application/json"}
PICKY_PLUGIN = """
from plughost import Plugin, PluginContext

plugin = Plugin()
current = {}

@plugin.on_reconfigure
def reconfigure(ctx: PluginContext, config: dict) -> None:
    if config.get("mood") == "grumpy":
        raise ValueError("grumpy is not a mood I take")
    current.clear()
    current.update(config)

@plugin.method()
def config() -> dict:
    return current
"""


@pytest.fixture
async def picky(manage_workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[Running]:
    write_plugin("picky", PICKY_PLUGIN)
    async with serve(manage_workspace) as served:
        yield served


def registered(running: Running) -> set[str]:
    running.host.manager.registry.flush()
    data = json.loads((running.workspace / ".plughost" / "registry.json").read_text(encoding="utf-8"))
    return {entry["id"] for entry in (data["plugins"] if isinstance(data, dict) else data)}


async def ids(running: Running) -> set[str]:
    return {p["id"] for p in (await running.client.get("/api/v1/plugins")).json()["plugins"]}


# loading by path -----------------------------------------------------------------------------
async def test_a_file_of_another_plugin_is_not_loaded_and_never_deleted(running: Running) -> None:
    source = running.workspace / "plugins" / "settings" / "plugin.py"
    before, known = source.read_text(encoding="utf-8"), await ids(running)
    inside = await running.client.post("/api/v1/plugins/load", json={"path": "plugins/settings/plugin.py"})
    error = assert_error(inside, 409, "conflict")
    assert "plugin 'settings'" in str(error["message"])
    manifest = await running.client.post("/api/v1/plugins/load", json={"path": "plugins/settings/plugin.toml"})
    assert_error(manifest, 422, "not_a_plugin")
    holding = await running.client.post("/api/v1/plugins/load", json={"path": "plugins"})
    assert_error(holding, 422, "not_a_plugin")
    assert await ids(running) == known and "plugin" not in registered(running)
    assert source.read_text(encoding="utf-8") == before

    # an entry on another plugin's file (as older hosts left behind) is never deleted with it
    manager = running.host.manager
    manager._record_failure(candidate_from_path(source), "the module declares another id")
    deleted = await running.client.delete("/v0/management/plugins/plugin")
    assert deleted.status_code == 409, deleted.text
    assert deleted.json()["error"] == "plugin_path_shared" and "settings" in deleted.json()["message"]
    assert source.read_text(encoding="utf-8") == before
    answer = await running.client.post(
        "/api/v1/plugins/settings/execute", json={"method": "echo", "args": {"text": "ok"}}
    )
    assert answer.json()["result"] == "ok"


async def test_a_path_that_is_no_plugin_is_refused_and_leaves_no_entry(running: Running, tmp_path: Path) -> None:
    known = await ids(running)
    passwd = await running.client.post("/api/v1/plugins/load", json={"path": "/etc/passwd"})
    error = assert_error(passwd, 422, "not_a_plugin")
    assert error["message"] == (
        "not a plugin: /etc/passwd has no plugin manifest and is not a .py file or a plugin directory"
    )
    with pytest.raises(PluginLoadError, match="not a plugin"):  # the manager refuses it for every caller
        await running.host.manager.load_plugin("/etc/passwd")
    assert await ids(running) == known and "passwd" not in registered(running)
    assert_error(await running.client.post("/api/v1/plugins/passwd/unload"), 404, "plugin_not_found")


async def test_a_failed_load_leaves_no_entry_and_the_file_as_it_was(running: Running, tmp_path: Path) -> None:
    broken = tmp_path / "elsewhere" / "broken.py"
    broken.parent.mkdir()
    broken.write_text("raise RuntimeError('not today')\n", encoding="utf-8")
    known = await ids(running)
    error = assert_error(
        await running.client.post("/api/v1/plugins/load", json={"path": str(broken)}), 409, "load_failed"
    )
    assert "not today" in str(error["message"])
    assert await ids(running) == known and "broken" not in registered(running)
    assert broken.read_text(encoding="utf-8") == "raise RuntimeError('not today')\n"
    assert_error(await running.client.get("/api/v1/plugins/broken"), 404, "plugin_not_found")


# configuration -------------------------------------------------------------------------------
async def test_a_refused_reconfigure_answers_409_and_keeps_the_file_in_force(picky: Running) -> None:
    client, config_file = picky.client, picky.workspace / "config" / "plugins" / "picky.toml"
    assert (await client.get("/api/v1/plugins/picky/config")).json()["applied"] is True  # {} is in force
    good = await client.put("/api/v1/plugins/picky/config", json={"mood": "sunny"})
    assert good.json() == {"id": "picky", "config": {"mood": "sunny"}, "applied": True}
    refused = await client.put("/api/v1/plugins/picky/config", json={"mood": "grumpy"})
    error = assert_error(refused, 409, "reconfigure_failed")
    assert "grumpy is not a mood I take" in str(error["message"])
    assert tomllib.loads(config_file.read_text(encoding="utf-8")) == {"mood": "sunny"}
    got = (await client.get("/api/v1/plugins/picky/config")).json()
    assert got == {"id": "picky", "config": {"mood": "sunny"}, "applied": True}
    running_with = await client.post("/api/v1/plugins/picky/execute", json={"method": "config"})
    assert running_with.json()["result"] == {"mood": "sunny"}
    cliproxy = await client.put("/v0/management/plugins/picky/config", json={"mood": "grumpy"})
    assert cliproxy.status_code == 409 and cliproxy.json()["error"] == "config_not_applied"
    assert tomllib.loads(config_file.read_text(encoding="utf-8")) == {"mood": "sunny"}

    await client.post("/api/v1/plugins/picky/unload")  # saved only: not applied until it loads
    assert (await client.put("/api/v1/plugins/picky/config", json={"mood": "calm"})).json()["applied"] is False
    assert (await client.get("/api/v1/plugins/picky/config")).json()["applied"] is False


async def test_config_toml_cannot_hold_is_422_naming_the_field_and_nothing_is_saved(running: Running) -> None:
    client, config_file = running.client, running.workspace / "config" / "plugins" / "plain.toml"
    assert (await client.put("/api/v1/plugins/plain/config", json={"keep": 1})).status_code == 200
    deep = "{" + '"a":{' * 900 + '"b":1' + "}" * 901
    bodies = {
        deep: "a." * MAX_CONFIG_DEPTH,
        '{"deep": {"a": [1, null]}}': "deep.a.1",
        '{"f": 1e400}': "f",
        '{"n": 18446744073709551616}': "n",
        '{"top": null}': "top",
    }
    for body, field in bodies.items():
        for method in ("PUT", "PATCH"):
            answer = await client.request(method, "/api/v1/plugins/plain/config", content=body, headers=JSON)
            if method == "PATCH" and field == "top":
                continue  # PATCH's null removes the key
            error = assert_error(answer, 422, "invalid_config")
            fields = [f["field"] for f in error["detail"]["fields"]]  # type: ignore[index]
            assert fields and fields[0].startswith(field.rstrip(".")), (body[:40], fields)
        cliproxy = await client.put("/v0/management/plugins/plain/config", content=body, headers=JSON)
        assert cliproxy.status_code == 422 and cliproxy.json()["error"] == "invalid_config", cliproxy.text
        assert tomllib.loads(config_file.read_text(encoding="utf-8")) == {"keep": 1}
    assert (await client.get("/api/v1/plugins/plain/config")).json()["config"] == {"keep": 1}
    assert (await client.get("/api/v1/plugins/plain")).status_code == 200
    ok_depth = "{" + '"a":{' * (MAX_CONFIG_DEPTH - 1) + '"b":1' + "}" * MAX_CONFIG_DEPTH
    deepest = await client.put("/api/v1/plugins/plain/config", content=ok_depth, headers=JSON)
    assert deepest.status_code == 200, deepest.text
    assert (await client.get("/api/v1/plugins/plain")).status_code == 200


# query parameters ----------------------------------------------------------------------------
async def test_unknown_filters_and_bad_query_values_are_400_naming_the_parameter(running: Running) -> None:
    client = running.client
    for url, field in [
        ("/api/v1/plugins?state=bogus", "state"),
        ("/api/v1/plugins?runtime=cobol", "runtime"),
        ("/api/v1/plugins?status=gone", "status"),
        ("/api/v1/events?types=load,bogus", "types"),
        ("/api/v1/events/stream?types=bogus", "types"),
        ("/api/v1/events?after=abc", "after"),
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/logs?limit=abc", "limit"),
    ]:
        error = assert_error(await client.get(url), 400, "bad_parameter")
        assert field in str(error["message"]), (url, error)
    allowed = assert_error(await client.get("/api/v1/plugins?state=bogus"), 400, "bad_parameter")["detail"]
    assert "enabled" in allowed["allowed"]  # type: ignore[index]
    assert (await client.get("/api/v1/plugins?runtime=python&state=enabled")).json()["total"] == 2
    assert (await client.get("/api/v1/events?types=load,enable")).status_code == 200


async def test_a_malformed_last_event_id_is_400(running: Running) -> None:
    answer = await running.client.get("/api/v1/events/stream", headers={"Last-Event-ID": "xyz"})
    error = assert_error(answer, 400, "bad_parameter")
    assert "Last-Event-ID" in str(error["message"])
