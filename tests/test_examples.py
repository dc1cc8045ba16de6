"""The bundled example workspace behaves as its docs say."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plughost import Guard, PluginManager, PluginState
from plughost.guard import BreakerPolicy, GuardPolicy
from plughost.runtime import default_runtimes
from tests.conftest import EXAMPLES
from tests.core.test_bus_state import eventually


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    return target


async def test_all_examples_load(demo: Path) -> None:
    async with PluginManager(demo, runtimes=default_runtimes()) as manager:
        expected = {p.stem for p in (demo / "plugins").iterdir() if not p.name.startswith((".", "_"))}
        assert await manager.discover_and_load_all() == len(expected)
        assert not manager.last_discovery.invalid and not manager.last_discovery.conflicts
        enabled = {i.id for i in manager.list_plugins(state=PluginState.ENABLED)}
        assert enabled == expected and {"calculator", "flaky", "greeter", "notes"} <= enabled


async def test_calculator_schema_and_errors(demo: Path) -> None:
    async with PluginManager(demo, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        descriptor = manager.get_plugin("calculator").descriptor  # type: ignore[union-attr]
        assert descriptor is not None
        schema = descriptor.method("add").input_schema  # type: ignore[union-attr]
        assert schema["required"] == ["a", "b"] and schema["properties"]["a"]["type"] == "number"
        stats = await manager.execute("calculator", "stats", {"values": [1, 2, 3, 4]})
        assert stats.result == {"mean": 2.5, "median": 2.5, "stdev": pytest.approx(1.2909944)}
        empty = await manager.execute("calculator", "stats", {"values": []})
        assert empty.error == "ValueError: values must not be empty"


async def test_notes_limit_comes_from_config(demo: Path) -> None:
    (demo / "config" / "plugins" / "notes.toml").write_text('greeting = "hey"\nmax_notes = 2\n')
    async with PluginManager(demo, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        for text in ("a", "b"):
            assert (await manager.execute("notes", "add", {"text": text})).success
        full = await manager.execute("notes", "add", {"text": "c"})
        assert "the notebook is full (2 notes)" in (full.error or "")
        task = manager.update_config("notes", {"greeting": "hey", "max_notes": 3})
        assert task is not None
        await task
        assert (await manager.execute("notes", "add", {"text": "c"})).result == {"count": 3}
    async with PluginManager(demo, runtimes=default_runtimes()) as manager:  # notes survive a restart
        await manager.discover_and_load_all()
        assert (await manager.execute("notes", "list")).result == {"greeting": "hey", "notes": ["a", "b", "c"]}


async def test_flaky_shows_the_circuit_breaker(demo: Path) -> None:
    now = [0.0]
    guard = Guard(GuardPolicy(BreakerPolicy(3, 60)), clock=lambda: now[0])
    async with PluginManager(demo, runtimes=default_runtimes(), guard=guard) as manager:
        await manager.discover_and_load_all()
        for _ in range(3):
            assert (await manager.execute("flaky", "fail")).error == "RuntimeError: this plugin fails on purpose"
        assert manager.get_plugin("flaky").state is PluginState.ISOLATED  # type: ignore[union-attr]
        assert (await manager.execute("flaky", "ok")).metadata["isolated"] is True
        hang = await manager.execute("flaky", "hang")  # the manifest's 2 s limit is not reached here …
        assert hang.metadata["isolated"] is True
        now[0] += 60
        assert (await manager.execute("flaky", "ok")).result == "ok"
        assert manager.get_plugin("flaky").state is PluginState.ENABLED  # type: ignore[union-attr]
        timed = await manager.execute("flaky", "hang", {}, timeout=0.05)  # … so force a short one
        assert timed.metadata["timed_out"] is True


async def test_forecast_bot_in_a_simulated_chat(demo: Path) -> None:
    """Matchers, a conversation, a schedule, shared state and the bus, as the console shows them."""
    from plughost.adapters.console import Console
    from plughost.host import Host

    lines: list[str] = []

    async def say(line: str) -> list[str]:
        start = len(lines)
        await console.execute(line)
        return lines[start:]

    async with Host(demo) as host:
        console = Console(host, output=lines.append)
        await say("/as group 123 456")
        assert await say("weather please") == ["bot → group 123: Which city?"]
        assert await say("Lisbon") == ["bot → group 123: Lisbon: 13 °C"]
        assert await say("temp in oslo") == ["bot → group 123: oslo: 19 °C"]
        await eventually(lambda: host.manager.bus.stats()["delivered"] == 2)  # the subscriber's own task
        assert await say("forecast stats") == ["bot → group 123: 2 forecasts given, 2 announced on the bus"]
        [refresh] = [s for s in host.scheduler.schedules() if s.plugin_id == "forecast"]
        assert refresh.to_json()["trigger"] == "every 3600s" and refresh.to_json()["active"]
