"""Message bus and shared state (memory backend) with real in-process Python plugins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from plughost import PluginManager
from plughost.runtime import default_runtimes
from plughost.sdk.shared import AccessDenied, BusRequestError, NotJsonError

SUBSCRIBER = """
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
seen: list = []

@plugin.subscribe("weather.*")
async def on_weather(data: Any, topic: str, sender: str) -> None:
    seen.append([topic, data, sender])

@plugin.subscribe("news.>")
def on_news(topic, data):
    seen.append([topic, data])

@plugin.method("seen")
def get_seen() -> list:
    return seen
"""

PUBLISHER = """
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()

@plugin.method("pub")
async def pub(ctx: PluginContext, topic: str, data: Any = None) -> int:
    return await ctx.bus.publish(topic, data)

@plugin.method("pub_many")
async def pub_many(ctx: PluginContext, topic: str, count: int) -> int:
    for n in range(count):
        await ctx.bus.publish(topic, n)
    return count

@plugin.method("ask")
async def ask(ctx: PluginContext, topic: str, data: Any = None, timeout: float = 5.0) -> Any:
    return await ctx.bus.request(topic, data, timeout=timeout)

@plugin.method("state")
async def state(ctx: PluginContext, op: str, args: list, ns: str = "") -> Any:
    target = ctx.state.namespace(ns) if ns else ctx.state
    return await getattr(target, op)(*args)
"""

REPLIER = """
import asyncio
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()

@plugin.reply_to("math.double")
async def double(data, ctx: PluginContext) -> dict:
    return {"value": data["value"] * 2, "by": ctx.plugin_id}

@plugin.reply_to("math.fail")
def fail(data):
    raise ValueError("cannot do that")

@plugin.reply_to("math.slow")
async def slow(data):
    await asyncio.sleep(30)
