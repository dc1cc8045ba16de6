"""plughost's own management API over a real socket: every route, and every bad input with its error."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tomllib
from pathlib import Path

import httpx
import pytest

from plughost.core.config import HostConfig
from plughost.errors import ConfigError
from plughost.manage.auth import resolve_key
from plughost.manage.settings import ManageSettings
from tests.manage.support import Running


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return dict(error)


# authentication ------------------------------------------------------------------------------
async def test_missing_and_wrong_keys_are_refused(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as anonymous:
        error = assert_error(await anonymous.get("/api/v1/plugins"), 401, "unauthorized")
        assert "missing" in str(error["message"])
        wrong = await anonymous.get("/api/v1/plugins", headers={"Authorization": "Bearer " + "x" * 43})
        assert "wrong" in str(assert_error(wrong, 401, "unauthorized")["message"])
        basic = await anonymous.get("/api/v1/plugins", headers={"Authorization": f"Basic {running.key}"})
        assert_error(basic, 401, "unauthorized")
        assert_error(await anonymous.get("/metrics"), 401, "unauthorized")
        assert_error(await anonymous.get("/api/v1/events/stream"), 401, "unauthorized")


async def test_repeated_failures_from_one_address_are_slowed_down(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as attacker:
        for _ in range(5):  # failed_auth_limit of the fixture
            assert (await attacker.get("/api/v1/status", headers={"Authorization": "Bearer guess"})).status_code == 401
        refused = await attacker.get("/api/v1/status", headers={"Authorization": "Bearer guess"})
        error = assert_error(refused, 429, "too_many_failures")
        assert int(refused.headers["Retry-After"]) > 0
        assert error["detail"]
        # even the right key waits until the window has passed: guessing cannot continue meanwhile
        right = await attacker.get("/api/v1/status", headers={"Authorization": f"Bearer {running.key}"})
        assert right.status_code == 429


async def test_the_key_limit_cannot_be_dodged_with_forwarded_addresses_nor_tripped_without_a_key(
    running: Running,
) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as client:
        for _ in range(8):  # more than the fixture's limit of 5: a page or scraper not given the key yet
            assert (await client.get("/api/v1/status")).status_code == 401
        right = await client.get("/api/v1/status", headers={"Authorization": f"Bearer {running.key}"})
        assert right.status_code == 200  # not locked out
        for n in range(5):  # each guess claims another address: the connection's own is what counts
            guess = {"Authorization": "Bearer guess", "X-Forwarded-For": f"10.0.0.{n}", "X-Real-IP": f"10.0.1.{n}"}
            assert (await client.get("/api/v1/status", headers=guess)).status_code == 401
        refused = await client.get("/api/v1/status", headers={"Authorization": "Bearer guess"})
        assert_error(refused, 429, "too_many_failures")


def test_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    settings = ManageSettings()
    first = resolve_key(tmp_path, settings)
    assert first.source == "generated" and first.path is not None
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    second = resolve_key(tmp_path, settings)
    assert (second.value, second.source) == (first.value, "file")


def test_a_short_key_file_refuses_to_start_and_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGHOST_MANAGE_KEY", raising=False)
    key_file = tmp_path / ".plughost" / "manage.key"
    key_file.parent.mkdir()
    key_file.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16 characters: write a longer one, or delete the file"):
        resolve_key(tmp_path, ManageSettings())
    assert key_file.read_text() == "short\n"  # the operator's file is not replaced behind their back


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PLUGHOST_MANAGE_KEY", raising=False)
    key_file = tmp_path / ".plughost" / "manage.key"
    key_file.parent.mkdir()
    key_file.write_text("k" * 24 + "\n")
    key_file.chmod(0o644)
    assert resolve_key(tmp_path, ManageSettings()).value == "k" * 24
    assert "can be read by other users: chmod 600" in caplog.text


def test_key_from_config_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_MANAGE_KEY", "e" * 20)
    assert resolve_key(tmp_path, ManageSettings(key="c" * 20)).value == "c" * 20
    assert resolve_key(tmp_path, ManageSettings()).source == "env"
    monkeypatch.setenv("PLUGHOST_MANAGE_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        resolve_key(tmp_path, ManageSettings())
    assert not (tmp_path / ".plughost").exists()


def test_non_loopback_bind_without_a_chosen_key_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGHOST_MANAGE_KEY", raising=False)
    with pytest.raises(ConfigError, match="without a key"):
        resolve_key(tmp_path, ManageSettings(bind="0.0.0.0:3210"))
    assert resolve_key(tmp_path, ManageSettings(bind="0.0.0.0:3210", key="k" * 16)).source == "config"


def test_manage_table_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "plughost.toml").write_text('[manage]\nbind = "nowhere"\nport = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ManageSettings.from_host_config(HostConfig.load(tmp_path))
    assert "manage.bind" in str(info.value) and "manage.port" in str(info.value)


# plugins -------------------------------------------------------------------------------------
async def test_list_get_and_filter_plugins(running: Running) -> None:
    listed = (await running.client.get("/api/v1/plugins")).json()
    assert {p["id"] for p in listed["plugins"]} == {"settings", "plain"}
    assert listed["total"] == 2
    assert all(p["state"] == "enabled" and p["status"] == "available" for p in listed["plugins"])
    assert (await running.client.get("/api/v1/plugins", params={"q": "plai"})).json()["total"] == 1
    assert (await running.client.get("/api/v1/plugins", params={"state": "disabled"})).json()["total"] == 0
    detail = (await running.client.get("/api/v1/plugins/settings")).json()
    assert detail["config_schema"]["required"] == ["greeting"]
    assert {m["name"] for m in detail["descriptor"]["methods"]} == {"echo", "applied", "shout", "boom"}
    assert detail["guard"]["breaker"]["state"] == "closed"


async def test_invalid_plugins_are_listed_with_their_errors(running: Running) -> None:
    broken = running.workspace / "plugins" / "broken"
    broken.mkdir()
    (broken / "plugin.toml").write_text('id = "broken"\nversion = 5\n', encoding="utf-8")
    assert "broken" not in {p["id"] for p in (await running.client.get("/api/v1/plugins")).json()["plugins"]}
    rescanned = (await running.client.post("/api/v1/plugins/discover")).json()
    assert "broken" in {p["id"] for p in rescanned["plugins"]}
    rows = (await running.client.get("/api/v1/plugins", params={"status": "invalid"})).json()["plugins"]
    assert [r["id"] for r in rows] == ["broken"]
    assert rows[0]["errors"] and rows[0]["state"] is None

    detail = (await running.client.get("/api/v1/plugins/broken")).json()  # not loaded, but known: why
    assert (detail["state"], detail["status"], detail["descriptor"]) == (None, "invalid", None)
    assert detail["errors"] == rows[0]["errors"] and "version" in detail["errors"][0], detail
    assert detail["summary"]["path"] == str(broken) and detail["guard"] == {}
    assert_error(await running.client.post("/api/v1/plugins/broken/enable"), 404, "plugin_not_found")


async def test_unknown_plugin_is_404_everywhere(running: Running) -> None:
    for method, path in [
        ("GET", "/api/v1/plugins/ghost"),
        ("POST", "/api/v1/plugins/ghost/enable"),
        ("POST", "/api/v1/plugins/ghost/disable"),
        ("POST", "/api/v1/plugins/ghost/reload"),
        ("POST", "/api/v1/plugins/ghost/unload"),
        ("GET", "/api/v1/plugins/ghost/config"),
        ("POST", "/api/v1/dynamic-errors/ghost/clear"),
    ]:
        error = assert_error(await running.client.request(method, path), 404, "plugin_not_found")
        assert error["detail"] == {"plugin_id": "ghost"}
    put = await running.client.put("/api/v1/plugins/ghost/config", json={"a": 1})
    assert_error(put, 404, "plugin_not_found")
    assert not (running.workspace / "config" / "plugins" / "ghost.toml").exists()


async def test_disable_enable_persist_and_take_effect(running: Running) -> None:
    answer = (await running.client.post("/api/v1/plugins/plain/disable")).json()
    assert answer == {"id": "plain", "action": "disable", "changed": True, "state": "disabled", "version": "1.0.0"}
    call = await running.client.post("/api/v1/plugins/plain/execute", json={"method": "hi"})
    assert call.json()["success"] is False and "disabled" in call.json()["error"]
    state = tomllib.loads((running.workspace / "plugin-state.toml").read_text(encoding="utf-8"))
    assert state["modules"]["plain"] is False
    again = (await running.client.post("/api/v1/plugins/plain/disable")).json()
    assert again["changed"] is False
    assert (await running.client.post("/api/v1/plugins/plain/enable")).json()["state"] == "enabled"
    assert (await running.client.post("/api/v1/plugins/plain/execute", json={"method": "hi"})).json()["result"] == "hi"


async def test_concurrent_enable_disable_end_in_the_last_requested_state(running: Running) -> None:
    actions = ["disable", "enable"] * 10 + ["disable"]
    answers = await asyncio.gather(*(running.client.post(f"/api/v1/plugins/plain/{a}") for a in actions))
    assert all(a.status_code == 200 for a in answers)
    assert running.host.manager.get_plugin("plain").state == "disabled"  # type: ignore[union-attr]
    state = tomllib.loads((running.workspace / "plugin-state.toml").read_text(encoding="utf-8"))
    assert state["modules"]["plain"] is False


async def test_unload_then_load_again(running: Running) -> None:
    assert (await running.client.post("/api/v1/plugins/plain/unload")).json()["state"] == "unloaded"
    loaded = await running.client.post("/api/v1/plugins/load", json={"path": "plugins/plain"})
    assert loaded.status_code == 200 and loaded.json()["state"] == "enabled"
    twice = await running.client.post("/api/v1/plugins/load", json={"path": "plugins/plain"})
    assert_error(twice, 409, "conflict")
    missing = await running.client.post("/api/v1/plugins/load", json={"path": "plugins/nowhere"})
    assert_error(missing, 404, "path_not_found")


async def test_reload_keeps_serving_when_the_new_version_breaks(running: Running) -> None:
    code = running.workspace / "plugins" / "plain" / "plugin.py"
    code.write_text("this is not python(\n", encoding="utf-8")
    error = assert_error(await running.client.post("/api/v1/plugins/plain/reload"), 409, "load_failed")
    assert "plain" in str(error["message"])
    assert (await running.client.post("/api/v1/plugins/plain/execute", json={"method": "hi"})).json()["result"] == "hi"


# configuration -------------------------------------------------------------------------------
async def test_config_is_validated_against_the_schema_and_nothing_is_saved(running: Running) -> None:
    config_file = running.workspace / "config" / "plugins" / "settings.toml"
    bad = await running.client.put("/api/v1/plugins/settings/config", json={"greeting": "", "repeat": 99, "x": 1})
    error = assert_error(bad, 422, "invalid_config")
    fields = {f["field"] for f in error["detail"]["fields"]}  # type: ignore[index]
    assert {"greeting", "repeat", ""} <= fields  # "" = the object itself (the unexpected key x)
    assert not config_file.exists()
    missing = await running.client.put("/api/v1/plugins/settings/config", json={"repeat": 2})
    error = assert_error(missing, 422, "invalid_config")
    assert error["detail"]["fields"] == [{"field": "greeting", "message": "'greeting' is a required property"}]  # type: ignore[index]
    assert not config_file.exists()


async def test_config_put_and_patch_apply_and_persist(running: Running) -> None:
    put = await running.client.put("/api/v1/plugins/settings/config", json={"greeting": "hello", "repeat": 2})
    assert put.json() == {"id": "settings", "config": {"greeting": "hello", "repeat": 2}, "applied": True}
    patch = await running.client.patch("/api/v1/plugins/settings/config", json={"repeat": None, "greeting": "hey"})
    assert patch.json()["config"] == {"greeting": "hey"}
    config_file = running.workspace / "config" / "plugins" / "settings.toml"
    assert tomllib.loads(config_file.read_text(encoding="utf-8")) == {"greeting": "hey"}
    seen = (await running.client.post("/api/v1/plugins/settings/execute", json={"method": "applied"})).json()
    assert seen["result"] == [{"greeting": "hello", "repeat": 2}, {"greeting": "hey"}]
    bad_patch = await running.client.patch("/api/v1/plugins/settings/config", json={"repeat": 0})
    assert_error(bad_patch, 422, "invalid_config")
    assert tomllib.loads(config_file.read_text(encoding="utf-8")) == {"greeting": "hey"}
    events = (await running.client.get("/api/v1/events", params={"types": "reconfigure"})).json()["events"]
    assert [e["plugin_id"] for e in events] == ["settings", "settings"]


async def test_config_body_must_be_an_object(running: Running) -> None:
    for body in ([1, 2], "text", 3):
        answer = await running.client.put("/api/v1/plugins/settings/config", json=body)
        assert_error(answer, 422, "invalid_request")


# execute -------------------------------------------------------------------------------------
async def test_execute_methods_and_failures(running: Running) -> None:
    ok = await running.client.post("/api/v1/plugins/settings/execute", json={"method": "echo", "args": {"text": "x"}})
    assert ok.json()["success"] is True and ok.json()["result"] == "x"
    failed = (await running.client.post("/api/v1/plugins/settings/execute", json={"method": "boom"})).json()
    assert failed["success"] is False and "kaboom" in failed["error"]
    wrong_args = await running.client.post("/api/v1/plugins/settings/execute", json={"method": "echo", "args": [1]})
    assert_error(wrong_args, 422, "invalid_request")
    unknown = (await running.client.post("/api/v1/plugins/settings/execute", json={"method": "nope"})).json()
    assert unknown["success"] is False


async def test_malformed_json_is_400_and_oversized_bodies_413(running: Running) -> None:
    headers = {"Content-Type": "application/json"}
    malformed = await running.client.post("/api/v1/plugins/plain/execute", content=b'{"method": ', headers=headers)
    assert_error(malformed, 400, "malformed_json")
    huge = await running.client.post("/api/v1/plugins/plain/execute", content=b" " * (2 << 20), headers=headers)
    assert_error(huge, 413, "body_too_large")

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(24):
            yield b" " * 65536

    streamed = await running.client.post("/api/v1/plugins/plain/execute", content=chunks(), headers=headers)
    assert_error(streamed, 413, "body_too_large")
    assert (await running.client.get("/api/v1/status")).status_code == 200


async def test_unknown_route_and_method(running: Running) -> None:
    assert_error(await running.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await running.client.delete("/api/v1/status"), 405, "method_not_allowed")


# observation ---------------------------------------------------------------------------------
async def test_status_bots_and_metrics(running: Running) -> None:
    status = (await running.client.get("/api/v1/status")).json()
    assert status["plugins"] == {"enabled": 2} and status["pid"] == os.getpid()
    assert status["runtimes"] == {"python": 2} and status["open_breakers"] == []
    assert (await running.client.get("/api/v1/bots")).json() == {"bots": [], "connections": []}
    await running.client.post("/api/v1/plugins/settings/execute", json={"method": "echo", "args": {"text": "x"}})
    await running.client.post("/api/v1/plugins/settings/execute", json={"method": "boom"})
    text = (await running.client.get("/metrics")).text
    assert 'plughost_plugin_calls_total{handler="echo",plugin="settings"} 1.0' in text
    assert 'plughost_plugin_failures_total{handler="boom",plugin="settings"} 1.0' in text
    assert 'plughost_plugin_call_seconds_count{handler="echo",plugin="settings"} 1.0' in text
    assert 'plughost_plugin_breaker_state{plugin="settings",state="closed"} 1.0' in text


async def test_breakers_trip_and_clear(running: Running) -> None:
    for _ in range(3):  # [guard] failure_threshold
        await running.client.post("/api/v1/plugins/settings/execute", json={"method": "boom"})
    breakers = {b["plugin_id"]: b for b in (await running.client.get("/api/v1/dynamic-errors")).json()["breakers"]}
    assert breakers["settings"]["state"] == "open"
    assert "kaboom" in breakers["settings"]["recent_errors"][-1]["message"]
    assert (await running.client.get("/api/v1/status")).json()["open_breakers"] == ["settings"]
    assert (await running.client.get("/api/v1/plugins/settings")).json()["state"] == "isolated"
    cleared = await running.client.post("/api/v1/dynamic-errors/settings/clear")
    assert cleared.json() == {"cleared": ["settings"]}
    again = {b["plugin_id"]: b for b in (await running.client.get("/api/v1/dynamic-errors")).json()["breakers"]}
    assert again["settings"]["state"] == "closed"
    assert (await running.client.get("/api/v1/plugins/settings")).json()["state"] == "enabled"  # recovered at once
    recovered = (await running.client.get("/api/v1/events", params={"types": "recover"})).json()["events"]
    assert [(e["plugin_id"], e["message"]) for e in recovered] == [("settings", "circuit closed by hand")]


async def test_logs_are_kept_and_filtered(running: Running) -> None:
    await running.client.post("/api/v1/plugins/settings/execute", json={"method": "shout", "args": {"text": "hey"}})
    records = (await running.client.get("/api/v1/logs", params={"plugin_id": "settings"})).json()["records"]
    assert [(r["level"], r["message"]) for r in records] == [("warning", "shouting hey")]  # debug is below the ring
    assert records[0]["logger"] == "plughost.plugin.settings"
    assert (await running.client.get("/api/v1/logs", params={"plugin_id": "plain"})).json()["records"] == []
    errors = (await running.client.get("/api/v1/logs", params={"level": "error"})).json()["records"]
    assert all(r["level"] in ("error", "critical") for r in errors)
    assert_error(await running.client.get("/api/v1/logs", params={"level": "loud"}), 400, "bad_parameter")


async def read_sse(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The next `count` SSE events (id, event, data) of a streaming response."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
            continue
        field, _, value = line.partition(":")
        if field:
            current[field] = value.removeprefix(" ")
    return events


async def test_event_stream_is_live_and_resumes_after_the_last_id(running: Running) -> None:
    async with running.client.stream("GET", "/api/v1/events/stream", params={"plugin_id": "plain"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        await running.client.post("/api/v1/plugins/plain/disable")
        first = await asyncio.wait_for(read_sse(stream, 1), 30)
    assert json.loads(first[0]["data"])["type"] == "disable"
    last_id = first[0]["id"]
    await running.client.post("/api/v1/plugins/plain/enable")  # happens while no one listens
    await running.client.post("/api/v1/plugins/plain/disable")
    headers = {"Last-Event-ID": last_id}
    async with running.client.stream("GET", "/api/v1/events/stream", headers=headers) as resumed:
        missed = await asyncio.wait_for(read_sse(resumed, 2), 30)
    assert [json.loads(e["data"])["type"] for e in missed] == ["enable", "disable"]
    assert int(missed[0]["id"]) == int(last_id) + 1


async def test_console_commands_commands_and_permissions(running: Running) -> None:
    answer = (await running.client.post("/api/v1/console", json={"command": "/plugins disable plain"})).json()
    assert answer["ok"] is True and "disabled" in answer["text"]
    assert running.host.manager.get_plugin("plain").state == "disabled"  # type: ignore[union-attr]
    unknown = (await running.client.post("/api/v1/console", json={"command": "/nonsense"})).json()
    assert unknown["ok"] is False and unknown["kind"] == "unknown_command"
    assert_error(await running.client.post("/api/v1/console", json={"command": ""}), 422, "invalid_request")
    registry = (await running.client.get("/api/v1/commands")).json()
    assert "plugins" in {c["name"] for c in registry["commands"]}
    grant = {"permittee": "u42", "permission": "plughost:*"}
    assert (await running.client.post("/api/v1/permissions/permit", json=grant)).json() == {"changed": 1}
    assert "plughost:*" in (await running.client.get("/api/v1/permissions")).json()["grants"]["u42"]
    assert (await running.client.post("/api/v1/permissions/cancel", json=grant)).json() == {"changed": 1}
    bad = await running.client.post("/api/v1/permissions/permit", json={"permittee": "??", "permission": "x"})
    assert_error(bad, 422, "invalid_permission")


async def test_openapi_documents_typed_models_and_errors(running: Running) -> None:
    spec = (await running.client.get("/openapi.json")).json()
    assert "/api/v1/plugins/{plugin_id}/config" in spec["paths"]
    assert "ErrorResponse" in spec["components"]["schemas"]
    put = spec["paths"]["/api/v1/plugins/{plugin_id}/config"]["put"]
    assert {"401", "404", "422"} <= set(put["responses"])


async def test_server_file_points_the_cli_at_this_host(running: Running) -> None:
    data = json.loads((running.workspace / ".plughost" / "manage.json").read_text(encoding="utf-8"))
    assert data["url"] == running.server.url and data["pid"] == os.getpid()
