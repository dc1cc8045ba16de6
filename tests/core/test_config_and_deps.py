"""Per-plugin configuration, data directories, and dependency ordering."""

from __future__ import annotations

import tomllib
from pathlib import Path

from plughost import PluginManager, PluginState
from plughost.runtime import default_runtimes
from plughost.sdk.models import EventType

CONFIGURED = """
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
seen = {}

@plugin.on_load
def setup(ctx: PluginContext) -> None:
    seen["config"] = dict(ctx.config)
    seen["plugin_dir"] = str(ctx.plugin_dir)
    seen["data_dir"] = str(ctx.data_dir)
    (ctx.data_dir / "marker").write_text("written")

@plugin.on_reconfigure
async def reconfigure(ctx, config):
    seen["reconfigured"] = dict(config)

@plugin.method("seen")
def get_seen() -> dict:
    return seen
"""


async def test_config_dirs_and_reconfigure(workspace: Path, write_plugin) -> None:
    directory = write_plugin("cfg", CONFIGURED)
    (workspace / "config" / "plugins").mkdir(parents=True)
    (workspace / "config" / "plugins" / "cfg.toml").write_text('greeting = "hi"\n[limits]\nmax = 3\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        seen = (await manager.execute("cfg", "seen")).result
        assert seen["config"] == {"greeting": "hi", "limits": {"max": 3}}
        assert seen["plugin_dir"] == str(directory.resolve())
        assert seen["data_dir"] == str(workspace / "data" / "cfg")
        assert (workspace / "data" / "cfg" / "marker").read_text() == "written"

        task = manager.update_config("cfg", {"greeting": "hello", "limits": {"max": 5}})
        assert task is not None
        await task
        seen = (await manager.execute("cfg", "seen")).result
        assert seen["reconfigured"] == {"greeting": "hello", "limits": {"max": 5}}
        assert manager.get_config("cfg") == {"greeting": "hello", "limits": {"max": 5}}
        with (workspace / "config" / "plugins" / "cfg.toml").open("rb") as handle:
            assert tomllib.load(handle)["limits"]["max"] == 5
        assert (workspace / "config" / "plugins" / "cfg.toml.bak").exists()


async def test_failing_reconfigure_hook_is_reported(workspace: Path, write_plugin) -> None:
    write_plugin(
        "strict",
        "from plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.on_reconfigure\n"
        "def check(ctx, config):\n    raise ValueError('port must be a number')\n",
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        task = manager.update_config("strict", {"port": "x"})
        assert task is not None
        await task
        errors = [e for e in manager.get_events("strict") if e.event_type is EventType.ERROR]
        assert "port must be a number" in (errors[-1].error or "")
        assert manager.get_plugin("strict").state is PluginState.ENABLED  # type: ignore[union-attr]


ORDER = """
from plughost.sdk import Plugin
plugin = Plugin()
LOADED = []

@plugin.on_load
def setup(ctx):
    import builtins
    builtins.__dict__.setdefault("_plughost_test_order", []).append(ctx.plugin_id)
"""


async def test_dependencies_load_in_topological_order(workspace: Path, write_plugin) -> None:
    import builtins

    builtins.__dict__["_plughost_test_order"] = []
    write_plugin("app", ORDER, manifest_extra='[dependencies]\nplugins = ["db>=1.0", "cache"]\n')
    write_plugin("db", ORDER, manifest_extra='[dependencies]\nplugins = ["cache"]\n', version="1.2.0")
    write_plugin("cache", ORDER)
    try:
        async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
            assert await manager.discover_and_load_all() == 3
        assert builtins.__dict__["_plughost_test_order"] == ["cache", "db", "app"]
    finally:
        del builtins.__dict__["_plughost_test_order"]


async def test_missing_dependency_and_version_mismatch_fail_only_that_plugin(workspace: Path, write_plugin) -> None:
    write_plugin("needs-ghost", ORDER, manifest_extra='[dependencies]\nplugins = ["ghost"]\n')
    write_plugin("needs-new-db", ORDER, manifest_extra='[dependencies]\nplugins = ["db>=2"]\n')
    write_plugin("db", ORDER, version="1.5.0")
    write_plugin("uses-needs-ghost", ORDER, manifest_extra='[dependencies]\nplugins = ["needs-ghost"]\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 1
        errors = {i.id: i.error for i in manager.list_plugins(state=PluginState.ERROR)}
        assert errors["needs-ghost"] == "missing dependency 'ghost' (required as 'ghost')"
        assert errors["needs-new-db"] == "dependency 'db' is version 1.5.0, but 'db>=2' is required"
        assert "dependency 'needs-ghost' cannot load" in (errors["uses-needs-ghost"] or "")
        assert manager.get_plugin("db").state is PluginState.ENABLED  # type: ignore[union-attr]


async def test_dependency_cycle_names_its_members(workspace: Path, write_plugin) -> None:
    write_plugin("a", ORDER, manifest_extra='[dependencies]\nplugins = ["b"]\n')
    write_plugin("b", ORDER, manifest_extra='[dependencies]\nplugins = ["c"]\n')
    write_plugin("c", ORDER, manifest_extra='[dependencies]\nplugins = ["a"]\n')
    write_plugin("free", ORDER)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 1
        for member in "abc":
            error = manager.get_plugin(member).error or ""  # type: ignore[union-attr]
            assert error.startswith("dependency cycle:") and all(m in error for m in "abc")


async def test_dependency_that_fails_at_load_fails_its_dependents(workspace: Path, write_plugin) -> None:
    write_plugin("base", "raise ImportError('native lib missing')\n")
    write_plugin("top", ORDER, manifest_extra='[dependencies]\nplugins = ["base"]\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.get_plugin("top").error == "dependency 'base' failed to load"  # type: ignore[union-attr]


async def test_enabled_and_priority_keys_in_plugin_config(workspace: Path, write_plugin) -> None:
    write_plugin("quiet", ORDER.replace("LOADED = []", ""))
    write_plugin("loud", ORDER.replace("LOADED = []", ""))
    config = workspace / "config" / "plugins"
    config.mkdir(parents=True)
    (config / "quiet.toml").write_text("enabled = false\npriority = 5\n")
    (config / "loud.toml").write_text("priority = 800\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert [i.id for i in manager.list_plugins()] == ["loud", "quiet"]
        assert manager.get_plugin("quiet").state is PluginState.DISABLED  # type: ignore[union-attr]
        await manager.enable_plugin("quiet")  # the state file wins over the config from now on
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.get_plugin("quiet").state is PluginState.ENABLED  # type: ignore[union-attr]
