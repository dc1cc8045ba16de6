"""Manager lifecycle with real Python plugins on disk: load, enable, disable, unload, reload."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from pathlib import Path

import pytest

from plughost import PluginManager, PluginState
from plughost.errors import PluginLoadError, PluginNotFoundError, PluginStateError
from plughost.runtime import default_runtimes
from plughost.runtime.python import PythonRuntime
from plughost.sdk.call import Call
from plughost.sdk.models import EventType
from plughost.sdk.tasks import TaskOwner

COUNTER = """
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
calls = []

@plugin.on_load
def setup(ctx: PluginContext) -> None:
    calls.append("load")

@plugin.on_enable
async def on_enable(ctx):
    calls.append("enable")

@plugin.on_disable
def on_disable(ctx):
    calls.append("disable")

@plugin.method("value")
def value() -> int:
    return {value}

@plugin.method("calls")
def get_calls() -> list:
    return calls
"""


async def test_load_enable_disable_unload_cycle(workspace: Path, write_plugin) -> None:
    write_plugin("counter", COUNTER.format(value=1))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 1
        instance = manager.get_plugin("counter")
        assert instance is not None and instance.state is PluginState.ENABLED
        assert (await manager.execute("counter", "calls")).result == ["load", "enable"]

        assert await manager.disable_plugin("counter") is True
        assert await manager.disable_plugin("counter") is False
        disabled = await manager.execute("counter", "value")
        assert not disabled.success and "disabled" in (disabled.error or "")

        assert await manager.enable_plugin("counter") is True
        assert (await manager.execute("counter", "value")).result == 1

        assert await manager.unload_plugin("counter") is True
        assert instance.state is PluginState.UNLOADED
        assert not any(m.startswith("plughost_plugin__counter") for m in sys.modules)
        types = [e.event_type for e in manager.get_events("counter")]
        assert types[:3] == [EventType.LOAD, EventType.ENABLE, EventType.EXECUTE]
        assert EventType.DISABLE in types and types[-1] is EventType.UNLOAD


async def test_unknown_plugin_errors(workspace: Path) -> None:
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        with pytest.raises(PluginNotFoundError, match="plugin 'ghost' was not found"):
            await manager.enable_plugin("ghost")
        result = await manager.execute("ghost", "x")
        assert not result.success and result.error == "plugin 'ghost' was not found"


async def test_enabled_state_persists_across_restarts(workspace: Path, write_plugin) -> None:
    write_plugin("counter", COUNTER.format(value=1))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        await manager.disable_plugin("counter")
        manager.set_priority("counter", 900)
    text = (workspace / "plugin-state.toml").read_text()
    assert "[modules]" in text and "counter = false" in text and "counter = 900" in text
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("counter")
        assert instance is not None and instance.state is PluginState.DISABLED and instance.priority == 900


async def test_manifest_enabled_false_loads_disabled(workspace: Path, write_plugin) -> None:
    write_plugin("counter", COUNTER.format(value=1), manifest_extra="enabled = false\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.get_plugin("counter").state is PluginState.DISABLED  # type: ignore[union-attr]


DISABLED_COUNTER = (
    "plugin 'counter' is disabled; enable it with `/plugins enable counter` or `plughost plugins enable counter`"
)


async def test_plugin_disabled_in_state_file_is_disabled_and_can_be_enabled(workspace: Path, write_plugin) -> None:
    write_plugin("counter", COUNTER.format(value=1))
    state_file = workspace / "plugin-state.toml"
    state_file.write_text("[modules]\ncounter = false\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("counter")
        assert instance is not None and instance.is_loaded and not instance.is_enabled
        assert instance.state is PluginState.DISABLED and instance.summary()["state"] == "disabled"
        assert manager.registry.get("counter").state is PluginState.DISABLED  # type: ignore[union-attr]
        assert [e.event_type for e in manager.get_events("counter")] == [EventType.LOAD, EventType.DISABLE]
        result = await manager.execute("counter", "value")
        assert not result.success and result.error == DISABLED_COUNTER
        outcome = await manager.call("counter", Call("value"))
        assert outcome.error is not None and outcome.error.code == "unavailable"
        assert str(outcome.error) == DISABLED_COUNTER

        # disabled → enabled → disabled: state, registry and state file agree at each step
        assert await manager.enable_plugin("counter") is True
        assert instance.state is PluginState.ENABLED
        assert manager.registry.get("counter").state is PluginState.ENABLED  # type: ignore[union-attr]
        assert "counter = true" in state_file.read_text()
        assert (await manager.execute("counter", "value")).result == 1
        assert (await manager.execute("counter", "calls")).result == ["load", "enable"]
        assert await manager.enable_plugin("counter") is False
        assert await manager.disable_plugin("counter") is True
        assert instance.state is PluginState.DISABLED
        assert manager.registry.get("counter").state is PluginState.DISABLED  # type: ignore[union-attr]
        assert "counter = false" in state_file.read_text()
        assert await manager.disable_plugin("counter") is False
        assert (await manager.execute("counter", "value")).error == DISABLED_COUNTER
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.get_plugin("counter").state is PluginState.DISABLED  # type: ignore[union-attr]
        assert manager.registry.get("counter").state is PluginState.DISABLED  # type: ignore[union-attr]


async def test_plugin_whose_enable_hook_fails_at_load_is_disabled_with_the_reason(
    workspace: Path, write_plugin
) -> None:
    write_plugin(
        "moody",
        """
        from plughost.sdk import Plugin
        plugin = Plugin()
        ready = []

        @plugin.on_enable
        def on_enable(ctx):
            if not ready:
                ready.append(True)
                raise RuntimeError("no database yet")

        @plugin.method("ping")
        def ping() -> str:
            return "pong"
        """,
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("moody")
        assert instance is not None and instance.state is PluginState.DISABLED
        error = (await manager.execute("moody", "ping")).error or ""
        assert error.startswith("plugin 'moody' is disabled (enabling it failed: RuntimeError at ")
        assert error.endswith(
            "moody/plugin.py:10: no database yet); "
            "enable it with `/plugins enable moody` or `plughost plugins enable moody`"
        )
        assert await manager.enable_plugin("moody") is True
        assert instance.state is PluginState.ENABLED and instance.error is None
        assert (await manager.execute("moody", "ping")).result == "pong"


async def test_reload_runs_new_code_and_keeps_enabled_state(workspace: Path, write_plugin) -> None:
    directory = write_plugin("counter", COUNTER.format(value=1))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert (await manager.execute("counter", "value")).result == 1
        (directory / "plugin.py").write_text(COUNTER.format(value=2))
        await manager.reload_plugin("counter")
        assert (await manager.execute("counter", "value")).result == 2
        assert manager.get_plugin("counter").state is PluginState.ENABLED  # type: ignore[union-attr]
        generations = [m for m in sys.modules if m.startswith("plughost_plugin__counter")]
        assert len({m.split(".")[0] for m in generations}) == 1, generations
        assert [e.success for e in manager.get_events("counter") if e.event_type is EventType.RELOAD] == [True]


async def test_failed_reload_keeps_old_version_serving(workspace: Path, write_plugin) -> None:
    directory = write_plugin("counter", COUNTER.format(value=1))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        (directory / "plugin.py").write_text("def broken(:\n")
        with pytest.raises(PluginLoadError, match="SyntaxError"):
            await manager.reload_plugin("counter")
        assert (await manager.execute("counter", "value")).result == 1
        reload_events = [e for e in manager.get_events("counter") if e.event_type is EventType.RELOAD]
        assert reload_events[-1].success is False and "SyntaxError" in (reload_events[-1].error or "")


async def test_failing_load_hook_during_reload_keeps_old(workspace: Path, write_plugin) -> None:
    directory = write_plugin("counter", COUNTER.format(value=1))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        (directory / "plugin.py").write_text(
            "from plughost.sdk import Plugin\nplugin = Plugin()\n"
            "@plugin.on_load\ndef boom(ctx):\n    raise RuntimeError('no database')\n"
        )
        with pytest.raises(PluginLoadError, match="no database"):
            await manager.reload_plugin("counter")
        assert (await manager.execute("counter", "value")).result == 1


async def test_unload_cancels_and_awaits_spawned_tasks(workspace: Path, write_plugin) -> None:
    """Tasks started with `ctx.spawn` are the plugin's: unload cancels them and waits for their cleanup.
    A plain `create_task` in plugin code is not tracked (docs/python-api.md)."""
    write_plugin(
        "ticker",
        """
        import asyncio
        from plughost.sdk import Plugin
        plugin = Plugin()
        state = {}

        async def forever(name):
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0)  # cleanup that itself awaits: unload waits for it
                state[name] = "cancelled"

        @plugin.on_load
        async def setup(ctx):
            state["spawned"] = ctx.spawn(forever("spawned"), name="ticker:forever")
            state["untracked"] = asyncio.get_running_loop().create_task(forever("untracked"))
            state["ctx"] = ctx
        """,
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        module = next(m for n, m in sys.modules.items() if n.startswith("plughost_plugin__ticker") and "." in n)
        spawned, untracked, ctx = module.state["spawned"], module.state["untracked"], module.state["ctx"]
        assert list(ctx.tasks) == [spawned]
        await manager.unload_plugin("ticker")
        assert spawned.cancelled() and module.state.get("spawned") == "cancelled"  # awaited, not just cancelled
        assert list(ctx.tasks) == [] and ctx.tasks.closed
        with pytest.raises(RuntimeError, match="closed"):
            ctx.spawn(asyncio.sleep(0))  # an unloaded plugin starts nothing more
        assert not untracked.done()  # not the plugin's as far as the host can tell
        untracked.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await untracked


async def test_failing_spawned_task_is_logged_to_the_plugin_logger(
    workspace: Path, write_plugin, caplog: pytest.LogCaptureFixture
) -> None:
    write_plugin(
        "crashy",
        """
        from plughost import Plugin
        plugin = Plugin()

        async def boom():
            raise SystemExit("a background task of a plugin never stops the host")

        @plugin.method("start")
        async def start(ctx):
            return await ctx.spawn(boom(), name="crashy:boom")
        """,
    )
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute("crashy", "start")
        assert result.success and result.result is None
        record = next(r for r in caplog.records if "crashy:boom failed" in r.getMessage())
        assert record.name == "plughost.plugin.crashy" and record.exc_info is not None


async def test_unload_waits_for_a_blocked_sync_handler_until_its_deadline(
    workspace: Path, write_plugin, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread cannot be stopped: unload waits `stop_timeout_s` for running sync handlers, then
    abandons their threads with a warning instead of hanging."""
    write_plugin(
        "blocker",
        """
        import threading, time
        from plughost import Plugin
        plugin = Plugin()
        started, release = threading.Event(), threading.Event()

        @plugin.method("block")
        def block() -> str:
            started.set()
            while not release.is_set():
                time.sleep(0.01)
            return "released"
        """,
    )
    async with PluginManager(workspace, runtimes={"python": PythonRuntime(stop_timeout_s=0.2)}) as manager:
        await manager.discover_and_load_all()
        module = next(m for n, m in sys.modules.items() if n.startswith("plughost_plugin__blocker") and "." in n)
        async with TaskOwner("test") as tasks:
            call = tasks.spawn(manager.execute("blocker", "block"))
            try:
                assert await asyncio.to_thread(module.started.wait, 10)
                async with asyncio.timeout(30):  # without the deadline this would wait for `release` forever
                    await manager.unload_plugin("blocker")
                assert "plugin 'blocker': 1 sync handler(s) still running" in caplog.text
                threads = [t for t in threading.enumerate() if t.name.startswith("plugin-blocker")]
                assert threads  # abandoned, not killed
            finally:
                module.release.set()
            await call
        for thread in threads:  # with its handler returned, the abandoned thread ends
            await asyncio.to_thread(thread.join, 10)
            assert not thread.is_alive()