"""

GRANTS = '[permissions]\ntopics = ["weather.*", "news.>", "math.>"]\nstate = ["shared.weather"]\n'


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def seen(manager: PluginManager, plugin_id: str = "sub") -> list:
    return (await manager.execute(plugin_id, "seen")).result


def queued(manager: PluginManager, plugin_id: str) -> int:
    return sum(s["queued"] for s in manager.bus.stats()["subscriptions"] if s["plugin"] == plugin_id)


@pytest.fixture
def plugins(write_plugin) -> None:
    write_plugin("sub", SUBSCRIBER, manifest_extra=GRANTS)
    write_plugin("pub", PUBLISHER, manifest_extra=GRANTS)
    write_plugin("replier", REPLIER, manifest_extra=GRANTS)


async def test_order_per_topic_and_wildcards(workspace: Path, plugins) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert (await manager.execute("pub", "pub_many", {"topic": "weather.oslo", "count": 50})).success
        await manager.execute("pub", "pub", {"topic": "weather.oslo.rain", "data": 1})  # two segments: no match
        await manager.execute("pub", "pub", {"topic": "news.world.eu", "data": "x"})
        await manager.execute("pub", "pub", {"topic": "news", "data": "y"})  # '>' needs one segment or more
        await eventually(lambda: manager.bus.stats()["delivered"] == 51)
        got = await seen(manager)
        assert [g for g in got if g[0] == "weather.oslo"] == [["weather.oslo", n, "pub"] for n in range(50)]
        assert ["news.world.eu", "x"] in got
        assert len(got) == 51


async def test_request_reply_through_the_guard(workspace: Path, plugins) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        answer = await manager.execute("pub", "ask", {"topic": "math.double", "data": {"value": 21}})
        assert answer.result == {"value": 42, "by": "replier"}

        with pytest.raises(BusRequestError, match="cannot do that") as failed:
            await manager.bus.request("pub", "math.fail", {})
        assert failed.value.code == "plugin_error"
        assert manager.guard.breaker("replier").consecutive_failures == 1

        with pytest.raises(BusRequestError, match="timed out") as slow:
            await manager.bus.request("pub", "math.slow", {}, timeout=0.2)
        assert slow.value.code == "timed_out"
        assert manager.guard.breaker("replier").consecutive_failures == 2

        with pytest.raises(BusRequestError, match="no plugin answers") as nobody:
            await manager.bus.request("pub", "math.nobody")
        assert nobody.value.code == "no_responders"
        asked = await manager.execute("pub", "ask", {"topic": "math.fail"})
        assert not asked.success and "cannot do that" in (asked.error or "")


async def test_slow_subscriber_overflows_without_blocking(workspace: Path, write_plugin, plugins) -> None:
    write_plugin(
        "slow",
        """
        import asyncio
        from plughost.sdk import Plugin
        plugin = Plugin()
        gate = asyncio.Event()
        seen = []

        @plugin.subscribe("weather.*")
        async def on_weather(data):
            await gate.wait()
            seen.append(data)

        @plugin.method("release")
        def release() -> None:
            gate.set()

        @plugin.method("seen")
        def get_seen() -> list:
            return seen
        """,
        manifest_extra=GRANTS,
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        manager.bus.queue_size = 4
        for n in range(12):
            await manager.bus.publish("pub", "weather.oslo", n)  # never waits for a subscriber
            await eventually(lambda: queued(manager, "sub") == 0)  # "sub" keeps up
        subs = {s["plugin"]: s for s in manager.bus.stats()["subscriptions"] if s["pattern"] == "weather.*"}
        assert subs["slow"]["overflowed"] == 7  # one in its handler, four queued
        assert manager.bus.stats()["overflowed"] == 7
        await eventually(lambda: manager.bus.stats()["delivered"] == 12)
        assert [g[1] for g in await seen(manager)] == list(range(12))
        await manager.execute("slow", "release")
        await eventually(lambda: manager.bus.stats()["delivered"] == 17)
        assert await seen(manager, "slow") == [0, 1, 2, 3, 4]


async def test_unload_removes_subscriptions(workspace: Path, plugins) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert {s[0] for s in manager.bus.subscriptions()} == {"sub"}
        assert await manager.bus.publish("pub", "weather.oslo", 1) == 1
        await manager.unload_plugin("sub")
        assert manager.bus.subscriptions() == []
        assert await manager.bus.publish("pub", "weather.oslo", 2) == 0
        await manager.unload_plugin("replier")
        with pytest.raises(BusRequestError, match="no plugin answers"):
            await manager.bus.request("pub", "math.double", {"value": 1})


async def test_permission_denials(workspace: Path, write_plugin, plugins) -> None:
    write_plugin("nosy", PUBLISHER)  # no grants: only topics under "nosy." and its own namespace
    write_plugin(
        "greedy",
        'from plughost.sdk import Plugin\nplugin = Plugin()\n\n@plugin.subscribe("weather.*")\ndef on(data): pass\n',
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        greedy = manager.get_plugin("greedy")
        assert greedy is not None and greedy.error is not None
        assert "may not subscribe to bus topic 'weather.*'" in greedy.error and "[permissions] topics" in greedy.error

        assert (await manager.execute("nosy", "pub", {"topic": "nosy.events", "data": 1})).success
        denied = await manager.execute("nosy", "pub", {"topic": "weather.oslo", "data": 1})
        assert not denied.success and "may not publish on bus topic 'weather.oslo'" in (denied.error or "")
        with pytest.raises(AccessDenied, match="send requests on"):
            await manager.bus.request("nosy", "math.double", {"value": 1})
        with pytest.raises(AccessDenied, match=r"weather\.>"):  # '*' does not cover '>'
            manager.bus.subscribe("pub", "weather.>", "x")

        shared = await manager.execute("nosy", "state", {"op": "get", "args": ["k"], "ns": "shared.weather"})
        assert not shared.success and "may not use shared state namespace 'shared.weather'" in (shared.error or "")
        assert (await manager.execute("nosy", "state", {"op": "set", "args": ["k", 1]})).success


async def test_state_namespaces_and_atomic_ops(workspace: Path, write_plugin, plugins) -> None:
    write_plugin("other", PUBLISHER, manifest_extra=GRANTS)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()

        async def state(plugin: str, op: str, *args: object, ns: str = "") -> object:
            result = await manager.execute(plugin, "state", {"op": op, "args": list(args), "ns": ns})
            assert result.success, result.error
            return result.result

        await state("pub", "set", "city", "Oslo")
        assert await state("pub", "get", "city") == "Oslo"
        assert await state("other", "get", "city", "none") == "none"  # private namespaces are separate
        await state("pub", "set", "city", "Bergen", ns="shared.weather")
        assert await state("other", "get", "city", ns="shared.weather") == "Bergen"
        assert await state("pub", "get", "city") == "Oslo"

        assert await state("pub", "incr", "hits") == 1
        assert await state("pub", "incr", "hits", 5) == 6
        assert await state("pub", "compare_and_set", "hits", 5, 100) is False
        assert await state("pub", "compare_and_set", "hits", 6, 100) is True
        assert await state("pub", "compare_and_set", "fresh", None, "new") is True  # None: only if absent
        assert await state("pub", "compare_and_set", "fresh", None, "again") is False
        assert await state("pub", "get_all") == {"city": "Oslo", "hits": 100, "fresh": "new"}
        assert await state("pub", "delete", "fresh") is True
        assert await state("pub", "delete", "fresh") is False
        assert await state("pub", "clear") == 2
        assert await state("pub", "get_all") == {}
        assert await state("other", "get_all", ns="shared.weather") == {"city": "Bergen"}

        # concurrent increments from two plugins do not lose updates
        calls = [manager.execute(p, "state", {"op": "incr", "args": ["n"], "ns": "shared.weather"})
                 for p in ("pub", "other") for _ in range(50)]  # fmt: skip
        await asyncio.gather(*calls)
        assert await state("pub", "get", "n", ns="shared.weather") == 100


async def test_ttl_expiry_with_an_injected_clock(workspace: Path, plugins) -> None:
    now = [1000.0]
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        manager.state_store.clock = lambda: now[0]
        view = manager.state_store.view("pub")
        await view.set("token", "abc", ttl=30)
        await view.set("keep", 1)
        now[0] += 29.9
        assert await view.get("token") == "abc"
        now[0] += 0.1
        assert await view.get("token") is None
        assert await view.get_all() == {"keep": 1}
        assert await view.compare_and_set("token", None, "new", ttl=5) is True  # expired = absent


async def test_non_json_values_are_rejected(workspace: Path, plugins) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        view = manager.state_store.view("pub")
        with pytest.raises(NotJsonError, match="state key 'when' is not JSON"):
            await view.set("when", object())
        with pytest.raises(NotJsonError, match=r"published on 'weather\.oslo' is not JSON"):
            await manager.bus.publish("pub", "weather.oslo", {"x": {1, 2}})
        with pytest.raises(NotJsonError):
            await manager.bus.request("pub", "math.double", float("nan"))
        assert manager.bus.stats()["published"] == 0
        value = {"nested": [1, 2]}
        await view.set("copy", value)
        value["nested"].append(3)  # the store keeps a copy
        assert await view.get("copy") == {"nested": [1, 2]}
