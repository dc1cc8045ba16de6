"""isolation = "process": the library runs in a `plughost worker`; a segfault kills only the worker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from plughost.core.manager import PluginManager
from plughost.guard import BreakerPolicy, Guard, GuardPolicy
from plughost.runtime import default_runtimes
from plughost.sdk.models import PluginExecutionResult
from tests.native.conftest import Builds


def tolerant_manager(workspace: Path) -> PluginManager:
    """Crashes are counted by the breaker; these tests look at the worker, not the breaker."""
    return PluginManager(
        workspace, runtimes=default_runtimes(), guard=Guard(GuardPolicy(breaker=BreakerPolicy(failure_threshold=10)))
    )


async def after_restart(pm: PluginManager, method: str, args: dict) -> PluginExecutionResult:
    """Calls right after a crash or kill may still report it while the worker restarts; a few
    calls later one runs in the new worker."""
    for _ in range(5):
        result = await pm.execute("probe", method, args)
        if result.success:
            return result
        assert "plugin 'probe'" in (result.error or ""), result.error
    return result


async def test_an_isolated_native_plugin_survives_its_own_segfault(tmp_path: Path, c_builds: Builds):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copyfile(c_builds["probe"], plugins / "probe.so")
    (plugins / "probe.plugin.toml").write_text('id = "probe"\nruntime = "native"\nisolation = "process"\n')
    shutil.copyfile(c_builds["probe"], plugins / "neighbour.so")
    async with tolerant_manager(tmp_path) as pm:
        assert await pm.discover_and_load_all() == 2
        probe = pm.get_plugin("probe")
        assert probe is not None and probe.state == "enabled", probe and probe.error
        assert (await pm.execute("probe", "echo", {"a": 1})).result == {"a": 1}
        worker_pid = (await pm.execute("probe", "pid", {})).result
        assert worker_pid != os.getpid()  # the library runs in another process
        crashed = await pm.execute("probe", "crash", {})
        assert not crashed.success
        assert (await pm.execute("neighbour", "echo", {"b": 2})).result == {"b": 2}  # the host lives on
        again = await after_restart(pm, "echo", {"c": 3})  # the worker was restarted
        assert again.success, again.error
        assert again.result == {"c": 3}
        assert (await pm.execute("probe", "pid", {})).result != worker_pid


async def test_a_hung_isolated_native_call_is_stopped_by_killing_the_worker(tmp_path: Path, c_builds: Builds, caplog):
    import logging

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copyfile(c_builds["probe"], plugins / "probe.so")
    (plugins / "probe.plugin.toml").write_text('id = "probe"\nruntime = "native"\nisolation = "process"\n')
    async with tolerant_manager(tmp_path) as pm:
        await pm.discover_and_load_all()
        first_pid = (await pm.execute("probe", "pid", {})).result
        hung = await pm.execute("probe", "block", {}, timeout=1.0)
        assert not hung.success and hung.metadata.get("timed_out") is True
        after = await after_restart(pm, "pid", {})
        assert after.success and after.result != first_pid  # the hung worker was killed and replaced
        with caplog.at_level(logging.DEBUG):
            assert (await pm.execute("probe", "host_log", {})).result == {"ok": True, "result": {}}
        assert any("hello from C" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


async def test_reloading_an_isolated_native_plugin_starts_a_fresh_worker(tmp_path: Path, c_builds: Builds):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copyfile(c_builds["probe"], plugins / "probe-v1.0.0.so")
    (plugins / "probe.plugin.toml").write_text('id = "probe"\nruntime = "native"\nisolation = "process"\n')
    async with tolerant_manager(tmp_path) as pm:
        await pm.discover_and_load_all()
        old_pid = (await pm.execute("probe", "pid", {})).result
        shutil.copyfile(c_builds["probe"], plugins / "probe-v1.1.0.so")
        instance = await pm.reload_plugin("probe")
        assert instance.manifest.version == "1.1.0" and instance.manifest.isolation == "process"
        new_pid = (await pm.execute("probe", "pid", {})).result
        assert new_pid not in (old_pid, os.getpid())
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)  # the old worker is gone


async def test_the_c_example_answers_the_same_in_process_and_in_a_worker(tmp_path: Path, c_builds: Builds):
    """Placement parity for a native plugin: the same calls (a command with its words, a route, an
    interceptor, a host.bot.send) give the same outcomes in-process and in a worker."""
    from plughost.sdk.call import Call

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for plugin_id, isolation in (("local", "none"), ("isolated", "process")):
        shutil.copyfile(c_builds["example_c"], plugins / f"{plugin_id}.so")
        (plugins / f"{plugin_id}.plugin.toml").write_text(
            f'id = "{plugin_id}"\nruntime = "native"\nisolation = "{isolation}"\n'
        )
        (tmp_path / "config" / "plugins").mkdir(parents=True, exist_ok=True)
        (tmp_path / "config" / "plugins" / f"{plugin_id}.toml").write_text('enabled = true\ngreeting = "Moin"\n')
    poke = {"post_type": "notice", "notice_type": "notify", "sub_type": "poke", "group_id": 3, "user_id": 4}
    command = {"context": {"sender": {"kind": "member", "user_id": 4, "group_id": 3}, "command": "echo"},
               "args": {}, "varargs": ["hi", "there"], "words": ["hi", "there"], "event": None}  # fmt: skip
    calls = [
        Call("echo", command, "command"),
        Call("on_poke", {"kind": "notice", "route": "GroupPoke", "group_id": "3", "event": poke}, "route"),
        Call("guard", {"event": {"raw_message": "buy spam"}}, "pre_handle"),
        Call("guard", {"event": {"raw_message": "hello"}}, "pre_handle"),
        Call("no.such.method", {}),
    ]
    async with PluginManager(tmp_path, runtimes=default_runtimes()) as pm:
        assert await pm.discover_and_load_all() == 2
        worker = pm.get_plugin("isolated").handle  # type: ignore[union-attr]
        assert worker.info()["pid"] != os.getpid()  # really in a worker process  # type: ignore[union-attr]
        outcomes = {}
        for plugin_id in ("local", "isolated"):
            outcomes[plugin_id] = [await pm.call(plugin_id, call) for call in calls]
    local, isolated = outcomes["local"], outcomes["isolated"]
    assert local[0].value == [[{"type": "text", "data": {"text": "Moin, hi there"}}]]
    assert [a.action for a in local[0].sends] == ["send_group_msg"]  # host.bot.send during the call
    assert local[1].value == {"action": "reply", "text": "ouch"}
    assert local[2].value["action"] == "block" and local[3].value == {"action": "allow"}
    assert local[4].error is not None and "unknown method no.such.method" in local[4].error.message
    for mine, theirs in zip(local, isolated, strict=True):
        assert (mine.value, mine.sends) == (theirs.value, theirs.sends)
        assert (mine.error and mine.error.code) == (theirs.error and theirs.error.code)


async def test_a_sandboxed_native_plugin_loads_and_answers_confined(tmp_path: Path, c_builds: Builds):
    """isolation = "sandbox" for a library: the worker confines itself before loading it (the
    library's private copy goes to the data directory's TMPDIR) and the plugin still works."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copyfile(c_builds["probe"], plugins / "probe.so")
    (plugins / "probe.plugin.toml").write_text('id = "probe"\nruntime = "native"\nisolation = "sandbox"\n')
    async with tolerant_manager(tmp_path) as pm:
        assert await pm.discover_and_load_all() == 1
        probe = pm.get_plugin("probe")
        assert probe is not None and probe.state == "enabled", probe and probe.error
        assert (await pm.execute("probe", "echo", {"a": 1})).result == {"a": 1}
        assert (await pm.execute("probe", "pid", {})).result != os.getpid()
        refused = await pm.execute("probe", "host_raw", {"method": "host.http.do", "request": "{}"})
        assert refused.success and "network permission" in str(refused.result), refused
