"""`GET /api/v1/schedules` and the per-chat switches of `/api/v1/plugins/{id}/chats`, over a real socket."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import PluginWriter
from tests.manage.support import serve
from tests.manage.test_api import assert_error

HOURLY = """
from datetime import timedelta
from plughost import Plugin

plugin = Plugin()

@plugin.schedule(every=timedelta(hours=1), chat="group:123")
def hourly() -> str:
    return "ding"

@plugin.schedule(cron="0 8 * * 1-5", tz="Asia/Shanghai", missed="run_once")
def weekdays() -> None: ...
"""


async def test_schedules_are_listed_with_their_next_run(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("clock", HOURLY)
    async with serve(workspace) as running:
        rows = (await running.client.get("/api/v1/schedules")).json()["schedules"]
        assert [(r["plugin"], r["handler"], r["trigger"]) for r in rows] == [
            ("clock", "schedule.hourly", "every 3600s"),
            ("clock", "schedule.weekdays", "cron 0 8 * * 1-5 (Asia/Shanghai)"),
        ]
        hourly = rows[0]
        assert hourly["active"] and hourly["next_run"] and hourly["chat"] == "group:123" and hourly["runs"] == 0
        assert hourly["last_run"] is None and hourly["skipped"] == 0 and rows[1]["missed"] == "run_once"
        await running.client.post("/api/v1/plugins/clock/disable")
        rows = (await running.client.get("/api/v1/schedules")).json()["schedules"]
        assert [(r["active"], r["next_run"]) for r in rows] == [(False, None), (False, None)]
        console = await running.client.post("/api/v1/console", json={"command": "/status"})
        assert "clock/schedule.hourly every 3600s: inactive" in console.json()["text"]


async def test_chat_switches_over_the_api(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("clock", HOURLY)
    async with serve(workspace) as running:
        client = running.client
        answer = await client.put("/api/v1/plugins/clock/chats/group:123", json={"enabled": False})
        assert answer.json() == {"id": "clock", "chat": "group:123", "enabled": False, "changed": True,
                                 "off": ["group:123"]}  # fmt: skip
        again = await client.put("/api/v1/plugins/clock/chats/group:123", json={"enabled": False})
        assert again.json()["changed"] is False
        assert (await client.get("/api/v1/plugins/clock/chats")).json() == {"id": "clock", "off": ["group:123"]}
        assert (await client.get("/api/v1/plugins/clock")).json()["chats_off"] == ["group:123"]
        state = tomllib.loads((workspace / "plugin-state.toml").read_text(encoding="utf-8"))
        assert state["chats"] == {"clock": ["group:123"]}

        # bad input: a malformed chat, an unknown plugin, a body without `enabled`; nothing changes
        assert_error(await client.put("/api/v1/plugins/clock/chats/room:1", json={"enabled": True}), 422,
                     "invalid_request")  # fmt: skip
        assert_error(await client.put("/api/v1/plugins/nosuch/chats/group:1", json={"enabled": True}), 404,
                     "plugin_not_found")  # fmt: skip
        assert_error(await client.put("/api/v1/plugins/clock/chats/group:1", json={}), 422, "invalid_request")
        assert (await client.get("/api/v1/plugins/clock/chats")).json()["off"] == ["group:123"]

        back = await client.put("/api/v1/plugins/clock/chats/group:123", json={"enabled": True})
        assert back.json()["off"] == [] and back.json()["changed"] is True
