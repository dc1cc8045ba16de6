"""Workers forked from the worker template (`plughost.runtime.prefork`): still the host's children,
supervised, restarted and sandboxed exactly like workers started as new programs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from process_support import WORKER_OPTIONS, call_value, request_for
from pydantic import ValidationError

from plughost.runtime.config import ProcessConfig
from plughost.runtime.placement import WorkerRuntime, process_options
from plughost.runtime.prefork.process import watch_exit
from plughost.runtime.prefork.wire import clone_supported
from plughost.runtime.sandbox import landlock

pytestmark = pytest.mark.skipif(not clone_supported(), reason="the worker template needs Linux x86_64/aarch64")

PLUGIN = """
import os
import socket
import subprocess

from plughost.sdk import Plugin

plugin = Plugin()


def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno}


@plugin.method("who")
def who() -> dict:
    return {"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "env": dict(os.environ)}


@plugin.method("read")
def read(path: str) -> dict:
    return attempt(lambda: open(path).read())


@plugin.method("connect")
def connect(port: int) -> dict:
    return attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())


@plugin.method("run")
def run(argv: list) -> dict:
    return attempt(lambda: subprocess.run(argv, check=False).returncode)
"""


def _plugin(root: Path, name: str, manifest: str = "") -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "plugin.toml").write_text(f'id = "{name}"\nversion = "1.0.0"\nisolation = "process"\n{manifest}')
    (directory / "plugin.py").write_text(PLUGIN)
    return directory


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.fixture
async def runtime(events: Any) -> AsyncIterator[WorkerRuntime]:
    worker = WorkerRuntime(WORKER_OPTIONS, on_event=events)
    yield worker
    await worker.aclose()


@pytest.fixture
async def load(runtime: WorkerRuntime) -> AsyncIterator[Callable[..., Any]]:
    handles: list[Any] = []

    async def start(directory: Path, worker: WorkerRuntime = runtime) -> Any:
        handle = await worker.load(request_for(directory))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.stop()


async def test_workers_are_forked_children_of_the_host(
    tmp_path: Path, runtime: WorkerRuntime, load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFORK_TEST_TOKEN", "only-for-a")
    first = await load(_plugin(tmp_path, "a", '[dependencies]\nenv = ["PREFORK_TEST_TOKEN"]\n'))
    second = await load(_plugin(tmp_path, "b"))
    template = runtime.template
    assert template is not None and template.starts == 1 and template.forks == 2
    assert template.pid is not None
    a, b = await call_value(first, "who"), await call_value(second, "who")
    for seen, handle in ((a, first), (b, second)):
        assert seen["pid"] == handle.info()["pid"] != template.pid
        assert seen["ppid"] == os.getpid() == _parent(seen["pid"])  # the host's child, not the template's
        assert seen["cwd"] == str(handle.request.plugin_dir)
        assert "plughost.runtime.prefork.template" in _cmdline(seen["pid"])  # forked, not a new program
    assert a["env"]["PREFORK_TEST_TOKEN"] == "only-for-a"
    assert "PREFORK_TEST_TOKEN" not in b["env"]  # each worker gets its own environment …
    assert b"only-for-a" not in Path(f"/proc/{template.pid}/environ").read_bytes()  # … never the template's
    assert set(a["env"]) - {"PREFORK_TEST_TOKEN"} <= set(b["env"]) | {"PLUGHOST_SECRET_FD"}


async def test_killed_forked_worker_is_seen_and_restarted(
    tmp_path: Path, runtime: WorkerRuntime, load: Any, events: Any
) -> None:
    handle = await load(_plugin(tmp_path, "victim"))
    pid = handle.info()["pid"]
    os.kill(pid, signal.SIGKILL)
    crashed = await events.wait_for("crashed")
    assert crashed.exit_code == -signal.SIGKILL and crashed.pid == pid
    await events.wait_for("restarted")
    after = await call_value(handle, "who")
    assert after["pid"] != pid and after["ppid"] == os.getpid()
    assert runtime.template is not None and runtime.template.forks == 2  # the restart was forked too


async def test_template_dies_and_the_next_load_still_works(tmp_path: Path, runtime: WorkerRuntime, load: Any) -> None:
    first = await load(_plugin(tmp_path, "first"))
    template = runtime.template
    assert template is not None and template.pid is not None
    dead = template.pid
    exited = watch_exit(dead, lambda: 0)  # called once the pidfd says it exited
    os.kill(dead, signal.SIGKILL)
    await asyncio.wait_for(exited, 10)

    second = await load(_plugin(tmp_path, "second"))
    assert template.starts == 2 and template.pid not in (None, dead)
    assert (await call_value(second, "who"))["ppid"] == os.getpid()
    assert (await call_value(first, "who"))["pid"] == first.info()["pid"]  # its workers live on


async def test_prefork_false_starts_each_worker_as_a_program(tmp_path: Path, load: Any) -> None:
    worker = WorkerRuntime(replace(WORKER_OPTIONS, prefork=False))
    assert worker.template is None
    handle = await load(_plugin(tmp_path, "plain"), worker)
    seen = await call_value(handle, "who")
    assert "plughost.runtime.worker" in _cmdline(seen["pid"]) and seen["ppid"] == os.getpid()


async def test_other_interpreter_variables_start_a_program(
    tmp_path: Path, runtime: WorkerRuntime, load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load(_plugin(tmp_path, "usual"))
    monkeypatch.setenv("PYTHONWARNINGS", "error")  # read by the interpreter as it starts: no fork can give it
    odd = await load(_plugin(tmp_path, "odd", '[dependencies]\nenv = ["PYTHONWARNINGS"]\n'))
    seen = await call_value(odd, "who")
    assert seen["env"]["PYTHONWARNINGS"] == "error"
    assert "plughost.runtime.worker" in _cmdline(seen["pid"])
    assert runtime.template is not None and runtime.template.forks == 1


async def test_sandbox_applies_in_a_forked_worker(tmp_path: Path, runtime: WorkerRuntime, load: Any) -> None:
    if landlock.abi_version() < 1:
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)("this kernel has no Landlock")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("the host's secret")
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    connections: list[Any] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        free = await load(_plugin(tmp_path, "free"))
        jailed = await load(
            _plugin(tmp_path, "jailed", "[permissions]\nfilesystem = false\nnetwork = false\nexec = false\n")
        )
        assert runtime.template is not None and runtime.template.forks == 2
        assert await call_value(jailed, "read", {"path": str(secret)}) == {"ok": False, "errno": 13}  # Landlock
        assert await call_value(jailed, "connect", {"port": port}) == {"ok": False, "errno": 1}  # seccomp
        assert await call_value(jailed, "run", {"argv": argv}) == {"ok": False, "errno": 1}
        assert not marker.exists() and connections == []
        # the same attempts from an unconfined sibling forked from the same template succeed
        assert await call_value(free, "read", {"path": str(secret)}) == {"ok": True, "value": "the host's secret"}
        assert (await call_value(free, "connect", {"port": port}))["ok"]
        assert await call_value(free, "run", {"argv": argv}) == {"ok": True, "value": 0}
        assert marker.exists()
    finally:
        server.close()
        await server.wait_closed()


def test_prefork_setting() -> None:
    assert process_options(ProcessConfig()).prefork is True
    assert process_options(ProcessConfig(prefork=False)).prefork is False
    with pytest.raises(ValidationError, match="prefork"):
        ProcessConfig.model_validate({"prefork": "sometimes"})
