"""The same Python plugin behaves identically in-process and in a `plughost worker`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from process_support import call_value

from plughost.errors import InvocationError
from plughost.guard import Guard
from plughost.sdk.call import TIMED_OUT, Call, PluginError

PLACEMENTS = ["in_process", "worker", "worker-grpc"]
WORKERS = ["worker", "worker-grpc"]  # Invoke over the invoke lane / over gRPC


@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_methods_and_descriptor(load_python: Any, behave_dir: Path, placement: str) -> None:
    handle = await load_python(behave_dir, placement)
    assert handle.descriptor.id == "behave"
    assert {m.name for m in handle.descriptor.methods} >= {"echo", "add", "fail", "state"}
    echo = handle.descriptor.method("echo")
    assert echo.input_schema["required"] == ["text"]
    assert await call_value(handle, "echo", {"text": "ab", "times": 3}) == {"text": "ababab"}
    assert await call_value(handle, "add", {"a": 1.5, "b": 2}) == 3.5


@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_errors_are_the_same_values_everywhere(load_python: Any, behave_dir: Path, placement: str) -> None:
    handle = await load_python(behave_dir, placement)
    failed = await handle.call(Call("fail", {"message": "kaput"}))
    assert failed.error == PluginError("plugin_error", "kaput", "RuntimeError", detail=failed.error.detail)
    assert str(failed.error) == "RuntimeError: kaput"
    unknown = await handle.call(Call("nope", {}))
    assert unknown.error is not None and unknown.error.code == "unknown_handler"
    invalid = await handle.call(Call("echo", {"times": 2}))
    assert invalid.error is not None and invalid.error.code == "invalid_request" and "text" in invalid.error.message
    assert await call_value(handle, "echo", {"text": "still fine"}) == {"text": "still fine"}


@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_hooks_config_and_enable(load_python: Any, behave_dir: Path, placement: str) -> None:
    handle = await load_python(behave_dir, placement)
    await handle.reconfigure({"greeting": "hej"})
    await handle.set_enabled(True)
    state = await call_value(handle, "state", None)
    assert state["config"] == {"greeting": "hej"}
    assert state["enabled"] is True
    assert state["loads"] == 1
    in_worker = state["pid"] != os.getpid()
    assert in_worker == (placement != "in_process")
    health = await handle.health()
    assert health.ok
    if in_worker:
        assert handle.info()["invoke_lane"] == (placement == "worker")


@pytest.mark.parametrize("placement", WORKERS)
async def test_worker_restart_keeps_config_and_enabled_state(
    load_python: Any, behave_dir: Path, events: Any, placement: str
) -> None:
    handle = await load_python(behave_dir, placement)
    await handle.reconfigure({"level": 3})
    await handle.set_enabled(True)
    first = await call_value(handle, "state", None)
    with pytest.raises(InvocationError) as crashed:
        await call_value(handle, "crash", {"code": 9})
    assert crashed.value.code == "crashed"
    assert "exit code 9" in str(crashed.value)
    after = await call_value(handle, "state", None)  # waits while the worker restarts
    assert after["pid"] != first["pid"]
    assert after["config"] == {"level": 3}
    assert after["enabled"] is True
    crash = await events.wait_for("crashed")
    assert crash.exit_code == 9
    assert "about to crash" in crash.stderr_tail
    await events.wait_for("restarted")
    assert handle.info()["restarts"] == 1


@pytest.mark.parametrize("placement", WORKERS)
async def test_worker_timeout_kills_blocking_handler(
    load_python: Any, behave_dir: Path, events: Any, placement: str
) -> None:
    handle = await load_python(behave_dir, placement)
    guard = Guard()
    pid = (await call_value(handle, "state", None))["pid"]
    outcome = await guard.call("behave", handle, Call("block", {"seconds": 60}), timeout=0.3)
    assert outcome.error is not None and outcome.error.code == TIMED_OUT
    crash = await events.wait_for("crashed")
    assert "abandoned" in crash.message or "deadline" in crash.message
    state = await call_value(handle, "state", None)
    assert state["pid"] != pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("placement", WORKERS)
async def test_a_call_whose_caller_goes_away_is_cancelled_in_the_worker_which_lives_on(
    load_python: Any, behave_dir: Path, events: Any, placement: str
) -> None:
    """A bot that disconnects cancels its events' calls: that is no reason to kill the worker."""
    handle = await load_python(behave_dir, placement)
    pid = (await call_value(handle, "state", None))["pid"]
    napping = asyncio.create_task(handle.call(Call("nap", {"seconds": 60})))
    assert await asyncio.wait_for(call_value(handle, "nap_event", {"name": "started"}), 10) is True
    napping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await napping
    assert await asyncio.wait_for(call_value(handle, "nap_event", {"name": "cancelled"}), 10) is True
    assert (await call_value(handle, "state", None))["pid"] == pid
    assert handle.info()["restarts"] == 0
    assert "crashed" not in events.kinds()


