"""Fixtures for process plugins: Go examples built once per session, script plugins, a Python
plugin with many behaviours loaded in-process or in a worker."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from process_support import EXAMPLES, FAST, GO_SDK, WORKER_OPTIONS, request_for, require_tool

from plughost.runtime.goplugin.supervisor import ProcessEvent
from plughost.runtime.placement import PlacedRuntime, WorkerRuntime
from plughost.runtime.process import ProcessOptions, ProcessPluginHandle, ProcessRuntime
from plughost.runtime.python import PythonRuntime


@pytest.fixture(scope="session")
def go_plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """examples/go/* copied and built once per session (GOPATH mode, Debian packages)."""
    require_tool("go", "process plugin tests build real go-plugin plugins")
    if not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        message = "golang-github-hashicorp-go-plugin-dev is not installed (apt-get install it)"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)
    root = tmp_path_factory.mktemp("go-plugins")
    built: dict[str, Path] = {}
    env = {**os.environ, "GOPATH": str(root / "gopath"), "PLUGHOST_GO_SDK": str(GO_SDK)}
    for name in ("jank-echo", "kv"):
        target = root / name
        shutil.copytree(EXAMPLES / "go" / name, target, ignore=shutil.ignore_patterns("bin"))
        result = subprocess.run(
            ["sh", "scripts/build.sh"], cwd=target, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"building {name} failed:\n{result.stdout}\n{result.stderr}"
        built[name] = target
    return built


class Events:
    """Collects ProcessEvents; `wait_for(kind)` waits on a condition, never on a sleep."""

    def __init__(self) -> None:
        self.items: list[ProcessEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ProcessEvent) -> None:
        self.items.append(event)
        self._changed.set()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 15.0) -> ProcessEvent:
        async with asyncio.timeout(timeout):
            while True:
                matching = [e for e in self.items if e.kind == kind]
                if len(matching) >= count:
                    return matching[count - 1]
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def start_process(events: Events) -> AsyncIterator[Callable[..., Any]]:
    """`await start_process(plugin_dir, options=..., **manifest_changes)` → a handle stopped at teardown."""
    handles: list[ProcessPluginHandle] = []

    async def start(plugin_dir: Path, *, options: ProcessOptions = FAST, **changes: Any) -> ProcessPluginHandle:
        runtime = ProcessRuntime(options, on_event=events)
        handle = await runtime.load(request_for(plugin_dir, **changes))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.stop()


@pytest.fixture
def script_plugin(tmp_path: Path) -> Callable[..., Path]:
    """A process plugin whose executable is a small shell script (for misbehaving plugins)."""

    def write(body: str, *, name: str = "script", start_timeout_ms: int = 5000, executable: bool = True) -> Path:
        directory = tmp_path / name
        (directory / "bin").mkdir(parents=True)
        (directory / "plugin.toml").write_text(
            f'id = "{name}"\nversion = "1.0.0"\nruntime = "process"\nentry = "bin/plugin"\n'
            f"start_timeout = {start_timeout_ms}\n"
        )
        script = directory / "bin" / "plugin"
        script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        if executable:
            script.chmod(0o755)
        return directory

    return write


BEHAVE = """
import asyncio
import os
import sys
import threading
import time

from plughost.sdk import Plugin

plugin = Plugin()
state = {"config": None, "enabled": None, "loads": 0}


@plugin.on_load
def loaded(ctx):
    state["loads"] += 1
    state["config"] = dict(ctx.config)


@plugin.on_reconfigure
def reconfigured(ctx, config):
    state["config"] = dict(config)


@plugin.on_enable
def enabled(ctx):
    state["enabled"] = True


@plugin.on_disable
def disabled(ctx):
    state["enabled"] = False


@plugin.method("echo")
def echo(text: str, times: int = 1) -> dict:
    return {"text": text * times}


@plugin.method("add")
async def add(a: float, b: float) -> float:
    await asyncio.sleep(0)
    return a + b


@plugin.method("fail")
def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


@plugin.method("state")
def get_state() -> dict:
    return {**state, "pid": os.getpid()}


@plugin.method("block")
def block(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


naps = {"started": asyncio.Event(), "cancelled": asyncio.Event()}


@plugin.method("nap")
async def nap(seconds: float) -> str:
    naps["started"].set()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        naps["cancelled"].set()
        raise
    return "rested"


@plugin.method("nap_event")
async def nap_event(name: str) -> bool:
    await naps[name].wait()
    return True


@plugin.method("spin")
def spin(seconds: float) -> int:
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n


@plugin.method("spin_async")
async def spin_async(seconds: float) -> int:
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:  # never awaits: the event loop is blocked meanwhile
        n += 1
    return n


@plugin.method("hog")
def hog() -> int:
    return sum(range(10**12))  # C code that never lets go of the GIL


@plugin.method("crash")
def crash(code: int = 7) -> None:
    sys.stderr.write("about to crash\\n")
    sys.stderr.flush()
    os._exit(code)


@plugin.method("alloc")
def alloc(mb: int) -> int:
    data = bytearray(mb * 1024 * 1024)
    return len(data)


@plugin.method("say")
def say(text: str) -> str:
    print(text)
    return text


@plugin.method("flood")
def flood(mb: int) -> int:
    chunk = b"x" * 65535 + b"\\n"
    for _ in range(mb * 16):
        os.write(1, chunk)
    return mb
"""


@pytest.fixture
def behave_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "behave"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "behave"\nversion = "1.2.3"\n')
    (directory / "plugin.py").write_text(BEHAVE)
    return directory


@pytest.fixture
async def load_python(events: Events) -> AsyncIterator[Callable[..., Any]]:
    """`await load_python(dir, placement, **manifest_changes)`: placement is "in_process",
    "worker" (Invoke over the invoke lane) or "worker-grpc" (Invoke over gRPC)."""
    handles: list[Any] = []

    async def load(
        plugin_dir: Path, placement: str, *, options: ProcessOptions = WORKER_OPTIONS, **changes: Any
    ) -> Any:
        isolation = "none" if placement == "in_process" else "process"
        if placement == "worker-grpc":  # a worker called over gRPC only, without its invoke lane
            options = replace(options, invoke_lane=False)
        runtime = PlacedRuntime("python", in_process=PythonRuntime(), worker=WorkerRuntime(options, on_event=events))
        handle = await runtime.load(request_for(plugin_dir, isolation=isolation, **changes))
        handles.append(handle)
        return handle

    yield load
    for handle in handles:
        await handle.stop()


def python_with_grpc() -> str:
    return sys.executable
