"""A slow subscriber's dropped messages are visible: `/api/v1/bus`, `/api/v1/status`, chat `/status`
and `plughost status`; schedules are listed there too."""

from __future__ import annotations

from pathlib import Path

from plughost.core.bus import QUEUE_SIZE
from tests.core.test_bus_state import eventually_async
from tests.manage.support import serve
from tests.manage.test_cli_remote import cli

SLOW = """
import asyncio
from datetime import timedelta
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
release = asyncio.Event()

@plugin.subscribe("slow.>")
async def on_news(data) -> None:
    await release.wait()              # holds its queue until released

@plugin.method("flood")
async def flood(ctx: PluginContext, count: int) -> int:
    for n in range(count):
        await ctx.bus.publish("slow.news", n)
    return count

@plugin.method("release")
def let_go() -> None:
    release.set()

@plugin.schedule(every=timedelta(hours=1))
async def hourly() -> None:
    return None
"""


async def test_slow_subscribers_and_schedules_are_visible(workspace: Path, write_plugin) -> None:
    write_plugin("slow", SLOW)
    async with serve(workspace) as running:
        api = running.client
        flood = QUEUE_SIZE + 20  # QUEUE_SIZE queued (and maybe one in the handler): the rest dropped
        done = await api.post("/api/v1/plugins/slow/execute", json={"method": "flood", "args": {"count": flood}})
        assert done.status_code == 200 and done.json()["success"], done.text
        bus = (await api.get("/api/v1/bus")).json()
        assert bus["backend"] == "memory" and bus["published"] == flood
        [subscription] = bus["subscriptions"]
        assert subscription["plugin"] == "slow" and subscription["pattern"] == "slow.>"
        assert flood - QUEUE_SIZE - 1 <= subscription["overflowed"] <= flood - QUEUE_SIZE
        assert subscription["overflowed"] == bus["overflowed"] and subscription["queued"] <= QUEUE_SIZE

        status = (await api.get("/api/v1/status")).json()
        assert status["bus"]["overflowed"] == bus["overflowed"] and status["bus"]["subscriptions"] == []
        [hourly] = status["schedules"]
        assert hourly["plugin"] == "slow" and hourly["trigger"] == "every 3600s" and hourly["next_run"]

        console = (await api.post("/api/v1/console", json={"command": "/status"})).json()
        assert f"{bus['overflowed']} dropped for slow subscribers (slow)" in console["text"]

        shown = await cli("status", "--remote", running.server.url, "--key", running.key, "-w", str(workspace))
        assert shown.returncode == 0, shown.stderr
        assert f"bus: memory, {flood} published" in shown.stdout
        assert f"{bus['overflowed']} dropped for slow subscribers" in shown.stdout
        assert "slow/schedule.hourly every 3600s: next " in shown.stdout

        await api.post("/api/v1/plugins/slow/execute", json={"method": "release", "args": {}})

        async def delivered() -> int:
            return int((await api.get("/api/v1/bus")).json()["delivered"])

        await eventually_async(delivered, flood - bus["overflowed"])  # the queue drains; the counters stay
        assert (await api.get("/api/v1/bus")).json()["overflowed"] == bus["overflowed"]
