"""Helpers of the MCP client tests: plugin directories, the test servers, runtime events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plughost.host import PluginManager
from plughost.sdk.models import PluginExecutionResult

SERVERS = Path(__file__).resolve().parent / "servers"
DEMO = SERVERS / "demo_server.py"
BROKEN = SERVERS / "broken_server.py"
# restarts within a test's patience: 10 ms doubling up to 100 ms, at most 3 per 30 s
FAST_PROCESS = """
[process]
start_timeout_s = 20
call_timeout_s = 20
stop_grace_s = 2
restart_initial_delay_s = 0.01
restart_max_delay_s = 0.1
max_restarts = 3
restart_window_s = 30
"""


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def write_mcp_plugin(
    workspace: Path,
    plugin_id: str,
    *,
    command: list[str] | None = None,
    url: str | None = None,
    extra: str = "",
) -> Path:
    """`plugins/<id>/plugin.toml` for an MCP server (`command` or `url`, `extra` lines after them)."""
    directory = workspace / "plugins" / plugin_id
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f'id = "{plugin_id}"', 'version = "1.0.0"', 'runtime = "mcp"']
    if command is not None:
        lines.append(f"command = {toml_list(command)}")
    if url is not None:
        lines.append(f'url = "{url}"')
    (directory / "plugin.toml").write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return directory


def demo_command() -> list[str]:
    return [sys.executable, str(DEMO)]


def broken_command(mode: str) -> list[str]:
    return [sys.executable, str(BROKEN), mode]


def fast_workspace(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir(parents=True, exist_ok=True)
    (tmp_path / "plughost.toml").write_text(FAST_PROCESS, encoding="utf-8")
    return tmp_path


class Events:
    """Runtime events of the plugins (crashed, restarted, tools_changed …); waits on conditions,
    never on sleeps."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Any) -> None:
        self.items.append(event)
        self._changed.set()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                matching = [e for e in self.items if e.kind == kind]
                if len(matching) >= count:
                    return matching[count - 1]
                self._changed.clear()
                await self._changed.wait()


def listen(manager: PluginManager, plugin_id: str) -> Events:
    """The runtime events of a loaded plugin from now on."""
    instance = manager.get_plugin(plugin_id)
    assert instance is not None and instance.handle is not None, f"{plugin_id} is not loaded"
    events = Events()
    instance.handle.add_listener(events)  # type: ignore[attr-defined]
    return events


def loaded_handle(manager: PluginManager, plugin_id: str) -> Any:
    instance = manager.get_plugin(plugin_id)
    assert instance is not None, plugin_id
    assert instance.handle is not None, f"{plugin_id} is {instance.state}: {instance.error}"
    return instance.handle


def value(result: PluginExecutionResult) -> Any:
    assert result.success, result.error
    return result.result


def gone(pid: int) -> bool:
    """True when no process `pid` exists (the handle reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def child_pids() -> set[int]:
    """The processes this test process started that still exist (zombies included)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry))
    return found


@contextlib.asynccontextmanager
async def http_server(*extra: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """The demo server over streamable HTTP on 127.0.0.1: yields its url and process (killed at exit)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(DEMO), "--http", *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        if not line.startswith("PORT "):
            stderr = (await process.stderr.read()).decode() if process.stderr else ""  # type: ignore[union-attr]
            pytest.fail(f"the HTTP test server did not start: {line!r} {stderr}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp", process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def open_files() -> set[str]:
    """What this process's file descriptors point at (pipes and sockets by inode)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def socket_inodes() -> set[str]:
    """This process's open sockets (their inodes), to see none is left behind."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return found
