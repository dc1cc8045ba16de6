"""Events, the persisted registry, and discovery sources (entry points, runtime scanners)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from plughost import PluginEvent, PluginManager, PluginState
from plughost.core.registry import PluginRegistry
from plughost.runtime import Candidate, LoadRequest, default_runtimes
from plughost.sdk.models import DiscoveryStatus, EventType

PING = "from plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.method('ping')\ndef ping():\n    return 'pong'\n"


async def test_sync_async_and_raising_event_handlers(workspace: Path, write_plugin, caplog) -> None:
    write_plugin("p", PING)
    seen_sync: list[PluginEvent] = []
    seen_async: list[PluginEvent] = []
    delivered = asyncio.Event()

    def broken(event: PluginEvent) -> None:
        raise RuntimeError("handler bug")

    async def async_handler(event: PluginEvent) -> None:
        seen_async.append(event)
        if event.event_type is EventType.EXECUTE:
            delivered.set()

    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        manager.add_event_handler(broken)
        manager.add_event_handler(seen_sync.append)
        manager.add_event_handler(async_handler)
        await manager.discover_and_load_all()
        assert (await manager.execute("p", "ping")).result == "pong"
        await asyncio.wait_for(delivered.wait(), 5)
    assert [e.event_type for e in seen_sync][:3] == [EventType.LOAD, EventType.ENABLE, EventType.EXECUTE]
    assert EventType.EXECUTE in [e.event_type for e in seen_async]
    assert "handler bug" in caplog.text


async def test_event_history_is_bounded_and_filterable(workspace: Path, write_plugin) -> None:
    write_plugin("a", PING)
    write_plugin("b", PING)
    (workspace / "plughost.toml").write_text("[host]\nevent_history = 20\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        for _ in range(30):
            await manager.execute("a", "ping")
        await manager.execute("b", "ping")
        assert len(manager.get_events()) == 20
        assert {e.plugin_name for e in manager.get_events("b")} == {"b"}
        assert {e.plugin_id for e in manager.get_events("b")} == {"b"}  # the same value, named for what it is
        assert manager.get_events("b")[-1].event_type is EventType.EXECUTE


async def test_registry_is_persisted_and_restored(workspace: Path, write_plugin) -> None:
    write_plugin(
        "weather",
        PING,
        manifest_extra='description = "Forecasts"\ntype = "tool"\ntags = ["Sky"]\nkeywords = ["rain"]\n',
    )
    write_plugin("other", PING, manifest_extra='type = "hook"\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        await manager.disable_plugin("other")
    registry = PluginRegistry(workspace / ".plughost" / "registry.json")  # a fresh process would do this
    assert registry.has("weather") and registry.get("weather").description == "Forecasts"  # type: ignore[union-attr]
    assert [e.id for e in registry.list_by_type("tool")] == ["weather"]
    assert [e.id for e in registry.find_by_tag("sky")] == ["weather"]
    assert [e.id for e in registry.find_by_keyword("RAIN")] == ["weather"]
    assert [e.id for e in registry.find_by_keyword("forecast")] == ["weather"]
    assert registry.list_by_state(PluginState.UNLOADED) == registry.list_all()  # shut down cleanly
    assert registry.unregister("other") and not PluginRegistry(registry.path).has("other")


async def test_corrupt_registry_is_ignored_with_warning(workspace: Path, caplog) -> None:
    path = workspace / ".plughost" / "registry.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        registry = PluginRegistry(path)
    assert registry.list_all() == [] and "registry.json is corrupt (Invalid JSON" in caplog.text


async def test_list_plugins_filters(workspace: Path, write_plugin) -> None:
    write_plugin("a", PING, manifest_extra='type = "tool"\ntags = ["x"]\npriority = 10\n')
    write_plugin("b", PING, manifest_extra='type = "hook"\nkeywords = ["special"]\npriority = 500\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert [i.id for i in manager.list_plugins()] == ["b", "a"]  # priority high first
        assert [i.id for i in manager.list_plugins(type="tool")] == ["a"]
        assert [i.id for i in manager.list_plugins(tag="X")] == ["a"]
        assert [i.id for i in manager.list_plugins(keyword="spec")] == ["b"]
        await manager.disable_plugin("a")
        assert [i.id for i in manager.list_plugins(state="disabled")] == ["a"]


def test_entry_point_plugins_are_discovered_and_loaded(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    package = site / "shiny_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from plughost.sdk import Plugin\nplugin = Plugin(id='shiny', version='3.1.0')\n"
        "@plugin.method('hi')\ndef hi() -> str:\n    return 'from a package'\n"
    )
    dist = site / "shiny_plugin-3.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shiny-plugin\nVersion: 3.1.0\n")
    (dist / "entry_points.txt").write_text("[plughost.plugins]\nshiny = shiny_plugin:plugin\n")
    monkeypatch.syspath_prepend(str(site))
    (tmp_path / "plugins").mkdir()

    async def scenario() -> None:
        async with PluginManager(tmp_path, runtimes=default_runtimes()) as manager:
            await manager.discover_and_load_all()
            instance = manager.get_plugin("shiny")
            assert instance is not None and instance.origin == "entry-point:shiny-plugin"
            assert manager.get_plugin("shiny").manifest.version == "3.1.0"  # type: ignore[union-attr]
            assert (await manager.execute("shiny", "hi")).result == "from a package"
            await manager.unload_plugin("shiny")
            assert "shiny_plugin" not in sys.modules

    asyncio.run(scenario())


class ScanningRuntime:
    """A runtime that finds `*.fake` files without manifests, like the native runtime does."""

    name = "fake"

    def discover(self, directory: Path) -> list[Candidate]:
        from plughost.sdk.manifest import PluginManifest

        return [
            Candidate(p.stem, p, PluginManifest(id=p.stem, runtime="python"), DiscoveryStatus.AVAILABLE, str(directory))
            for p in sorted(directory.glob("*.fake"))
        ]

    async def load(self, request: LoadRequest):  # pragma: no cover - never loaded in this test
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


async def test_runtime_scanners_add_candidates(workspace: Path) -> None:
    (workspace / "plugins" / "thing.fake").write_text("")
    runtimes = {**default_runtimes(), "fake": ScanningRuntime()}
    async with PluginManager(workspace, runtimes=runtimes) as manager:
        report = manager.discover()
        assert "thing" in report.candidates and report.candidates["thing"].origin == str(workspace / "plugins")


async def test_process_plugin_discovery_statuses(workspace: Path, write_plugin) -> None:
    ready = write_plugin("ready", "", manifest='id = "ready"\nversion = "1.0.0"\nbinary = "bin/ready"\n')
    (ready / "bin").mkdir()
    (ready / "bin" / "ready").write_text("#!/bin/sh\n")
    (ready / "bin" / "ready").chmod(0o755)
    buildable = write_plugin("buildable", "", manifest='id = "buildable"\nversion = "1.0.0"\nbinary = "bin/b"\n')
    (buildable / "scripts").mkdir()
    (buildable / "scripts" / "build.sh").write_text("#!/bin/sh\n")
    write_plugin("nothing", "", manifest='id = "nothing"\nversion = "1.0.0"\nbinary = "bin/n"\n')
    async with PluginManager(workspace, runtimes={}) as manager:
        report = manager.discover()
        assert report.candidates["ready"].status is DiscoveryStatus.AVAILABLE
        assert report.candidates["buildable"].status is DiscoveryStatus.SOURCE_ONLY
        (nothing,) = report.invalid
        assert nothing.errors[0].field == "binary" and "scripts/build.sh" in nothing.errors[0].message


async def test_missing_runtime_is_a_clear_load_error(workspace: Path, write_plugin) -> None:
    write_plugin("isolated", PING, manifest_extra='isolation = "process"\n')
    from plughost.runtime.placement import PlacedRuntime
    from plughost.runtime.python import PythonRuntime

    python_without_worker = PlacedRuntime("python", in_process=PythonRuntime())
    async with PluginManager(workspace, runtimes={"python": python_without_worker}) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("isolated")
        assert instance is not None and instance.error == "isolation 'process' is not available in this installation"
    async with PluginManager(workspace, runtimes={}) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("isolated")
        assert instance is not None and instance.error == "runtime 'python' is not available in this installation"
