"""`ctx.bus` and `ctx.state` of Python plugins in worker processes: the same API, run in the host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from plughost import PluginManager
from plughost.runtime import default_runtimes

USER = """
import asyncio
from typing import Any
from plughost.sdk import Plugin, PluginContext
from plughost.sdk.shared import AccessDenied, BusRequestError, NotJsonError
plugin = Plugin()
seen: list = []

@plugin.subscribe("weather.*")
async def on_weather(data: Any, topic: str, sender: str) -> None:
    seen.append([topic, data, sender])

@plugin.reply_to("math.triple")
def triple(data) -> dict:
    return {"value": data["value"] * 3, "pid": __import__("os").getpid()}

@plugin.method("seen")
def get_seen() -> list:
    return seen

@plugin.on_load
async def loading(ctx: PluginContext) -> None:
    try:
        await ctx.state.set("loaded", True)
    except Exception as exc:
        seen.append(["on_load", type(exc).__name__, getattr(exc, "code", ""), str(exc)])

@plugin.on_enable
async def enabled(ctx: PluginContext) -> None:
    await ctx.state.set("enabled", await ctx.state.incr("enables"))

@plugin.method("pub")
async def pub(ctx: PluginContext, topic: str, data: Any = None) -> int:
    return await ctx.bus.publish(topic, data)

@plugin.method("ask")
async def ask(ctx: PluginContext, topic: str, data: Any = None, timeout: float = 5.0) -> Any:
    return await ctx.bus.request(topic, data, timeout=timeout)

@plugin.method("state")
async def state(ctx: PluginContext, op: str, args: list, ns: str = "") -> Any:
    target = ctx.state.namespace(ns) if ns else ctx.state
    return await getattr(target, op)(*args)

@plugin.method("unsubscribe")
async def unsubscribe(ctx: PluginContext, pattern: str) -> int:
    return await ctx.bus.unsubscribe(pattern)

@plugin.method("errors")
async def errors(ctx: PluginContext) -> dict:
    found = {}
    for name, attempt in {
        "denied_topic": lambda: ctx.bus.publish("secret.plans", 1),
        "denied_state": lambda: ctx.state.namespace("shared.other").get("x"),
        "not_json": lambda: ctx.bus.publish("weather.oslo", {1, 2}),
        "not_json_state": lambda: ctx.state.set("k", object()),
        "no_responders": lambda: ctx.bus.request("math.nobody", 1, timeout=1),
        "bad_topic": lambda: ctx.bus.publish("weather..x", 1),
    }.items():
        try:
            await attempt()
            found[name] = "no error"
        except AccessDenied as exc:
            found[name] = ["AccessDenied", str(exc)]
        except NotJsonError as exc:
            found[name] = ["NotJsonError", str(exc)]
        except BusRequestError as exc:
            found[name] = ["BusRequestError", exc.code, str(exc)]
        except Exception as exc:
            found[name] = [type(exc).__name__, str(exc)]
    return found
"""

LOCAL = """
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
seen: list = []

@plugin.subscribe("weather.*")
def on_weather(data: Any, topic: str, sender: str) -> None:
    seen.append([topic, data, sender])

@plugin.reply_to("math.double")
def double(data) -> dict:
    return {"value": data["value"] * 2}

@plugin.method("seen")
def get_seen() -> list:
    return seen

@plugin.method("ask")
async def ask(ctx: PluginContext, topic: str, data: Any = None) -> Any:
    return await ctx.bus.request(topic, data, timeout=10)

@plugin.method("shared")
async def shared(ctx: PluginContext, key: str) -> Any:
    return await ctx.state.namespace("shared.weather").get(key)
