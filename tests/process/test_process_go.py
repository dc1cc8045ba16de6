"""Real go-plugin plugins built from examples/go (GOPATH mode) running under the host."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from process_support import call_value

from plughost.errors import InvocationError, PluginLoadError
from plughost.guard import Guard
from plughost.sdk.call import TIMED_OUT, Call


async def test_jank_echo_execute_and_status(go_plugins: dict[str, Path], start_process: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    assert handle.plugin_id == "com.example.jank-echo"
    assert handle.protocol == "jank"
    args = {"s": "text", "n": 2, "flag": True, "items": [1, "a"], "nested": {"k": None}}
    assert await call_value(handle, "echo", args) == {
        "s": "text",
        "n": 2.0,  # Jank's maps carry numbers as doubles
        "flag": True,
        "items": [1.0, "a"],
        "nested": {"k": None},
    }
    assert await call_value(handle, "add", {"a": 2, "b": 40}) == {"sum": 42.0}
    info = (await handle.health()).info
    assert info["status"] == "running"
    assert info["protocol_version"] == 1
    assert info["network"] == "unix" and Path(info["address"]).exists()
    assert isinstance(info["pid"], int) and info["started_at"]
    address = info["address"]
    pid = info["pid"]
    await handle.stop()
    assert handle.info()["status"] == "stopped"
    assert not Path(address).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_jank_errors_and_bad_any(go_plugins: dict[str, Path], start_process: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    with pytest.raises(InvocationError, match="fail was asked to fail") as failed:
        await call_value(handle, "fail", {})
    assert failed.value.code == "plugin_error"
    with pytest.raises(InvocationError, match="StringValue") as bad:
        await call_value(handle, "bad_any", {})
    assert bad.value.code == "protocol_error"
    assert "google.protobuf.Value" in str(bad.value)
    with pytest.raises(InvocationError, match="object of arguments"):
        await call_value(handle, "echo", ["not", "a", "map"])
    assert await call_value(handle, "echo", {"ok": "yes"}) == {"ok": "yes"}


async def test_hclog_stderr_reaches_plugin_logger(
    go_plugins: dict[str, Path], start_process: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="test.plugin.com.example.jank-echo")
    handle = await start_process(go_plugins["jank-echo"])
    await call_value(handle, "log", {})
    await handle.stop()  # drains stderr to the end
    lines = [r for r in caplog.records if " line" in r.getMessage()]
    levels = {r.getMessage().split("] ", 1)[1].split(" line")[0]: r.levelno for r in lines}
    assert levels["a debug"] == logging.DEBUG
    assert levels["an info"] == logging.INFO
    assert levels["a warn"] == logging.WARNING
    assert levels["an error"] == logging.ERROR
    assert any("code=42" in r.getMessage() for r in caplog.records)


async def test_go_crash_mid_call_restarts(go_plugins: dict[str, Path], start_process: Any, events: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    first_pid = handle.info()["pid"]
    with pytest.raises(InvocationError) as crashed:
        await call_value(handle, "crash", {})
    assert crashed.value.code == "crashed"
    assert "exit code 3" in str(crashed.value)
    assert "crashing on purpose" in str(crashed.value)
    event = await events.wait_for("crashed")
    assert event.exit_code == 3
    assert await call_value(handle, "add", {"a": 1, "b": 1}) == {"sum": 2.0}
    assert handle.info()["pid"] != first_pid


async def test_crash_outside_a_call_is_detected_at_once(
    go_plugins: dict[str, Path], start_process: Any, events: Any
) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    os.kill(handle.info()["pid"], signal.SIGKILL)
    event = await events.wait_for("crashed")
    assert event.exit_code == -signal.SIGKILL
    await events.wait_for("restarted")
    assert handle.info()["status"] == "running"
    assert await call_value(handle, "echo", {"x": "y"}) == {"x": "y"}


async def test_restarts_are_capped(go_plugins: dict[str, Path], start_process: Any, events: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    for n in range(1, 4):
        os.kill(handle.info()["pid"], signal.SIGKILL)
        await events.wait_for("restarted", count=n)
    os.kill(handle.info()["pid"], signal.SIGKILL)
    gave_up = await events.wait_for("gave_up")
    assert "gave up after 3 restarts" in gave_up.message
    assert handle.info()["status"] == "error"
    assert not (await handle.health()).ok
    with pytest.raises(InvocationError, match="gave up") as unavailable:
        await call_value(handle, "echo", {})
    assert unavailable.value.code == "unavailable"


async def test_hang_mid_call_times_out(go_plugins: dict[str, Path], start_process: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"])
    outcome = await Guard().call(handle.plugin_id, handle, Call("sleep", {"ms": 60000}), timeout=0.2)
    assert outcome.error is not None and outcome.error.code == TIMED_OUT
    assert await call_value(handle, "sleep", {"ms": 1}) == {"slept_ms": 1.0}


async def test_a_call_that_never_returns_gets_the_plugin_restarted(
    go_plugins: dict[str, Path], start_process: Any, events: Any
) -> None:
    """A call past its deadline fails with the limit that applied; a plugin still running it a
    grace period later is restarted, so no stuck call keeps running in it."""
    from dataclasses import replace

    from process_support import FAST

    handle = await start_process(
        go_plugins["jank-echo"], options=replace(FAST, stop_grace_s=0.5), limits={"timeout_s": 0.3}
    )
    pid = handle.info()["pid"]
    stuck = await handle.call(Call("hang", {"ms": 600_000}))
    assert stuck.error is not None and stuck.error.code == "timed_out"
    assert "passed its deadline of 0.3 s" in stuck.error.message  # the plugin's own limit, not a default
    crashed = await events.wait_for("crashed")
    assert "did not return within 0.5 s after its 0.3 s deadline" in crashed.message and crashed.pid == pid
    await events.wait_for("restarted")
    assert handle.info()["pid"] != pid
    assert await call_value(handle, "echo", {"after": "restart"}) == {"after": "restart"}


async def test_a_late_answer_within_the_grace_keeps_the_plugin(
    go_plugins: dict[str, Path], start_process: Any, events: Any
) -> None:
    from dataclasses import replace

    from process_support import FAST

    handle = await start_process(
        go_plugins["jank-echo"], options=replace(FAST, stop_grace_s=5), limits={"timeout_s": 0.3}
    )
    pid = handle.info()["pid"]
    late = await handle.call(Call("hang", {"ms": 600}))
    assert late.error is not None and late.error.code == "timed_out"
    returned = await events.wait_for("late_answer")
    assert "'hang' returned within 5 s after its deadline" in returned.message
    assert handle.info()["pid"] == pid and "crashed" not in events.kinds()


async def test_unhealthy_plugin_is_restarted(go_plugins: dict[str, Path], start_process: Any, events: Any) -> None:
    from dataclasses import replace

    from process_support import FAST

    handle = await start_process(
        go_plugins["jank-echo"], options=replace(FAST, health_interval_s=0.05, health_timeout_s=0.2, health_failures=2)
    )
    pid = handle.info()["pid"]
    os.kill(pid, signal.SIGSTOP)  # alive but not answering
    try:
        unhealthy = await events.wait_for("unhealthy")
    finally:
        with contextlib.suppress(ProcessLookupError):  # usually already killed by the monitor
            os.kill(pid, signal.SIGCONT)
    assert unhealthy.pid == pid
    await events.wait_for("restarted")
    assert handle.info()["pid"] != pid
    assert await call_value(handle, "echo", {"a": "b"}) == {"a": "b"}


async def test_kv_plugin_with_its_own_handshake_and_typed_client(
    go_plugins: dict[str, Path], start_process: Any
) -> None:
    from process_support import EXAMPLES

    handle = await start_process(go_plugins["kv"])
    assert await call_value(handle, "put", {"key": "hello", "value": "world"}) == {"stored": "hello"}
    assert await call_value(handle, "get", {"key": "hello"}) == {"value": "world"}
    # the plugin's own service through the handle's channel (like go-plugin's GRPCClient)
    import sys

    sys.path.insert(0, str(EXAMPLES / "python-grpc" / "generated"))
    try:
        import kv_pb2
        import kv_pb2_grpc
    finally:
        sys.path.pop(0)
    stub = kv_pb2_grpc.KVStub(handle.channel())
    await stub.Put(kv_pb2.PutRequest(key="typed", value=b"\x00\x01"))
    assert (await stub.Get(kv_pb2.GetRequest(key="typed"))).value == b"\x00\x01"
    assert await call_value(handle, "get", {"key": "typed"}) == {"value": "\x00\x01"}


async def test_wrong_cookie_reports_the_plugins_notice(go_plugins: dict[str, Path], start_process: Any) -> None:
    with pytest.raises(PluginLoadError) as failed:
        await start_process(go_plugins["kv"], handshake={"magic_cookie_key": "JANK_PLUGIN", "magic_cookie_value": "x"})
    message = str(failed.value)
    assert "exited before its handshake (exit code 1)" in message
    assert "This binary is a plugin" in message


async def test_auto_mtls_against_real_go_plugin(go_plugins: dict[str, Path], start_process: Any) -> None:
    handle = await start_process(go_plugins["jank-echo"], auto_mtls=True)
    info = handle.info()
    assert info["tls"] is True
    assert await call_value(handle, "echo", {"secure": "yes"}) == {"secure": "yes"}
    # the plugin's socket refuses plaintext gRPC: only the TLS bridge gets through
    channel = grpc.aio.insecure_channel(f"unix:{info['address']}")
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with pytest.raises(grpc.aio.AioRpcError):
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=1)
    finally:
        await channel.close()


HOST_SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from plughost.runtime.base import LoadRequest
from plughost.runtime.process import ProcessRuntime
from plughost.sdk.manifest import load_manifest

async def main():
    directory = Path(sys.argv[1])
    manifest = load_manifest(directory / "plugin.json")
    handle = await ProcessRuntime().load(LoadRequest(manifest.id, directory, manifest, directory / ".data"))
    print(handle.info()["pid"], handle.info()["address"], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_plugins_die_with_a_killed_host(go_plugins: dict[str, Path]) -> None:
    import asyncio
    import sys

    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOST_SCRIPT, str(go_plugins["jank-echo"]), stdout=asyncio.subprocess.PIPE
    )
    assert host.stdout is not None
    line = await asyncio.wait_for(host.stdout.readline(), 20)
    pid_text, address = line.decode().split()
    plugin_pid = int(pid_text)
    pidfd = os.pidfd_open(plugin_pid)
    try:
        host.kill()  # SIGKILL: no cleanup code runs in the host
        await host.wait()
        exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(pidfd, exited.set)  # a pidfd becomes readable when the process exits
        try:
            await asyncio.wait_for(exited.wait(), 5)
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)
        Path(address).unlink(missing_ok=True)  # nobody was left to remove the socket


async def test_failed_restarts_are_reported_and_capped(
    go_plugins: dict[str, Path], start_process: Any, events: Any, tmp_path: Path
) -> None:
    import shutil

    directory = tmp_path / "jank"
    shutil.copytree(go_plugins["jank-echo"], directory)
    handle = await start_process(directory)
    (directory / "bin" / "jank-echo").chmod(0o644)  # the next starts fail
    os.kill(handle.info()["pid"], signal.SIGKILL)
    failed = await events.wait_for("restart_failed")
    assert "is not executable" in failed.message
    gave_up = await events.wait_for("gave_up")
    assert handle.info()["status"] == "error"
    assert "gave up after 3 restarts" in gave_up.message
