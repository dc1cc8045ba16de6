"""Hot reload of a Go plugin from its sources: saving `main.go` builds it again with its
`scripts/build.sh` and reloads it once (the binary the build writes is not a second change); a save
that does not compile keeps the running version serving and reports the compiler's output."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost import PluginManager
from plughost.cli.scaffold_native import write_native_plugin
from plughost.sdk.models import EventType
from tests.conftest import PluginWriter, require_tool
from tests.core.watching import VERSIONED, Events, answer, save

GO_PLUGIN = "greet-go"


@pytest.fixture
async def manager(workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[PluginManager]:
    """The Go scaffold (built by the host on load) and a Python `marker`, loaded and watched."""
    require_tool("go", "the Go plugin is built from its sources")
    if not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        message = "golang-github-hashicorp-go-plugin-dev is not installed (apt-get install it)"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)
    (workspace / "plughost.toml").write_text(
        '[host]\nreload_debounce_ms = 150\nentry_points = false\n[process]\nsocket_dir = "run"\n'
    )
    directory = workspace / "plugins" / GO_PLUGIN
    (directory / "tests").mkdir(parents=True)
    write_native_plugin(directory, "go", GO_PLUGIN, GO_PLUGIN, "test_greet_go.py")
    write_plugin("marker", VERSIONED.format(value="marker 1"))
    async with PluginManager(workspace) as manager:
        assert await manager.discover_and_load_all() == 2
        await manager.watch()
        yield manager


async def greeting(manager: PluginManager) -> object:
    result = await manager.execute(GO_PLUGIN, "hello", {"name": "Ada"})
    assert result.success, result.error
    assert isinstance(result.result, dict)
    return result.result["greeting"]


async def test_a_saved_go_source_is_built_again_and_reloaded_once(manager: PluginManager, workspace: Path) -> None:
    events = Events(manager)
    source = workspace / "plugins" / GO_PLUGIN / "main.go"
    binary = workspace / "plugins" / GO_PLUGIN / "bin" / GO_PLUGIN
    assert await greeting(manager) == "hello, Ada"
    built_first = binary.stat().st_mtime_ns

    since = events.mark()
    save(source, source.read_text().replace('"hello, " + name', '"hi, " + name'))
    await events.wait(GO_PLUGIN, EventType.RELOAD, since)
    assert await greeting(manager) == "hi, Ada"  # the new source, not the old binary
    assert binary.stat().st_mtime_ns != built_first

    # the marker's reload comes after every change the OS reported before it: the binary the build
    # wrote did not reload the plugin a second time
    marked = events.mark()
    save(workspace / "plugins" / "marker" / "plugin.py", VERSIONED.format(value="marker 2"))
    await events.wait("marker", EventType.RELOAD, marked)
    await manager.watcher.settled()
    assert len(events.of(GO_PLUGIN, EventType.RELOAD, since)) == 1
    assert await answer(manager, "marker") == "marker 2"

    # a save that does not compile: reported with the compiler's output, the running version serves
    broken = events.mark()
    save(source, source.read_text().replace('"hi, " + name', '"hi, " + nam'))
    failed = await events.wait(GO_PLUGIN, EventType.ERROR, broken)
    assert "build failed" in (failed.error or "") and "undefined: nam" in (failed.error or "")
    assert await greeting(manager) == "hi, Ada"
    assert not events.of(GO_PLUGIN, EventType.RELOAD, broken)

    # fixed: built and reloaded
    fixed = events.mark()
    save(source, source.read_text().replace('"hi, " + nam', '"hey, " + name'))
    await events.wait(GO_PLUGIN, EventType.RELOAD, fixed)
    assert await greeting(manager) == "hey, Ada"