"""

GRANTS = '[permissions]\ntopics = ["weather.*", "math.>"]\nstate = ["shared.weather"]\n'


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def result(manager: PluginManager, plugin_id: str, method: str, args: dict[str, Any] | None = None) -> Any:
    outcome = await manager.execute(plugin_id, method, args or {})
    assert outcome.success, outcome.error
    return outcome.result


@pytest.fixture
async def manager(workspace: Path, write_plugin) -> AsyncIterator[PluginManager]:
    write_plugin("worker", USER, manifest=f'id = "worker"\nversion = "1.0.0"\nisolation = "process"\n{GRANTS}')
    write_plugin("local", LOCAL, manifest_extra=GRANTS)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        worker = manager.get_plugin("worker")
        assert worker is not None and worker.handle is not None, manager.list()
        assert worker.handle.descriptor.subscriptions, "the worker's subscriptions were described"
        yield manager


async def test_publish_from_a_worker_reaches_plugins_in_and_out_of_process(manager: PluginManager) -> None:
    assert await result(manager, "worker", "pub", {"topic": "weather.oslo", "data": {"t": 3}}) == 2

    async def both_saw() -> bool:
        return bool(await result(manager, "local", "seen")) and bool(await result(manager, "worker", "seen"))

    await eventually(both_saw)
    assert await result(manager, "local", "seen") == [["weather.oslo", {"t": 3}, "worker"]]
    assert (await result(manager, "worker", "seen"))[-1] == ["weather.oslo", {"t": 3}, "worker"]


async def test_hooks_use_the_bus_once_the_host_link_is_open(manager: PluginManager) -> None:
    on_load = (await result(manager, "worker", "seen"))[0]
    assert on_load[:3] == ["on_load", "HostServiceError", "unavailable"]
    assert "not in its load hook" in on_load[3]
    assert await manager.state_store.view("worker").get("enabled") == 1, "on_enable ran with the link open"


async def test_requests_cross_the_process_boundary_both_ways(manager: PluginManager) -> None:
    answer = await result(manager, "worker", "ask", {"topic": "math.double", "data": {"value": 21}})
    assert answer == {"value": 42}
    answer = await result(manager, "local", "ask", {"topic": "math.triple", "data": {"value": 5}})
    assert answer["value"] == 15
    assert answer["pid"] != __import__("os").getpid(), "the worker answered, in its own process"


async def test_state_operations_run_in_the_host(manager: PluginManager) -> None:
    async def state(op: str, *args: Any, ns: str = "") -> Any:
        return await result(manager, "worker", "state", {"op": op, "args": list(args), "ns": ns})

    assert await state("clear") == 2, "on_enable's two keys"
    assert await state("get", "missing", "fallback") == "fallback"
    await state("set", "city", {"name": "Oslo"})
    assert await state("get", "city") == {"name": "Oslo"}
    assert [await state("incr", "hits") for _ in range(3)] == [1, 2, 3]
    assert await state("incr", "hits", 10) == 13
    assert await state("compare_and_set", "hits", 13, 0) is True
    assert await state("compare_and_set", "hits", 13, 99) is False
    assert await state("get_all") == {"city": {"name": "Oslo"}, "hits": 0}
    assert await state("delete", "city") is True
    assert await state("clear") == 1
    await state("set", "wind", "strong", ns="shared.weather")
    assert await result(manager, "local", "shared", {"key": "wind"}) == "strong"
    view = manager.state_store.view("worker")
    assert await view.get_all() == {}, "the worker's private namespace lives in the host's store"


async def test_every_refusal_reaches_the_worker_as_the_in_process_exception(manager: PluginManager) -> None:
    before = await manager.state_store.view("worker").get_all()
    found = await result(manager, "worker", "errors")
    assert found["denied_topic"][0] == "AccessDenied" and "secret.plans" in found["denied_topic"][1]
    assert "worker" in found["denied_topic"][1], "the message names the plugin"
    assert found["denied_state"][0] == "AccessDenied" and "shared.other" in found["denied_state"][1]
    assert found["not_json"][0] == "NotJsonError" and "not JSON" in found["not_json"][1]
    assert found["not_json_state"][0] == "NotJsonError"
    assert found["no_responders"][:2] == ["BusRequestError", "no_responders"]
    assert found["bad_topic"][0] == "HostServiceError" and "malformed" in found["bad_topic"][1]
    assert await manager.state_store.view("worker").get_all() == before, "the refused calls changed nothing"


async def test_unsubscribe_from_a_worker(manager: PluginManager) -> None:
    assert await result(manager, "worker", "unsubscribe", {"pattern": "weather.*"}) == 1
    assert await result(manager, "worker", "pub", {"topic": "weather.bergen", "data": 1}) == 1  # only `local` now
