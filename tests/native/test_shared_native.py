"""The message bus and shared state of native plugins (`host.bus.*`, `host.state.*`), in-process and
in a worker: the C example and the probe, built with gcc, beside a Python plugin."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plughost import PluginManager
from plughost.runtime import default_runtimes
from tests.native.conftest import Builds

WHERE = {"local": "none", "worker": "process"}
GRANTS = '[permissions]\ntopics = ["example.>", "py.>"]\nstate = ["shared.counts"]\n'

PYTHON = """
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
seen: list = []

@plugin.subscribe("example.visits")
def on_visits(data: Any, sender: str) -> None:
    seen.append([sender, data])

@plugin.reply_to("py.double")
def double(data) -> int:
    return data * 2

@plugin.method("seen")
def get_seen() -> list:
    return seen

@plugin.method("ping")
async def ping(ctx: PluginContext) -> Any:
    return await ctx.bus.request("example.ping", None, timeout=10)

@plugin.method("count")
async def count(ctx: PluginContext) -> Any:
    return await ctx.state.namespace("shared.counts").get("native")
"""


@pytest.fixture
async def manager(tmp_path: Path, c_builds: Builds, write_plugin) -> AsyncIterator[PluginManager]:
    """The C example and the probe, each in-process and in a worker, and a Python plugin."""
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    for build, name in (("example_c", "example"), ("probe", "probe")):
        for where, isolation in WHERE.items():
            plugin_id = f"{name}-{where}"
            shutil.copyfile(c_builds[build], plugins / f"{plugin_id}.so")
            manifest = f'id = "{plugin_id}"\nruntime = "native"\nisolation = "{isolation}"\n{GRANTS}'
            (plugins / f"{plugin_id}.plugin.toml").write_text(manifest)
            if name == "example":  # the example answers bus requests on the topic its config names
                config = tmp_path / "config" / "plugins" / f"{plugin_id}.toml"
                config.parent.mkdir(parents=True, exist_ok=True)
                config.write_text('ping_topic = "example.ping"\n')
    write_plugin("py", PYTHON, manifest_extra=GRANTS, parent=plugins)
    async with PluginManager(tmp_path, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        failed = [p for p in manager.list() if p.get("state") != "enabled"]
        assert not failed, failed
        yield manager


async def result(manager: PluginManager, plugin_id: str, method: str, args: dict[str, Any] | None = None) -> Any:
    outcome = await manager.execute(plugin_id, method, args or {})
    assert outcome.success, outcome.error
    return outcome.result


async def host(manager: PluginManager, plugin_id: str, method: str, request: dict[str, Any]) -> dict[str, Any]:
    """The envelope the host answered the probe's `host.call(method, request)` with."""
    envelope = await result(manager, plugin_id, "host_raw", {"method": method, "request": json.dumps(request)})
    assert isinstance(envelope, dict)
    return envelope


@pytest.mark.parametrize("where", WHERE)
async def test_the_c_example_counts_in_state_and_publishes(manager: PluginManager, where: str) -> None:
    plugin_id = f"example-{where}"
    assert await result(manager, plugin_id, "visits") == {"visits": 1, "delivered": 1}
    assert await result(manager, plugin_id, "visits") == {"visits": 2, "delivered": 1}
    assert await manager.state_store.view(plugin_id).get("visits") == 2, "the count lives in the host's store"
    deadline = asyncio.get_running_loop().time() + 10
    while len(await result(manager, "py", "seen")) < 2:
        assert asyncio.get_running_loop().time() < deadline, "the Python subscriber never got the messages"
        await asyncio.sleep(0.01)
    assert await result(manager, "py", "seen") == [[plugin_id, {"visits": 1}], [plugin_id, {"visits": 2}]]


async def test_a_native_plugin_answers_bus_requests(manager: PluginManager) -> None:
    answer = await result(manager, "py", "ping")
    assert answer["pong"] == "py", "the first loaded C example answered with the requester's id"


@pytest.mark.parametrize("where", WHERE)
async def test_probe_state_bus_and_refusals(manager: PluginManager, where: str) -> None:
    plugin_id = f"probe-{where}"
    assert await host(manager, plugin_id, "host.state.set", {"key": "k", "value": [1, "two"]}) == {
        "ok": True,
        "result": None,
    }
    assert (await host(manager, plugin_id, "host.state.get", {"key": "k"}))["result"] == [1, "two"]
    shared = {"namespace": "shared.counts", "key": "native", "value": 7}
    assert (await host(manager, plugin_id, "host.state.set", shared))["ok"] is True
    assert await result(manager, "py", "count") == 7
    assert (await host(manager, plugin_id, "host.bus.request", {"topic": "py.double", "data": 21}))["result"] == 42

    denied = await host(manager, plugin_id, "host.state.get", {"namespace": "shared.secret", "key": "x"})
    assert denied["ok"] is False and denied["error"]["code"] == "access_denied"
    assert "shared.secret" in denied["error"]["message"] and plugin_id in denied["error"]["message"]
    denied = await host(manager, plugin_id, "host.bus.publish", {"topic": "secret.plans", "data": 1})
    assert denied["error"]["code"] == "access_denied"
    nobody = await host(manager, plugin_id, "host.bus.request", {"topic": "py.nobody", "timeout": 1})
    assert nobody["error"]["code"] == "no_responders"
    bad = await host(manager, plugin_id, "host.state.incr", {"key": "k", "amount": "lots"})
    assert bad["error"]["code"] == "invalid_request" and "amount must be an integer" in bad["error"]["message"]
    bad = await host(manager, plugin_id, "host.state.get", {"key": 5})
    assert bad["error"]["code"] == "invalid_request" and "'key' must be a non-empty string" in bad["error"]["message"]
    assert (await host(manager, plugin_id, "host.state.get", {"key": "k"}))["result"] == [1, "two"], "nothing lost"
