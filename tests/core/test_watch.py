"""Hot reload with real files and real watchfiles: a saved plugin reloads, alone, in its runtime.

Nothing here waits for a fixed time: tests wait for events (with a timeout) and for the watcher to
settle. To show that a change did *not* reload a plugin, a second plugin (`marker`) is saved after
it: the OS reports changes in order, so once the marker's reload is done and the watcher has
settled, every earlier change has been acted on.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost import PluginManager, PluginState
from plughost.core.watch import ignored
from plughost.errors import PlugHostError
from plughost.sdk.models import EventType
from tests.conftest import PluginWriter
from tests.core.watching import VERSIONED, Events, answer, save

DEBOUNCE_MS = 150


@pytest.fixture
async def manager(workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[PluginManager]:
    """Plugins `alpha` and `marker`, loaded and watched."""
    (workspace / "plughost.toml").write_text(
        f'[host]\nreload_debounce_ms = {DEBOUNCE_MS}\nentry_points = false\n[process]\nsocket_dir = "run"\n'
    )
    write_plugin("alpha", VERSIONED.format(value="alpha 1"))
    write_plugin("marker", VERSIONED.format(value="marker 1"))
    async with PluginManager(workspace) as manager:
        assert await manager.discover_and_load_all() == 2
        await manager.watch()
        yield manager


async def settle_after_marker(manager: PluginManager, events: Events, workspace: Path, value: str) -> None:
    """Save `marker`, wait for its reload, then until the watcher has acted on every change."""
    since = events.mark()
    save(workspace / "plugins" / "marker" / "plugin.py", VERSIONED.format(value=value))
    await events.wait("marker", EventType.RELOAD, since)
    await manager.watcher.settled()
    assert await answer(manager, "marker") == value


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "plughost-watch"]


def test_what_is_ignored() -> None:
    for parts in [
        (".plugin.py.swp",),
        ("plugin.py~",),
        (".#plugin.py",),
        ("#plugin.py#",),
        ("4913",),
        ("plugin.py.tmp",),
        ("__pycache__", "plugin.cpython-311.pyc"),
        ("alpha", "data", "state.json"),
        ("alpha", ".plughost", "x"),
        ("alpha", ".git", "HEAD"),
        ("alpha", "node_modules", "x.js"),
    ]:
        assert ignored(parts), parts
    for parts in [("alpha", "plugin.py"), ("alpha", "plugin.toml"), ("alpha.so",), ("alpha", "bin", "alpha")]:
        assert not ignored(parts), parts


async def test_a_saved_plugin_reloads_alone_and_its_new_code_answers(manager: PluginManager, workspace: Path) -> None:
    events = Events(manager)
    assert await answer(manager, "alpha") == "alpha 1"
    save(workspace / "plugins" / "alpha" / "plugin.py", VERSIONED.format(value="alpha 2"))
    reload = await events.wait("alpha", EventType.RELOAD)
    assert reload.success
    assert await answer(manager, "alpha") == "alpha 2"
    await settle_after_marker(manager, events, workspace, "marker 2")
    assert len(events.of("alpha", EventType.RELOAD)) == 1 and len(events.of("marker", EventType.RELOAD)) == 1
    generations = {m.split(".")[0] for m in sys.modules if m.startswith("plughost_plugin__alpha")}
    assert len(generations) == 1, generations  # the old version's modules are gone


async def test_three_quick_saves_are_one_reload(manager: PluginManager, workspace: Path) -> None:
    events = Events(manager)
    code = workspace / "plugins" / "alpha" / "plugin.py"
    for n in (2, 3, 4):
        save(code, VERSIONED.format(value=f"alpha {n}"))
    await settle_after_marker(manager, events, workspace, "marker 2")
    assert [e.success for e in events.of("alpha", EventType.RELOAD)] == [True]
    assert await answer(manager, "alpha") == "alpha 4"


async def test_a_broken_save_keeps_the_old_version_serving_and_a_fix_reloads(
    manager: PluginManager, workspace: Path
) -> None:
    events = Events(manager)
    code = workspace / "plugins" / "alpha" / "plugin.py"
    save(code, "from plughost.sdk import Plugin\nplugin = Plugin(\n")
    error = await events.wait("alpha", EventType.ERROR)
    assert error.success is False and "SyntaxError" in (error.error or "") and "plugin.py" in (error.error or "")
    assert "old version keeps serving" in error.message
    assert error.metadata == {"trigger": "watch", "paths": [str(code)]}
    assert await answer(manager, "alpha") == "alpha 1"
    assert manager.get_plugin("alpha").state is PluginState.ENABLED  # type: ignore[union-attr]

    since = events.mark()
    save(code, VERSIONED.format(value="alpha fixed"))
    await events.wait("alpha", EventType.RELOAD, since, check=lambda e: e.success)
    assert await answer(manager, "alpha") == "alpha fixed"


async def test_a_new_plugin_loads_and_a_removed_one_unloads(
    manager: PluginManager, workspace: Path, write_plugin: PluginWriter
) -> None:
    events = Events(manager)
    write_plugin("beta", VERSIONED.format(value="beta 1"))
    await events.wait("beta", EventType.LOAD)
    await events.wait("beta", EventType.ENABLE)
    assert await answer(manager, "beta") == "beta 1"

    single = workspace / "plugins" / "gamma.py"
    save(single, 'from plughost.sdk import Plugin\nplugin = Plugin(id="gamma", version="1.0.0")\n'
                 '@plugin.method("value")\ndef value() -> str:\n    return "gamma 1"\n')  # fmt: skip
    await events.wait("gamma", EventType.ENABLE)
    assert await answer(manager, "gamma") == "gamma 1"

    shutil.rmtree(workspace / "plugins" / "beta")
    single.unlink()
    await events.wait("beta", EventType.UNLOAD)
    await events.wait("gamma", EventType.UNLOAD)
    await manager.watcher.settled()
    assert manager.get_plugin("beta") is None and manager.get_plugin("gamma") is None
    assert sorted(i.id for i in manager.list_plugins()) == ["alpha", "marker"]
    assert not (await manager.execute("beta", "value")).success


async def test_a_disabled_plugin_stays_disabled_and_priorities_are_kept(
    manager: PluginManager, workspace: Path
) -> None:
    events = Events(manager)
    await manager.disable_plugin("alpha")
    manager.set_priority("alpha", 700)
    manager.set_priority("marker", 5)
    save(workspace / "plugins" / "alpha" / "plugin.py", VERSIONED.format(value="alpha 2"))
    await events.wait("alpha", EventType.RELOAD)
    alpha = manager.get_plugin("alpha")
    assert alpha is not None and alpha.state is PluginState.DISABLED and alpha.priority == 700
    assert alpha.handle is not None and alpha.handle.descriptor.priority == 700
    await settle_after_marker(manager, events, workspace, "marker 2")
    marker = manager.get_plugin("marker")
    assert marker is not None and marker.state is PluginState.ENABLED and marker.priority == 5
    assert not events.of("alpha", EventType.ENABLE)
    await manager.enable_plugin("alpha")
    assert await answer(manager, "alpha") == "alpha 2"


async def test_temp_swap_bytecode_and_data_changes_do_not_reload(manager: PluginManager, workspace: Path) -> None:
    events = Events(manager)
    alpha = workspace / "plugins" / "alpha"
    for name in (".plugin.py.swp", "plugin.py~", ".#plugin.py", "#plugin.py#", "4913", "plugin.py.tmp"):
        save(alpha / name, "noise")
    for directory, name in (("__pycache__", "plugin.cpython-311.pyc"), ("data", "state.json"), (".plughost", "x")):
        (alpha / directory).mkdir(exist_ok=True)
        save(alpha / directory / name, "noise")
    (workspace / "plugins" / ".hidden").mkdir()
    save(workspace / "plugins" / ".hidden" / "plugin.toml", 'id = "hidden"\nversion = "1.0.0"\n')
    save(workspace / "data" / "alpha" / "cache.json", "{}")
    await settle_after_marker(manager, events, workspace, "marker 2")
    assert not events.of("alpha", EventType.RELOAD) and not events.of("alpha", EventType.ERROR)
    assert sorted(i.id for i in manager.list_plugins()) == ["alpha", "marker"]


async def test_an_edit_in_the_same_second_and_of_the_same_size_runs_the_new_code(
    manager: PluginManager, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LurkBot's bug: its reload re-ran the old code. A timestamp `.pyc` records the source's mtime
    in whole seconds and its size; an edit that keeps both must not bring the old code back."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the host writes bytecode, as it does by default
    events = Events(manager)
    code = workspace / "plugins" / "alpha" / "plugin.py"
    when = (int(code.stat().st_mtime) - 10) * 1_000_000_000  # a whole second, in the past
    save(code, VERSIONED.format(value="alpha A"))
    os.utime(code, ns=(when, when + 100_000_000))
    await events.wait("alpha", EventType.RELOAD)
    assert await answer(manager, "alpha") == "alpha A"
    cached = Path(importlib.util.cache_from_source(str(code)))
    assert cached.is_file()  # this load wrote bytecode for the source as it was

    since = events.mark()
    save(code, VERSIONED.format(value="alpha B"))  # same size, and the same second:
    os.utime(code, ns=(when, when + 500_000_000))
    await events.wait("alpha", EventType.RELOAD, since)
    assert await answer(manager, "alpha") == "alpha B"


async def test_a_config_file_edit_reconfigures_without_a_reload(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin(
        "tuned",
        """
        from plughost.sdk import Plugin, PluginContext
        plugin = Plugin()
        seen = []

        @plugin.on_reconfigure
        def reconfigure(ctx: PluginContext, config: dict) -> None:
            seen.append(config)

        @plugin.method("seen")
        def get_seen() -> list:
            return seen
        """,
    )
    (workspace / "plughost.toml").write_text(f"[host]\nreload_debounce_ms = {DEBOUNCE_MS}\nentry_points = false\n")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        await manager.watch()
        events = Events(manager)
        config = workspace / "config" / "plugins" / "tuned.toml"
        save(config, 'greeting = "moin"\n')
        await events.wait("tuned", EventType.RECONFIGURE)
        assert await answer(manager, "tuned", "seen") == [{"greeting": "moin"}]

        since = events.mark()
        save(config, 'greeting = "moin\n')  # broken TOML: reported, nothing applied
        error = await events.wait("tuned", EventType.ERROR, since)
        assert "invalid TOML" in (error.error or "") and "tuned.toml" in (error.error or "")

        update = manager.update_config("tuned", {"greeting": "hej"})  # written by the host: applied once
        assert update is not None
        await update
        since = events.mark()
        save(config, 'greeting = "hallo"\n')
        await events.wait("tuned", EventType.RECONFIGURE, since)
        await manager.watcher.settled()
        seen = await answer(manager, "tuned", "seen")
        assert seen[0] == {"greeting": "moin"} and seen[-1] == {"greeting": "hallo"}
        assert seen.count({"greeting": "hej"}) == 1
        assert not events.of("tuned", EventType.RELOAD)


async def test_a_plugin_that_failed_to_load_loads_once_fixed(workspace: Path, write_plugin: PluginWriter) -> None:
    directory = write_plugin("late", "raise RuntimeError('not yet')\n")
    (workspace / "plughost.toml").write_text(f"[host]\nreload_debounce_ms = {DEBOUNCE_MS}\nentry_points = false\n")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        assert manager.get_plugin("late").state is PluginState.ERROR  # type: ignore[union-attr]
        await manager.watch()
        events = Events(manager)
        save(directory / "plugin.py", VERSIONED.format(value="late 1"))
        await events.wait("late", EventType.ENABLE)
        assert await answer(manager, "late") == "late 1"


async def test_a_worker_hosted_plugin_reloads_in_a_new_worker(workspace: Path, write_plugin: PluginWriter) -> None:
    code = textwrap.dedent(
        """
        import os
        from plughost.sdk import Plugin
        plugin = Plugin()

        @plugin.method("where")
        def where() -> list:
            return ["{value}", os.getpid()]
        """
    )
    directory = write_plugin("isolated", code.replace("{value}", "v1"), manifest_extra='isolation = "process"\n')
    (workspace / "plughost.toml").write_text(
        f'[host]\nreload_debounce_ms = {DEBOUNCE_MS}\nentry_points = false\n[process]\nsocket_dir = "run"\n'
    )
    async with PluginManager(workspace) as manager:
        assert await manager.discover_and_load_all() == 1
        await manager.watch()
        events = Events(manager)
        value, first_pid = await answer(manager, "isolated", "where")  # type: ignore[misc]
        assert value == "v1" and first_pid != os.getpid()
        save(directory / "plugin.py", code.replace("{value}", "v2"))  # same size: stale bytecode would say v1
        await events.wait("isolated", EventType.RELOAD, check=lambda e: e.success)
        value, pid = await answer(manager, "isolated", "where")  # type: ignore[misc]
        assert value == "v2" and pid not in (first_pid, os.getpid())
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)  # the old worker was stopped


async def test_watching_is_owned_unwatch_stops_it_and_shutdown_leaves_nothing(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        with pytest.raises(PlugHostError, match="does not exist"):
            await manager.watch([workspace / "nowhere"])
        assert not manager.watcher.running and not watch_threads()
        await manager.watch()
        assert manager.watcher.running and len(watch_threads()) == 1
        plugins, configs = (workspace / "plugins").resolve(), (workspace / "config" / "plugins").resolve()
        assert manager.watcher.paths == (plugins, configs)
        await manager.watch([workspace / "plugins"])  # already watched: nothing changes
        assert len(watch_threads()) == 1
        await manager.unwatch([workspace / "plugins"])
        assert manager.watcher.paths == (configs,)
        await manager.unwatch()
        assert not manager.watcher.running and not watch_threads() and manager.watcher.paths == ()
        await manager.watch()
    assert not watch_threads() and not manager.watcher.running
    assert not list(manager.tasks) and manager.tasks.closed
