"""`isolation = "sandbox"` confines a stdio MCP server with the workers' sandbox: each test tries
what the sandbox must refuse, and the same server without it must manage (so a sandbox that
stopped working, or a test that could not tell, fails)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plughost.host import PluginManager
from plughost.runtime.sandbox import FALLBACKS_ENV, landlock
from plughost.sdk.call import Call
from plughost.sdk.models import PluginState
from tests.mcp_client.support import DEMO, fast_workspace, listen, loaded_handle, value, write_mcp_plugin

DENIED = 13  # EACCES from Landlock
NOT_PERMITTED = 1  # EPERM from seccomp
READ_ONLY = 30  # EROFS from the read-only mounts of the sandbox's mount namespace


@pytest.fixture(scope="module", autouse=True)
def _landlock_present() -> None:
    if landlock.abi_version() < 1:
        message = "this kernel has no Landlock (Linux ≥ 5.13 with Landlock enabled); the sandbox is untestable"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def jail(workspace: Path, plugin_id: str, isolation: str) -> Path:
    """The demo server shipped in its plugin directory (a sandboxed server reads only that, its data
    directory, the system's and Python's files)."""
    directory = write_mcp_plugin(
        workspace,
        plugin_id,
        command=[sys.executable, "demo_server.py"],
        extra=f'isolation = "{isolation}"\n',
    )
    shutil.copy(DEMO, directory / "demo_server.py")
    return directory


async def attempt(manager: PluginManager, plugin_id: str, tool: str, **arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = value(await manager.execute(plugin_id, tool, arguments))
    return result


@pytest.mark.parametrize("fallbacks", [False, True], ids=["kernel", "fallbacks"])
async def test_a_sandboxed_server_can_reach_nothing_but_its_directories(
    tmp_path: Path, listener: int, fallbacks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fallbacks:  # what older kernels get: no mount namespace, seccomp for signals and metadata
        monkeypatch.setenv(FALLBACKS_ENV, "1")
    workspace = fast_workspace(tmp_path / "ws")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("the host's secret")
    jail(workspace, "jailed", "sandbox")
    jail(workspace, "free", "none")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        for plugin_id in ("jailed", "free"):
            instance = manager.get_plugin(plugin_id)
            assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert loaded_handle(manager, "jailed").info()["confined"] is True
        data = workspace / "data" / "jailed"

        # files: only the plugin and data directories
        assert await attempt(manager, "free", "read", path=str(secret)) == {"ok": True, "value": "the host's secret"}
        denied = await attempt(manager, "jailed", "read", path=str(secret))
        assert denied["ok"] is False and denied["errno"] == DENIED
        written = await attempt(manager, "jailed", "write", path=str(outside / "note"), text="x")
        assert written["errno"] in (DENIED, READ_ONLY)
        assert not (outside / "note").exists()
        assert (await attempt(manager, "jailed", "write", path=str(data / "note"), text="kept"))["ok"] is True
        assert (data / "note").read_text() == "kept"
        assert value(await manager.execute("jailed", "env", {"name": "HOME"})) == str(data)

        # network, processes, programs
        assert (await attempt(manager, "free", "connect", port=listener))["ok"] is True
        assert (await attempt(manager, "jailed", "connect", port=listener))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "free", "run", argv=["/bin/true"])) == {"ok": True, "value": 0}
        assert (await attempt(manager, "jailed", "run", argv=["/bin/true"]))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "jailed", "fork"))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "jailed", "replace"))["errno"] == NOT_PERMITTED  # no exec after its own
        assert value(await manager.execute("jailed", "add", {"a": 1, "b": 2})) == {"total": 3}  # still serving


async def test_a_restarted_server_is_confined_again(tmp_path: Path) -> None:
    workspace = fast_workspace(tmp_path / "ws")
    jail(workspace, "jailed", "sandbox")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        events = listen(manager, "jailed")
        outcome = await manager.call("jailed", Call("die", {"code": 5}))
        assert outcome.error is not None and outcome.error.code == "crashed"
        await events.wait_for("restarted")
        assert (await attempt(manager, "jailed", "read", path="/etc/hostname"))["errno"] == DENIED
        assert (await attempt(manager, "jailed", "fork"))["errno"] == NOT_PERMITTED


async def test_granted_permissions_are_not_taken(tmp_path: Path, listener: int) -> None:
    workspace = fast_workspace(tmp_path / "ws")
    directory = jail(workspace, "netted", "sandbox")
    with (directory / "plugin.toml").open("a") as manifest:
        manifest.write("\n[permissions]\nnetwork = true\n")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        assert (await attempt(manager, "netted", "connect", port=listener))["ok"] is True
        assert (await attempt(manager, "netted", "read", path="/etc/hostname"))["errno"] == DENIED


async def test_exec_alone_switched_off(tmp_path: Path, listener: int) -> None:
    workspace = fast_workspace(tmp_path / "ws")
    directory = jail(workspace, "noexec", "process")
    with (directory / "plugin.toml").open("a") as manifest:
        manifest.write("\n[permissions]\nexec = false\n")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        assert loaded_handle(manager, "noexec").info()["confined"] is True
        assert (await attempt(manager, "noexec", "run", argv=["/bin/true"]))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "noexec", "fork"))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "noexec", "replace"))["errno"] == NOT_PERMITTED
        assert (await attempt(manager, "noexec", "read", path=str(directory / "plugin.toml")))["ok"] is True
        assert (await attempt(manager, "noexec", "connect", port=listener))["ok"] is True
