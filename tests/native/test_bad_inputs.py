"""Every bad input gives a clear error; the host keeps running and other plugins are unaffected."""

from __future__ import annotations

import os
import select
import shutil
import struct
from pathlib import Path

import pytest

from plughost.errors import PluginLoadError, PluginStateError
from plughost.runtime.native import NativeCallError, NativePluginHandle
from tests.native.conftest import Builds, Loader


@pytest.fixture
async def healthy(c_builds: Builds, load_native: Loader) -> NativePluginHandle:
    """A plugin loaded before the bad one; it must keep answering."""
    return await load_native(c_builds["probe"], "healthy")


async def assert_still_healthy(handle: NativePluginHandle) -> None:
    assert await handle.call_abi("echo", {"still": "here"}) == {"still": "here"}
    assert (await handle.call_abi("stats", None))["bad_frees"] == 0


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("no_init", "does not export cliproxy_plugin_init"),
        ("init_rc", "cliproxy_plugin_init in .*init_rc.so returned 3"),
        ("abi2", "ABI version 2 not supported"),
        ("null_call", r"function table incomplete \(call is NULL\)"),
        ("null_free", r"function table incomplete \(free_buffer is NULL\)"),
        ("schema4", "plugin schema version 4 is not supported"),
        ("register_fails", "plugin.register failed: .*license key missing"),
    ],
)
async def test_broken_libraries_fail_to_load_with_the_reason(
    c_builds: Builds, load_native: Loader, healthy: NativePluginHandle, variant: str, expected: str
) -> None:
    with pytest.raises(PluginLoadError, match=expected) as info:
        await load_native(c_builds[variant], variant)
    assert info.value.plugin_id == variant
    await assert_still_healthy(healthy)


async def test_a_text_file_named_so_is_not_a_library(tmp_path: Path, load_native: Loader, healthy: NativePluginHandle):
    fake = tmp_path / "fake.so"
    fake.write_text("this is not a shared library\n")
    with pytest.raises(PluginLoadError, match=r"fake.so is not a shared library \(no ELF header\)"):
        await load_native(fake, "fake")
    await assert_still_healthy(healthy)


async def test_a_truncated_elf_file_is_reported(tmp_path: Path, load_native: Loader, healthy: NativePluginHandle):
    short = tmp_path / "short.so"
    short.write_bytes(b"\x7fELF\x02\x01\x01")
    with pytest.raises(PluginLoadError, match="truncated ELF"):
        await load_native(short, "short")
    await assert_still_healthy(healthy)


async def test_a_library_for_another_architecture_is_reported(
    c_builds: Builds, tmp_path: Path, load_native: Loader, healthy: NativePluginHandle
) -> None:
    foreign = tmp_path / "foreign.so"
    shutil.copyfile(c_builds["probe"], foreign)
    data = bytearray(foreign.read_bytes())
    machine = 62 if struct.unpack_from("<H", data, 18)[0] == 183 else 183  # aarch64 unless we are aarch64
    struct.pack_into("<H", data, 18, machine)
    foreign.write_bytes(bytes(data))
    arch = "arm64" if machine == 183 else "amd64"
    with pytest.raises(PluginLoadError, match=f"foreign.so is built for {arch}, this host is linux/"):
        await load_native(foreign, "foreign")
    await assert_still_healthy(healthy)


async def test_a_missing_file_is_reported(tmp_path: Path, load_native: Loader):
    with pytest.raises(PluginLoadError, match="does not exist"):
        await load_native(tmp_path / "gone.so", "gone")