@pytest.mark.parametrize("placement", WORKERS)
async def test_worker_cpu_bound_handler_killed_on_deadline(
    load_python: Any, behave_dir: Path, events: Any, placement: str
) -> None:
    from dataclasses import replace

    from process_support import WORKER_OPTIONS

    handle = await load_python(behave_dir, placement, options=replace(WORKER_OPTIONS, call_timeout_s=0.5))
    with pytest.raises(InvocationError) as timed_out:
        await call_value(handle, "spin", {"seconds": 30})
    assert timed_out.value.code == "timed_out"
    await events.wait_for("crashed")
    await events.wait_for("restarted")
    assert await call_value(handle, "echo", {"text": "next"}) == {"text": "next"}


async def test_worker_memory_limit(load_python: Any, behave_dir: Path) -> None:
    handle = await load_python(behave_dir, "worker", limits={"memory_mb": 256})
    assert await call_value(handle, "alloc", {"mb": 10}) == 10 * 1024 * 1024
    with pytest.raises(InvocationError, match="MemoryError"):
        await call_value(handle, "alloc", {"mb": 2048})
    assert await call_value(handle, "echo", {"text": "alive"}) == {"text": "alive"}


async def test_worker_cpu_limit_is_per_call(load_python: Any, behave_dir: Path, events: Any) -> None:
    """Start-up and earlier calls do not count: twenty calls of 0.15 s (3 s in all) under a 1 s limit."""
    handle = await load_python(behave_dir, "worker", limits={"cpu_seconds": 1})
    pid = (await call_value(handle, "state", None))["pid"]
    for _ in range(20):
        assert await call_value(handle, "spin", {"seconds": 0.15}) > 0
    # a call is charged with its own CPU time, not its neighbours': one that waits 2 s while others
    # compute for well over a second is fine
    waiting = asyncio.create_task(call_value(handle, "block", {"seconds": 2}))
    for _ in range(10):
        assert await call_value(handle, "spin", {"seconds": 0.15}) > 0
    assert await waiting == "done"
    assert (await call_value(handle, "state", None))["pid"] == pid
    assert "crashed" not in events.kinds()


@pytest.mark.parametrize("placement", WORKERS)
@pytest.mark.parametrize("method", ["spin", "spin_async"])  # on a thread of the plugin's, on the event loop
async def test_worker_cpu_limit_stops_the_call_that_passes_it(
    load_python: Any, behave_dir: Path, events: Any, placement: str, method: str
) -> None:
    handle = await load_python(behave_dir, placement, limits={"cpu_seconds": 1})
    assert await call_value(handle, method, {"seconds": 0.5}) > 0
    with pytest.raises(InvocationError) as stopped:
        await call_value(handle, method, {"seconds": 3})
    assert stopped.value.code == "timed_out"
    assert "CPU time limit (limits.cpu_seconds = 1 s)" in str(stopped.value)
    assert f"the call to '{method}' used" in str(stopped.value)  # the worker's last words name the call
    crash = await events.wait_for("crashed")
    assert crash.exit_code == 152
    await events.wait_for("restarted")
    assert await call_value(handle, "echo", {"text": "back"}) == {"text": "back"}


