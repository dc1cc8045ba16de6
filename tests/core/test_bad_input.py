"""Bad input: each case gives a clear error for that plugin only; nothing else is affected."""

from __future__ import annotations

from pathlib import Path

import pytest

from plughost import PluginManager, PluginState
from plughost.runtime import default_runtimes
from plughost.sdk.models import DiscoveryStatus

GOOD = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("ping")
def ping() -> str:
    return "pong"
"""


async def load_with_good_neighbour(workspace: Path, write_plugin) -> PluginManager:
    write_plugin("good", GOOD)
    manager = PluginManager(workspace, runtimes=default_runtimes())
    await manager.discover_and_load_all()
    result = await manager.execute("good", "ping")
    assert result.success and result.result == "pong", "the healthy plugin must be unaffected"
    return manager


async def test_malformed_toml_manifest(workspace: Path, write_plugin) -> None:
    write_plugin("broken", GOOD, manifest='id = "broken"\nversion = [\n')
    manager = await load_with_good_neighbour(workspace, write_plugin)
    (invalid,) = manager.last_discovery.invalid
    assert invalid.status is DiscoveryStatus.INVALID
    assert "plugin.toml" in str(invalid.errors[0]) and "invalid TOML" in str(invalid.errors[0])
    await manager.shutdown()


async def test_malformed_json_manifest(workspace: Path, write_plugin) -> None:
    directory = write_plugin("broken", GOOD)
    (directory / "plugin.toml").unlink()
    (directory / "plugin.json").write_text('{"id": "broken",')
    manager = await load_with_good_neighbour(workspace, write_plugin)
    (invalid,) = manager.last_discovery.invalid
    assert "invalid JSON" in str(invalid.errors[0]) and "plugin.json" in str(invalid.errors[0])
    await manager.shutdown()


async def test_unknown_key_and_bad_id_are_listed(workspace: Path, write_plugin) -> None:
    write_plugin("typo", GOOD, manifest='id = "typo"\nversion = "1.0.0"\nenteri = "plugin.py"\n')
    write_plugin("badid", GOOD, manifest='id = "bad id!"\nversion = "1.0.0"\n')
    manager = await load_with_good_neighbour(workspace, write_plugin)
    errors = {c.path.name: " ".join(map(str, c.errors)) for c in manager.last_discovery.invalid}
    assert "unknown key 'enteri'" in errors["typo"]
    assert "not a valid plugin id" in errors["badid"]
    rows = {r["id"]: r for r in manager.catalog()}
    assert rows["typo"]["status"] == "invalid" and rows["good"]["state"] == "enabled"
    await manager.shutdown()


async def test_missing_entry(workspace: Path, write_plugin) -> None:
    write_plugin("noentry", "", manifest='id = "noentry"\nversion = "1.0.0"\nentry = "missing.py"\n')
    manager = await load_with_good_neighbour(workspace, write_plugin)
    (invalid,) = manager.last_discovery.invalid
    assert invalid.errors[0].field == "entry" and "'missing.py' not found" in invalid.errors[0].message
    await manager.shutdown()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import definitely_not_installed_module\n", "ModuleNotFoundError"),
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("raise RuntimeError('exploded at import')\n", "exploded at import"),
        ("x = 1\n", "defines no Plugin object"),
        (
            "from plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.on_load\nasync def setup(ctx):\n"
            "    raise ValueError('bad credentials')\n",
            "load hook failed: ValueError",
        ),
    ],
    ids=["import-error", "syntax-error", "raises-at-import", "no-plugin-object", "load-hook-raises"],
)
async def test_failing_plugin_code(workspace: Path, write_plugin, code: str, expected: str) -> None:
    write_plugin("bad", code)
    manager = await load_with_good_neighbour(workspace, write_plugin)
    instance = manager.get_plugin("bad")
    assert instance is not None and instance.state is PluginState.ERROR
    assert expected in (instance.error or "")
    assert "plugin.py" in (instance.error or "") or expected == "load hook failed: ValueError"
    assert not any(m.startswith("plughost_plugin__bad") for m in __import__("sys").modules)
    errors = [e for e in manager.get_events("bad") if not e.success]
    assert errors and expected in (errors[-1].error or "")
    await manager.shutdown()


async def test_syntax_error_names_file_and_line(workspace: Path, write_plugin) -> None:
    write_plugin("bad", "x = 1\ny = (\n")
    manager = await load_with_good_neighbour(workspace, write_plugin)
    error = manager.get_plugin("bad").error or ""  # type: ignore[union-attr]
    assert "SyntaxError at" in error and "plugin.py:2" in error
    await manager.shutdown()


async def test_duplicate_ids_first_in_search_order_wins(tmp_path: Path, write_plugin) -> None:
    first = write_plugin("dup", GOOD, parent=tmp_path / "first")
    second = write_plugin("dup", GOOD.replace("pong", "other"), parent=tmp_path / "second")
    (tmp_path / "plughost.toml").write_text('[host]\nplugin_dirs = ["first", "second"]\n')
    for _ in range(2):  # deterministic
        async with PluginManager(tmp_path, runtimes=default_runtimes()) as manager:
            await manager.discover_and_load_all()
            (conflict,) = manager.last_discovery.conflicts
            assert conflict.winner == first.resolve() and conflict.losers == (second.resolve(),)
            assert str(first.resolve()) in str(conflict) and str(second.resolve()) in str(conflict)
            assert (await manager.execute("dup", "ping")).result == "pong"


async def test_invalid_plugin_config_toml(workspace: Path, write_plugin) -> None:
    write_plugin("configured", GOOD)
    config = workspace / "config" / "plugins"
    config.mkdir(parents=True)
    (config / "configured.toml").write_text('token = "abc"\nretries = \n')
    manager = await load_with_good_neighbour(workspace, write_plugin)
    error = manager.get_plugin("configured").error or ""  # type: ignore[union-attr]
    assert "configured.toml" in error and "line 2" in error
    await manager.shutdown()


async def test_corrupt_state_file_falls_back_to_backup(workspace: Path, write_plugin, caplog) -> None:
    write_plugin("good", GOOD)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        await manager.disable_plugin("good")
        await manager.enable_plugin("good")
        await manager.disable_plugin("good")  # the .bak now says enabled = true, the file false
    state = workspace / "plugin-state.toml"
    assert "good = true" in state.with_name("plugin-state.toml.bak").read_text()
    state.write_text("[modules\ngood = ")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert manager.state_file.warnings and "corrupt" in manager.state_file.warnings[0]
        assert manager.get_plugin("good").state is PluginState.ENABLED  # type: ignore[union-attr]
    assert "is corrupt" in caplog.text


async def test_corrupt_state_and_backup_start_with_defaults(workspace: Path, write_plugin) -> None:
    write_plugin("good", GOOD)
    (workspace / "plugin-state.toml").write_text("garbage = [")
    (workspace / "plugin-state.toml.bak").write_text("[modules]\ngood = 5\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert len(manager.state_file.warnings) == 2
        assert manager.get_plugin("good").state is PluginState.ENABLED  # type: ignore[union-attr]


async def test_bad_host_config_is_a_clear_error(tmp_path: Path) -> None:
    from plughost.errors import ConfigError

    (tmp_path / "plughost.toml").write_text("[guard]\nfailure_treshold = 2\n")
    with pytest.raises(ConfigError, match=r"plughost.toml: guard.failure_treshold: unknown key"):
        PluginManager(tmp_path, runtimes=default_runtimes())
