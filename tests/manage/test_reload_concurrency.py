"""Management requests while a plugin reloads: calls are served by the old version, lifecycle
changes wait for the reload and then apply, in order."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PluginWriter
from tests.manage.support import serve

GATED_PLUGIN = """
import reload_gate
from plughost import Plugin

plugin = Plugin()

@plugin.on_load
async def load() -> None:
    reload_gate.loads += 1
    if reload_gate.loads == 2:
        reload_gate.second_load.set()
    await reload_gate.gate.wait()

@plugin.method()
def version() -> str:
    return "{version}"
"""


@pytest.fixture
def gate() -> Iterator[types.ModuleType]:
    module = types.ModuleType("reload_gate")
    module.gate = asyncio.Event()  # type: ignore[attr-defined]
    module.loads = 0  # type: ignore[attr-defined]
    module.second_load = asyncio.Event()  # type: ignore[attr-defined]
    sys.modules["reload_gate"] = module
    yield module
    del sys.modules["reload_gate"]


async def test_requests_during_a_reload(workspace: Path, write_plugin: PluginWriter, gate: types.ModuleType) -> None:
    gate.gate.set()
    directory = write_plugin("gated", GATED_PLUGIN.replace("{version}", "one"))
    async with serve(workspace) as running:
        api = running.client
        gate.gate.clear()
        (directory / "plugin.py").write_text(GATED_PLUGIN.replace("{version}", "two"), encoding="utf-8")
        reload = asyncio.create_task(api.post("/api/v1/plugins/gated/reload"))
        await asyncio.wait_for(gate.second_load.wait(), 30)  # the new version is loading, held by the gate
        served = await api.post("/api/v1/plugins/gated/execute", json={"method": "version"})
        assert served.json()["result"] == "one"  # the old version keeps serving
        disable = asyncio.create_task(api.post("/api/v1/plugins/gated/disable"))  # waits for the reload
        gate.gate.set()
        assert (await asyncio.wait_for(reload, 30)).json()["state"] == "enabled"
        assert (await asyncio.wait_for(disable, 30)).json() == {
            "id": "gated",
            "action": "disable",
            "changed": True,
            "state": "disabled",
            "version": "1.0.0",
        }
        await api.post("/api/v1/plugins/gated/enable")
        assert (await api.post("/api/v1/plugins/gated/execute", json={"method": "version"})).json()["result"] == "two"
