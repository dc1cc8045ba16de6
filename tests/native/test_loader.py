"""Loading and calling native libraries through the real loader (ctypes, real gcc builds)."""

from __future__ import annotations

import asyncio
import base64
import ctypes

import yaml

from plughost.runtime import default_runtimes
from plughost.runtime.native import NativeRuntime
from plughost.runtime.native.abi import Buffer, HostApi, PluginApi
from plughost.runtime.placement import PlacedRuntime
from tests.native.conftest import Builds, Loader


def test_abi_struct_layout_matches_the_c_header() -> None:
    assert ctypes.sizeof(Buffer) == 16
    assert ctypes.sizeof(HostApi) == 32
    assert ctypes.sizeof(PluginApi) == 32
    assert HostApi.call.offset == 16 and PluginApi.shutdown.offset == 24


def test_native_runtime_is_a_default_runtime() -> None:
    runtime = default_runtimes()["native"]
    assert isinstance(runtime, PlacedRuntime) and isinstance(runtime.in_process, NativeRuntime)


async def test_register_reads_metadata_and_capabilities_case_insensitively(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    d = handle.descriptor
    assert d.id == "probe" and d.version == "1.0.0"
    assert d.capabilities == {"executor", "management_api"}
    assert d.metadata["active"] is True and d.metadata["inactive_reason"] is None
    assert d.metadata["plugin"]["Author"] == "qa"
    assert d.metadata["plugin"]["ConfigFields"][0]["Name"] == "greeting"
    assert d.metadata["capability_values"] == {"executor_input_formats": ["openai"]}
    assert d.metadata["schema_version"] == 3


async def test_config_yaml_is_the_config_with_enabled_and_priority(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], config={"greeting": "hi", "n": 2}, priority=7)
    sent = await handle.call_abi("config", None)
    text = base64.b64decode(sent["config_yaml"]).decode()
    assert text.endswith("\n")
    assert yaml.safe_load(text) == {"greeting": "hi", "n": 2, "enabled": True, "priority": 7}
    assert list(yaml.safe_load(text)) == ["greeting", "n", "enabled", "priority"]


async def test_reconfigure_and_enable_toggle_call_plugin_reconfigure(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], config={"greeting": "hi"}, enabled=False)
    first = await handle.call_abi("config", None)
    assert yaml.safe_load(base64.b64decode(first["config_yaml"])) == {
        "greeting": "hi",
        "enabled": False,
        "priority": 0,
    }
    await handle.reconfigure({"greeting": "bye", "enabled": True})
    second = await handle.call_abi("config", None)
    assert second["reconfigures"] == 1
    assert yaml.safe_load(base64.b64decode(second["config_yaml"])) == {
        "greeting": "bye",
        "enabled": True,
        "priority": 0,
    }
    await handle.set_enabled(True)
    assert (await handle.call_abi("config", None))["reconfigures"] == 2


