"""Native plugins under the real manager: discovery, config, guard timeouts, reload safety."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from plughost.core.manager import PluginManager
from plughost.runtime.native import NativePluginHandle, NativeRuntime, NativeSettings
from plughost.runtime.python import PythonRuntime
from plughost.sdk.call import Call
from tests.native.conftest import Builds


def native_workspace(tmp_path: Path, libs: dict[str, Path]) -> Path:
    (tmp_path / "plugins").mkdir()
    for name, lib in libs.items():
        shutil.copyfile(lib, tmp_path / "plugins" / name)
    return tmp_path


def manager(workspace: Path, grace: float = 5.0) -> PluginManager:
    runtimes = {"python": PythonRuntime(), "native": NativeRuntime(NativeSettings(stop_grace_s=grace))}
    return PluginManager(workspace, runtimes=runtimes)  # type: ignore[arg-type]


async def test_manager_discovers_configures_and_invokes_a_native_plugin(tmp_path: Path, c_builds: Builds):
    ws = native_workspace(tmp_path, {"example-c-v1.0.0.so": c_builds["example_c"]})
    (ws / "config" / "plugins").mkdir(parents=True)
    (ws / "config" / "plugins" / "example-c.toml").write_text('greeting = "Moin"\n')
    async with manager(ws) as pm:
        assert await pm.discover_and_load_all() == 1
        instance = pm.get_plugin("example-c")
        assert instance is not None and instance.state == "enabled", instance and instance.error
        payload = {"context": {"sender": {"kind": "member", "user_id": 1, "group_id": 3}}, "words": ["x"]}
        outcome = await pm.call("example-c", Call("echo", payload, "command"))
        assert outcome.error is None and outcome.value == [[{"type": "text", "data": {"text": "Moin, x"}}]]
        assert outcome.sends[0].params["group_id"] == 3
        generic = await pm.execute("example-c", "no.such.method", {})
        assert not generic.success and "unknown method no.such.method" in (generic.error or "")
        assert pm.guard.snapshot("example-c")["handlers"]["echo"]["calls"] == 1


async def test_a_hung_native_call_times_out_is_counted_and_the_host_keeps_serving(tmp_path: Path, c_builds: Builds):
    ws = native_workspace(tmp_path, {"probe.so": c_builds["probe"]})
    async with manager(ws, grace=0.2) as pm:
        await pm.discover_and_load_all()
        hung = await pm.execute("probe", "block", {}, timeout=0.2)
        assert not hung.success and hung.metadata["timed_out"] is True
        assert pm.guard.snapshot("probe")["handlers"]["block"]["timeouts"] == 1
        handle = pm.get_plugin("probe").handle  # type: ignore[union-attr]
        assert isinstance(handle, NativePluginHandle)
        health = await handle.health()
        assert health.status == "degraded" and "still running" in health.detail
        assert (await pm.execute("probe", "echo", {"ok": 1})).result == {"ok": 1}  # other calls still served
        await pm.execute("probe", "release", {})
        await handle.wait_calls(lambda _, abandoned: abandoned == 0, 10)
        assert handle.stats()["abandoned_total"] == 1
        assert (await handle.health()).status == "ok"


async def test_reload_switches_to_a_new_version_and_retires_the_old_after_its_calls(tmp_path: Path, c_builds: Builds):
    ws = native_workspace(tmp_path, {"probe-v1.0.0.so": c_builds["probe"]})
    async with manager(ws, grace=0.2) as pm:
        await pm.discover_and_load_all()
        old = pm.get_plugin("probe").handle  # type: ignore[union-attr]
        assert isinstance(old, NativePluginHandle)
        in_flight = asyncio.create_task(old.call_abi("block", {}))
        await old.wait_calls(lambda in_flight, _: in_flight == 1, 10)
        shutil.copyfile(c_builds["probe"], ws / "plugins" / "probe-v2.0.0.so")
        instance = await pm.reload_plugin("probe")
        new = instance.handle
        assert isinstance(new, NativePluginHandle) and new is not old
        assert new.library.path.name == "probe-v2.0.0.so"
        assert instance.manifest.version == "2.0.0"
        assert (await pm.execute("probe", "echo", {"v": 1})).result == {"v": 1}
        # the old library is still running its call: not shut down, not unloaded
        assert not old.library.shut_down and not in_flight.done()
        await asyncio.to_thread(old.library.call, "release", b"")
        assert await in_flight == "released"
        assert old.library.shut_down  # shutdown ran once the last call returned
        assert old.callbacks.retired


async def test_failing_native_calls_open_the_circuit_breaker(tmp_path: Path, c_builds: Builds):
    ws = native_workspace(tmp_path, {"probe.so": c_builds["probe"], "healthy.so": c_builds["probe"]})
    async with manager(ws) as pm:
        await pm.discover_and_load_all()
        for _ in range(3):
            failed = await pm.execute("probe", "rc_raw", {})
            assert not failed.success and "returned 9" in (failed.error or "")
        isolated = await pm.execute("probe", "echo", {})
        assert not isolated.success and isolated.metadata.get("isolated") is True
        assert pm.guard.snapshot("probe")["breaker"]["isolations"] == 1
        assert (await pm.execute("healthy", "echo", {"x": 1})).result == {"x": 1}  # others unaffected
        events = [e.event_type for e in pm.get_events("probe")]
        assert "isolate" in events


async def test_a_plugin_directory_with_a_native_manifest_loads_and_reloads(tmp_path: Path, c_builds: Builds):
    ws = native_workspace(tmp_path, {})
    plugin_dir = ws / "plugins" / "fancy"
    plugin_dir.mkdir()
    shutil.copyfile(c_builds["example_c"], plugin_dir / "libfancy.so")
    (plugin_dir / "plugin.toml").write_text(
        'id = "fancy"\nversion = "2.1.0"\nruntime = "native"\nentry = "libfancy.so"\n[permissions]\nnetwork = false\n'
    )
    async with manager(ws) as pm:
        assert await pm.discover_and_load_all() == 1
        fetched = await pm.call("fancy", Call("fetch", {"words": ["http://127.0.0.1:9/"]}, "command"))
        assert "lacks the network permission" in fetched.value[0][0]["data"]["text"]
        first = pm.get_plugin("fancy").handle  # type: ignore[union-attr]
        instance = await pm.reload_plugin("fancy")
        assert instance.handle is not first and instance.manifest.version == "2.1.0"
        again = await pm.call("fancy", Call("echo", {"words": ["again"]}, "command"))
        assert again.value == [[{"type": "text", "data": {"text": "Hello, again"}}]]


async def test_chat_commands_reach_a_native_plugin_through_the_command_engine(tmp_path: Path, c_builds: Builds):
    from plughost.bot.commands.service import CommandService
    from plughost.sdk.senders import CommandSender

    ws = native_workspace(tmp_path, {"example-c.so": c_builds["example_c"]})
    async with manager(ws) as pm:
        await pm.discover_and_load_all()
        commands = CommandService(pm)
        console = CommandSender.console()
        result = await commands.execute_command(console, "/echo hi there")
        assert result.ok, result.error
        assert result.text == "Hello, hi there"
        alias = await commands.execute_command(console, "/say again")
        assert alias.ok and alias.text == "Hello, again"
        member = CommandSender.member(20, 10, nickname="ann")
        denied = await commands.execute_command(member, "/echo hi")
        assert denied.kind == "permission_denied"  # members need the plugin's command permission
        assert pm.guard.snapshot("example-c")["handlers"]["echo"]["calls"] == 2