async def test_single_file_plugin(workspace: Path) -> None:
    (workspace / "plugins" / "solo.py").write_text(
        "from plughost.sdk import Plugin\nplugin = Plugin(id='solo', version='2.0.0')\n"
        "@plugin.execute\nasync def run(ctx):\n    return ctx.input_data * 2\n"
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute_plugin("solo", {"input_data": 21})
        assert result.success and result.result == 42
        assert manager.get_plugin("solo").manifest.version == "2.0.0"  # type: ignore[union-attr]


async def test_single_file_id_must_match_file_name(workspace: Path) -> None:
    (workspace / "plugins" / "solo.py").write_text("from plughost.sdk import Plugin\nplugin = Plugin(id='other')\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("solo")
        assert instance is not None and instance.state is PluginState.ERROR
        assert "Plugin(id='other')" in (instance.error or "")


async def test_lurkbot_class_plugin(workspace: Path, write_plugin) -> None:
    write_plugin(
        "legacy",
        """
        class LegacyPlugin:
            def __init__(self):
                self.ready = False
            async def initialize(self, ctx):
                self.ready = True
            async def execute(self, context):
                return {"ready": self.ready, "user": context.user_id}
        """,
        filename="main.py",
        manifest='name = "legacy"\nversion = "1.0.0"\nentry_point = "main.py"\nmain_class = "LegacyPlugin"\n',
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute_plugin("legacy", {"user_id": "u1"})
        assert result.success, result.error
        assert result.result == {"ready": True, "user": "u1"}


async def test_package_plugin_with_relative_imports(workspace: Path, write_plugin) -> None:
    directory = write_plugin(
        "pkg",
        "from .helpers import double\nfrom plughost.sdk import Plugin\nplugin = Plugin()\n"
        "@plugin.method('d')\ndef d(x: int) -> int:\n    return double(x)\n",
        filename="__init__.py",
    )
    (directory / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert (await manager.execute("pkg", "d", {"x": 4})).result == 8
        await manager.unload_plugin("pkg")
        assert not any(m.startswith("plughost_plugin__pkg") for m in sys.modules)


async def test_sync_handlers_do_not_block_the_loop(workspace: Path, write_plugin) -> None:
    write_plugin(
        "blocking",
        """
        import threading
        from plughost.sdk import Plugin
        plugin = Plugin()
        gate = threading.Event()

        @plugin.method("wait")
        def wait() -> str:
            gate.wait(10)
            return "released" if gate.is_set() else "timed out"

        @plugin.method("release")
        async def release() -> None:
            gate.set()
        """,
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        waiting = asyncio.create_task(manager.execute("blocking", "wait"))
        await asyncio.sleep(0)  # let the blocking call start in its thread
        await manager.execute("blocking", "release")  # only possible if the loop is free
        result = await asyncio.wait_for(waiting, 5)
        assert result.result == "released"


async def test_load_plugin_by_path_and_duplicate_load(tmp_path: Path, write_plugin) -> None:
    directory = write_plugin("counter", COUNTER.format(value=7), parent=tmp_path / "elsewhere")
    async with PluginManager(tmp_path, runtimes=default_runtimes()) as manager:
        instance = await manager.load_plugin(directory)
        assert instance.state is PluginState.ENABLED
        assert (await manager.execute("counter", "value")).result == 7
        with pytest.raises(PluginStateError, match="already loaded"):
            await manager.load_plugin(directory)


async def test_shutdown_unloads_everything(workspace: Path, write_plugin) -> None:
    write_plugin("a", COUNTER.format(value=1))
    write_plugin("b", COUNTER.format(value=2))
    manager = PluginManager(workspace, runtimes=default_runtimes())
    await manager.discover_and_load_all()
    await manager.shutdown()
    assert all(i.state is PluginState.UNLOADED for i in manager.list_plugins())
    assert not any(m.startswith("plughost_plugin__") for m in sys.modules)


async def test_a_module_that_loops_or_waits_at_import_fails_its_load_and_the_host_goes_on(
    workspace: Path, write_plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module-level `while True` (or a blocking wait) used to hold the event loop for good: the import
    now runs on a thread of its own with a deadline, a looping import is interrupted, and the host
    keeps serving; a reload into such a version keeps the old one."""
    monkeypatch.setattr("plughost.runtime.python.IMPORT_TIMEOUT_S", 0.5)
    write_plugin("counter", COUNTER.format(value=1))
    write_plugin("spin", "while True:\n    pass\n")
    write_plugin("nap", "import time\ntime.sleep(3)\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 1
        for plugin_id in ("spin", "nap"):
            instance = manager.get_plugin(plugin_id)
            assert instance is not None and instance.state is PluginState.ERROR
            assert "did not finish within 0.5 s and was interrupted" in (instance.error or "")
        assert (await manager.execute("counter", "value")).result == 1
        for spinner in [t for t in threading.enumerate() if t.name == "plugin-spin-import"]:
            await asyncio.to_thread(spinner.join, 10)
            assert not spinner.is_alive()  # interrupted: on its own it would spin for ever

        (workspace / "plugins" / "counter" / "plugin.py").write_text("while True:\n    pass\n")
        with pytest.raises(PluginLoadError, match="module-level code must not wait or loop"):
            await manager.reload_plugin("counter")
        assert (await manager.execute("counter", "value")).result == 1
