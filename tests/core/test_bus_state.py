"""Message bus and shared state with real in-process Python plugins, on both backends: memory, and
Redis (a real redis-server, configured through `[cluster] redis_url`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plughost import PluginManager
from plughost.errors import PlugHostError
from plughost.runtime import default_runtimes
from plughost.sdk.shared import AccessDenied, BusRequestError, NotJsonError
from tests.conftest import PluginWriter
from tests.redis_server import RedisServer

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


def delivered(manager: PluginManager, plugin_id: str) -> int:
    return sum(s["delivered"] for s in manager.bus.stats()["subscriptions"] if s["plugin"] == plugin_id)


def use_redis(workspace: Path, server: RedisServer) -> None:
    (workspace / "plughost.toml").write_text(f'[cluster]\nredis_url = "{server.url}"\n', encoding="utf-8")


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, workspace: Path) -> str:
    """Run the test on each backend (redis: a redis-server of its own, named in plughost.toml)."""
    if request.param == "redis":
        use_redis(workspace, request.getfixturevalue("redis_server"))
    return str(request.param)


def write_plugins(write_plugin: PluginWriter) -> None:
    write_plugin("sub", SUBSCRIBER, manifest_extra=GRANTS)
    write_plugin("pub", PUBLISHER, manifest_extra=GRANTS)
    write_plugin("replier", REPLIER, manifest_extra=GRANTS)


@pytest.fixture
def plugins(write_plugin: PluginWriter, backend: str) -> str:
    write_plugins(write_plugin)
    return backend


async def test_order_per_topic_and_wildcards(workspace: Path, plugins: str) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.bus.stats()["backend"] == plugins
        assert (await manager.execute("pub", "pub_many", {"topic": "weather.oslo", "count": 50})).success
        await manager.execute("pub", "pub", {"topic": "weather.oslo.rain", "data": 1})  # two segments: no match
        await manager.execute("pub", "pub", {"topic": "news.world.eu", "data": "x"})
        await manager.execute("pub", "pub", {"topic": "news", "data": "y"})  # '>' needs one segment or more
        await eventually(lambda: manager.bus.stats()["delivered"] == 51)
        got = await seen(manager)
        assert [g for g in got if g[0] == "weather.oslo"] == [["weather.oslo", n, "pub"] for n in range(50)]
        assert ["news.world.eu", "x"] in got
        assert len(got) == 51


async def test_messages_arrive_as_published_and_stay_the_publishers(workspace: Path, plugins: str) -> None:
    """The data is encoded once on its way; what a subscriber gets is its own, whatever the publisher
    does with its object afterwards, and a large nested message arrives intact."""
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        data = {"text": "héllo ✓ \u2028", "nested": [{"n": n, "third": n / 3} for n in range(300)], "none": None}
        sent = json.loads(json.dumps(data))
        assert await manager.bus.publish("pub", "weather.oslo", data) == 1
        data["nested"].clear()  # the publisher's object stays its own
        await eventually(lambda: manager.bus.stats()["delivered"] == 1)
        assert await seen(manager) == [["weather.oslo", sent, "pub"]]
        assert await manager.bus.request("pub", "math.double", {"value": 2.5, "note": "é"}) == {
            "value": 5.0,
            "by": "replier",
        }


async def test_request_reply_through_the_guard(workspace: Path, plugins: str) -> None:
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


async def test_slow_subscriber_overflows_without_blocking(workspace: Path, write_plugin, plugins: str) -> None:
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
            await eventually(lambda n=n: delivered(manager, "sub") == n + 1)  # "sub" keeps up
        subs = {s["plugin"]: s for s in manager.bus.stats()["subscriptions"] if s["pattern"] == "weather.*"}
        assert subs["slow"]["overflowed"] == 7  # one in its handler, four queued
        assert manager.bus.stats()["overflowed"] == 7
        await eventually(lambda: manager.bus.stats()["delivered"] == 12)
        assert [g[1] for g in await seen(manager)] == list(range(12))
        await manager.execute("slow", "release")
        await eventually(lambda: manager.bus.stats()["delivered"] == 17)
        assert await seen(manager, "slow") == [0, 1, 2, 3, 4]


async def test_unload_removes_subscriptions(workspace: Path, plugins: str) -> None:
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


async def test_permission_denials(workspace: Path, write_plugin, plugins: str) -> None:
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


async def test_state_namespaces_and_atomic_ops(workspace: Path, write_plugin, plugins: str) -> None:
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
        assert [r.error for r in await asyncio.gather(*calls) if not r.success] == []
        assert await state("pub", "get", "n", ns="shared.weather") == 100


async def test_ttl_expiry(workspace: Path, plugins: str) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        view = manager.state_store.view("pub")
        await view.set("keep", 1)
        await view.set("long", "still here", ttl=600)
        await view.set("short", "soon gone", ttl=0.05)
        assert await view.get("long") == "still here"
        await eventually_async(lambda: view.get("short"), None)
        assert await view.get_all() == {"keep": 1, "long": "still here"}
        assert await view.compare_and_set("short", None, "new", ttl=600) is True  # expired = absent
        assert await view.incr("counter") == 1
        await view.set("long", "no ttl now")  # a set without ttl keeps the key for good
        assert await view.get("long") == "no ttl now"
        for bad in (0, -1, float("nan"), True, "5"):
            with pytest.raises(PlugHostError, match="ttl must be positive seconds"):
                await view.set("k", 1, ttl=bad)  # type: ignore[arg-type]
        assert await view.get("k") is None


async def eventually_async(read: Callable[[], Any], wanted: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await read() != wanted:
        assert asyncio.get_running_loop().time() < deadline, "value did not change in time"
        await asyncio.sleep(0.005)


async def test_ttl_expiry_with_an_injected_clock(workspace: Path, write_plugin: PluginWriter) -> None:
    """Memory only: its clock can be injected (Redis counts TTLs on the server's clock)."""
    write_plugins(write_plugin)
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


async def test_non_json_values_are_rejected(workspace: Path, plugins: str) -> None:
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


async def test_state_values_compare_as_json_and_incr_needs_an_int(workspace: Path, plugins: str) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        view = manager.state_store.view("pub")
        await view.set("obj", {"a": 2, "b": [1, {"c": None}]})
        assert await view.compare_and_set("obj", {"b": [1, {"c": None}], "a": 2}, "new") is True  # key order
        await view.set("flag", True)
        assert await view.compare_and_set("flag", 1, "new") is False  # JSON true is not 1
        assert await view.get("flag") is True
        await view.set("name", "Oslo")
        with pytest.raises(PlugHostError, match="incr of state key 'name': it holds str, not an int"):
            await view.incr("name")
        with pytest.raises(PlugHostError, match="incr of state key 'flag': it holds bool, not an int"):
            await view.incr("flag")
        with pytest.raises(PlugHostError, match="amount must be an int"):
            await view.incr("n", 1.5)  # type: ignore[arg-type]
        with pytest.raises(PlugHostError, match="state keys are non-empty strings"):
            await view.set("", 1)
        assert await view.get_all() == {"obj": "new", "flag": True, "name": "Oslo"}  # nothing changed by a refusal


GLOBBY = """
from plughost.sdk import Plugin
plugin = Plugin()
seen: list = []

@plugin.subscribe("odd.a?c")
def on_question(topic: str) -> None:
    seen.append(topic)

@plugin.subscribe("odd.[x]")
def on_bracket(topic: str) -> None:
    seen.append(topic)

@plugin.method("seen")
def get_seen() -> list:
    return seen
"""


async def test_glob_characters_in_topics_are_literal(workspace: Path, write_plugin: PluginWriter, plugins: str) -> None:
    write_plugin("globby", GLOBBY, manifest_extra='[permissions]\ntopics = ["odd.>"]\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        reached = [await manager.bus.publish("globby", topic) for topic in ("odd.abc", "odd.x", "odd.a?c", "odd.[x]")]
        assert reached == [0, 0, 1, 1]  # as Redis globs, unescaped, the first two would match
        await eventually(lambda: manager.bus.stats()["delivered"] == 2)
        assert await seen(manager, "globby") == ["odd.a?c", "odd.[x]"]