async def test_worker_cpu_backstop_stops_code_that_holds_the_gil(
    load_python: Any, behave_dir: Path, events: Any
) -> None:
    """A call in C code that never releases the GIL starves the worker's watchdog: the kernel's
    RLIMIT_CPU, kept 3 × limits.cpu_seconds ahead, stops it."""
    import signal
    from dataclasses import replace

    from process_support import WORKER_OPTIONS

    handle = await load_python(
        behave_dir, "worker", options=replace(WORKER_OPTIONS, call_timeout_s=120), limits={"cpu_seconds": 1}
    )
    await call_value(handle, "echo", {"text": "warm"})
    with pytest.raises(InvocationError) as stopped:
        await call_value(handle, "hog", {})
    assert stopped.value.code == "timed_out"
    assert "without its CPU watchdog getting a turn" in str(stopped.value)
    crash = await events.wait_for("crashed")
    assert crash.exit_code == -signal.SIGXCPU
    assert await call_value(handle, "echo", {"text": "back"}) == {"text": "back"}


async def test_worker_stdout_goes_to_logs_and_flood_does_not_block(load_python: Any, behave_dir: Path) -> None:
    import logging

    said = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "hello from print" in record.getMessage():
                said.set()

    logger = logging.getLogger("test.plugin.behave")
    watch = Watch(logging.DEBUG)
    logger.addHandler(watch)
    logger.setLevel(logging.DEBUG)
    try:
        handle = await load_python(behave_dir, "worker")
        assert await call_value(handle, "say", {"text": "hello from print"}) == "hello from print"
        assert await call_value(handle, "flood", {"mb": 8}) == 8
        assert await call_value(handle, "echo", {"text": "ok"}) == {"text": "ok"}
        await asyncio.wait_for(said.wait(), 5)
    finally:
        logger.removeHandler(watch)
        logger.setLevel(logging.NOTSET)


async def test_cli_worker_prints_a_valid_handshake(behave_dir: Path) -> None:
    import sys

    from plughost.runtime.goplugin.handshake import parse_handshake
    from plughost.runtime.goplugin.launch import LaunchSpec, launch
    from plughost.runtime.goplugin.logs import PluginLog
    from plughost.runtime.worker import WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE

    spec = LaunchSpec(
        argv=[
            sys.executable,
            "-c",
            "from plughost.cli.app import main; main()",
            "worker",
            "--plugin-id",
            "behave",
            "--path",
            str(behave_dir),
            "--data-dir",
            str(behave_dir),
        ],
        cwd=behave_dir,
        cookie_key=WORKER_COOKIE_KEY,
        cookie_value=WORKER_COOKIE_VALUE,
        secret="a-secret",
        start_timeout_s=20,
    )
    import logging

    launched = await launch(spec, PluginLog(logging.getLogger("test.cli-worker"), "behave"))
    try:
        info = launched.handshake
        assert parse_handshake(info.line(), (1,)) == info
        assert info.network == "unix" and info.protocol == "grpc"
    finally:
        launched.process.kill()
        await launched.process.wait()
        for pump in launched.pumps:
            await pump
        Path(launched.handshake.address).unlink(missing_ok=True)


async def test_worker_started_without_its_secret_refuses_to_serve(behave_dir: Path) -> None:
    import logging
    import sys

    from plughost.runtime.goplugin.launch import LaunchError, LaunchSpec, launch
    from plughost.runtime.goplugin.logs import PluginLog
    from plughost.runtime.worker import WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE

    worker = [sys.executable, "-m", "plughost.runtime.worker", "--plugin-id", "behave"]
    spec = LaunchSpec(
        argv=[*worker, "--path", str(behave_dir), "--data-dir", str(behave_dir)],
        cwd=behave_dir,
        cookie_key=WORKER_COOKIE_KEY,
        cookie_value=WORKER_COOKIE_VALUE,
        start_timeout_s=20,
    )
    with pytest.raises(LaunchError, match="without its secret"):
        await launch(spec, PluginLog(logging.getLogger("test.no-secret"), "behave"))