@pytest.mark.parametrize(
    ("method", "code", "expected"),
    [
        ("invalid_json", "invalid_reply", r"returned an invalid JSON envelope .*: \{\"ok\":tru"),
        ("not_object", "invalid_reply", "not an envelope object"),
        ("non_utf8", "invalid_reply", "not valid UTF-8 at byte 21"),
        ("rc_envelope", "quota", "quota: quota exceeded"),
        ("rc_raw", "plugin_error", "plugin call rc_raw returned 9: segfault-ish failure"),
        ("rc_empty", "plugin_error", r"plugin call rc_empty returned 5: \(no reply\)"),
        ("error_envelope", "invalid_request", "missing field x"),
        ("no_such_method", "unknown_method", "unknown method no_such_method"),
    ],
)
async def test_bad_replies_become_clear_errors(
    c_builds: Builds, load_native: Loader, healthy: NativePluginHandle, method: str, code: str, expected: str
) -> None:
    handle = await load_native(c_builds["probe"], "victim")
    with pytest.raises(NativeCallError, match=expected) as info:
        await handle.call_abi(method, None)
    assert info.value.code == code
    await assert_still_healthy(handle)  # the same plugin keeps working after its bad reply
    await assert_still_healthy(healthy)


async def test_rc_with_envelope_keeps_retryable_and_http_status(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    with pytest.raises(NativeCallError) as info:
        await handle.call_abi("rc_envelope", None)
    assert info.value.retryable is True and info.value.http_status == 429


async def test_a_10_mb_reply_arrives_whole(c_builds: Builds, load_native: Loader, healthy: NativePluginHandle):
    handle = await load_native(c_builds["probe"], "big")
    result = await handle.call_abi("big", None)
    assert len(result) == 10 * 1024 * 1024 and set(result) == {"a"}
    assert (await handle.call_abi("stats", None))["bad_frees"] == 0
    await assert_still_healthy(healthy)


async def test_invalid_metadata_loads_inactive_with_the_reason(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["bad_meta"], "bad_meta")
    assert handle.descriptor.metadata["active"] is False
    assert handle.descriptor.metadata["inactive_reason"] == "metadata Author is blank"
    assert handle.descriptor.capabilities == frozenset()
    assert handle.descriptor.metadata["declared_capabilities"] == ["executor"]
    health = await handle.health()
    assert health.status == "degraded" and "Author is blank" in health.detail


async def test_no_capability_loads_inactive_with_the_reason(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["no_caps"], "no_caps")
    assert handle.descriptor.metadata["inactive_reason"] == "no capability is enabled"
    assert await handle.call_abi("echo", [1]) == [1]  # generic invoke still reaches it


async def test_unknown_host_callback_answers_host_call_failed(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    reply = await handle.call_abi("host_raw", {"method": "host.nope", "request": "{}"})
    assert reply == {
        "ok": False,
        "error": {"code": "host_call_failed", "message": "unsupported host callback host.nope"},
    }
    assert handle.callbacks.stats.failures == {"host.nope": 1}
    await assert_still_healthy(handle)


async def test_host_callback_with_invalid_json_answers_host_call_failed(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    reply = await handle.call_abi("host_raw", {"method": "host.log", "request": "{not json"})
    assert reply["ok"] is False and reply["error"]["code"] == "host_call_failed"
    assert "host.log: request is not valid JSON" in reply["error"]["message"]
    await assert_still_healthy(handle)


async def test_host_call_with_null_ctx_or_method_returns_rc_1_and_zeroes_resp(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"])
    assert await handle.call_abi("host_null_ctx", None) == {"host_rc": 1, "zeroed": True}
    assert await handle.call_abi("host_null_method", None) == {"host_rc": 1, "zeroed": True}


async def test_plugin_thread_calling_back_after_unload_gets_a_clear_refusal(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "late")
    read_fd, write_fd = os.pipe()
    try:
        await handle.call_abi("call_back_after_unload", {"fd": write_fd})  # thread waits for shutdown()
        await handle.stop()
        ready, _, _ = select.select([read_fd], [], [], 10)
        assert ready, "the plugin thread never called back"
        chunks = []
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    finally:
        os.close(read_fd)
    assert '"code":"host_call_failed"' in reply
    assert "plugin 'late' was unloaded; callback host.log refused" in reply
    with pytest.raises(PluginStateError):
        await handle.call_abi("echo", {})