async def test_generic_invoke_passes_json_through_and_null_when_empty(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    before = (await handle.call_abi("stats", None))["null_requests"]
    assert await handle.call_abi("echo", {"Model": "x", "n": [1, 2, {"deep": None}]}) == {
        "Model": "x",
        "n": [1, 2, {"deep": None}],
    }
    assert await handle.call_abi("echo", None) is None
    assert await handle.call_abi("echo", "ünïcode") == "ünïcode"
    after = (await handle.call_abi("stats", None))["null_requests"]
    assert after - before == 2  # `echo None` and the second `stats` sent NULL; the JSON requests did not


async def test_every_reply_is_freed_by_the_plugin_with_its_exact_length(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    for request in (None, {"a": 1}, "x" * 10_000):
        await handle.call_abi("echo", request)
    await handle.call_abi("big", None)
    stats = await handle.call_abi("stats", None)
    assert stats["bad_frees"] == 0
    assert stats["allocs"] == stats["frees"] == 6  # register + 4 calls + big; taken before its own reply
    assert (await handle.call_abi("stats", None))["frees"] == stats["allocs"] + 1  # the stats reply was freed


async def test_calls_run_concurrently_on_threads_without_blocking_the_loop(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    # four calls that only return once four are inside the plugin at the same time
    calls = [asyncio.create_task(handle.call_abi("block", {"wait_active": 4})) for _ in range(4)]
    ticks = 0
    while not all(c.done() for c in calls):
        ticks += 1  # the loop keeps running while the plugin blocks
        await asyncio.wait(calls, timeout=0.01)
        assert ticks < 1000, "concurrent native calls did not meet"
    assert [c.result() for c in calls] == ["released"] * 4
    assert (await handle.call_abi("stats", None))["max_active"] >= 4


async def test_each_load_gets_its_own_library_instance(c_builds: Builds, load_native: Loader):
    first = await load_native(c_builds["probe"], "probe")
    second = await load_native(c_builds["probe"], "probe2")
    await first.call_abi("echo", {"x": 1})
    a = await first.call_abi("stats", None)
    b = await second.call_abi("stats", None)
    assert a["allocs"] > b["allocs"]  # separate static state: the file was mapped twice


async def test_stop_runs_shutdown_and_refuses_later_calls(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    await handle.stop()
    assert handle.library.shut_down
    health = await handle.health()
    assert health.status == "down"
    try:
        await handle.call_abi("echo", {})
    except Exception as exc:
        assert "stopping" in str(exc)
    else:
        raise AssertionError("a stopped plugin accepted a call")


async def test_inline_policy_learns_fast_methods_and_never_inlines_callbacks(c_builds: Builds, tmp_path):
    from plughost.runtime.base import LoadRequest
    from plughost.runtime.native import NativeSettings
    from plughost.sdk.manifest import PluginManifest

    runtime = NativeRuntime(NativeSettings(inline_budget_us=1_000_000))
    handle = await runtime.load(
        LoadRequest("inl", c_builds["probe"], PluginManifest(id="inl", runtime="native"), tmp_path)
    )
    try:
        for _ in range(handle.inline.warmup):
            assert await handle.call_abi("echo", {"n": 1}) == {"n": 1}
            await handle.call_abi("host_log", None)
        assert handle.inline.inline_methods == {"echo"}  # host_log calls back: it stays on a thread
        offloaded = handle.stats()["offloaded_calls"]
        assert await handle.call_abi("echo", {"n": 2}) == {"n": 2}
        assert await handle.call_abi("host_log", None) == {"ok": True, "result": {}}
        assert handle.stats()["offloaded_calls"] == offloaded + 1  # echo ran on the loop, host_log did not
    finally:
        await handle.stop()


async def test_inline_is_off_by_default(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    for _ in range(40):
        await handle.call_abi("echo", {})
    assert handle.inline.inline_methods == frozenset()


async def test_stop_leaves_no_thread_behind(c_builds: Builds, load_native: Loader):
    import threading

    handle = await load_native(c_builds["probe"], "tidy")
    await asyncio.gather(*(handle.call_abi("block", {"wait_active": 6}) for _ in range(6)))
    assert any(t.name.startswith("native-tidy") for t in threading.enumerate())
    await handle.stop()
    assert [t.name for t in threading.enumerate() if t.name.startswith("native-tidy")] == []


async def test_many_concurrent_calls_with_callbacks(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "busy")
    calls = []
    for i in range(64):
        calls.append(handle.call_abi("echo", {"i": i}))
        calls.append(handle.call_abi("host_log", None))
    results = await asyncio.gather(*calls)
    assert results[0::2] == [{"i": i} for i in range(64)]
    assert all(r == {"ok": True, "result": {}} for r in results[1::2])
    assert handle.callbacks.stats.calls["host.log"] == 64
    assert (await handle.call_abi("stats", None))["bad_frees"] == 0


async def test_a_10_mb_request_is_passed_whole(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "bigreq")
    payload = {"blob": "ü" * (5 * 1024 * 1024)}  # 10 MB of UTF-8
    assert await handle.call_abi("echo", payload) == payload


def test_the_sdk_header_layout_matches_the_host(tmp_path) -> None:
    import subprocess

    from tests.conftest import require_tool
    from tests.native.conftest import SDK

    gcc = require_tool("gcc", "the header is checked with a real compiler")
    source = tmp_path / "layout.c"
    source.write_text(
        '#include "plughost_plugin.h"\n#include <stddef.h>\n'
        f'_Static_assert(sizeof(cliproxy_buffer) == {ctypes.sizeof(Buffer)}, "buffer");\n'
        f'_Static_assert(sizeof(cliproxy_host_api) == {ctypes.sizeof(HostApi)}, "host");\n'
        f'_Static_assert(sizeof(cliproxy_plugin_api) == {ctypes.sizeof(PluginApi)}, "plugin");\n'
        f'_Static_assert(offsetof(cliproxy_host_api, free_buffer) == {HostApi.free_buffer.offset}, "free");\n'
        f'_Static_assert(offsetof(cliproxy_plugin_api, call) == {PluginApi.call.offset}, "call");\n'
    )
    done = subprocess.run(
        [gcc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", f"-I{SDK}", "-fsyntax-only", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
