"""Manifest permissions enforced in workers: each test tries to break one guarantee.

Every attempt is also made by the same plugin without the restriction, so a sandbox that
stopped working (or a test that could not tell) fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from process_support import WORKER_OPTIONS, call_value, request_for

from plughost.runtime import default_runtimes
from plughost.runtime.placement import WorkerRuntime
from plughost.runtime.sandbox import landlock

JAIL = """
import os
import socket
import subprocess
import tempfile
import threading

from plughost.sdk import Plugin

plugin = Plugin()


def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": f"{type(exc).__name__}: {exc}"}


def read_file(path):
    with open(path) as handle:
        return handle.read()


def write_file(path, text):
    with open(path, "w") as handle:
        return handle.write(text)


@plugin.method("read")
def read(path: str) -> dict:
    return attempt(lambda: read_file(path))


@plugin.method("write")
def write(path: str, text: str) -> dict:
    return attempt(lambda: write_file(path, text))


@plugin.method("listdir")
def listdir(path: str) -> dict:
    return attempt(lambda: sorted(os.listdir(path)))


@plugin.method("link")
def link(source: str, target: str) -> dict:
    return attempt(lambda: os.link(source, target))


@plugin.method("temp")
def temp() -> dict:
    def make():
        with tempfile.NamedTemporaryFile("w", delete=False) as handle:
            handle.write("scratch")
            return handle.name
    return attempt(make)


@plugin.method("connect")
def connect(port: int) -> dict:
    return attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())


@plugin.method("udp")
def udp() -> dict:
    return attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())


@plugin.method("run")
def run(argv: list) -> dict:
    return attempt(lambda: subprocess.run(argv, capture_output=True, check=False).returncode)


@plugin.method("fork")
def fork() -> dict:
    def child():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        return os.waitpid(pid, 0)[1]
    return attempt(child)


@plugin.method("thread")
def thread() -> int:
    results = []
    worker = threading.Thread(target=lambda: results.append(6 * 7))
    worker.start()
    worker.join()
    return results[0]


@plugin.method("crash")
def crash() -> None:
    os._exit(3)
"""

DENIED = 13  # EACCES from Landlock
NOT_PERMITTED = 1  # EPERM from seccomp


@pytest.fixture(scope="module", autouse=True)
def _landlock_present() -> None:
    if landlock.abi_version() < 1:
        message = "this kernel has no Landlock (Linux ≥ 5.13 with Landlock enabled); filesystem sandbox untestable"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)


def _plugin(root: Path, name: str, permissions: dict[str, bool]) -> Path:
    directory = root / name
    directory.mkdir()
    lines = "\n".join(f"{key} = {str(value).lower()}" for key, value in permissions.items())
    (directory / "plugin.toml").write_text(
        f'id = "{name}"\nversion = "1.0.0"\nisolation = "process"\n\n[permissions]\n{lines}\n'
    )
    (directory / "plugin.py").write_text(JAIL)
    return directory


@pytest.fixture
async def start_worker() -> AsyncIterator[Any]:
    handles: list[Any] = []

    async def start(directory: Path) -> Any:
        handle = await WorkerRuntime(WORKER_OPTIONS).load(request_for(directory))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.stop()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_text("the host's secret")
    return path


async def test_filesystem_false_confines_to_plugin_and_data_dirs(
    tmp_path: Path, start_worker: Any, secret: Path
) -> None:
    jailed = await start_worker(_plugin(tmp_path, "jailed", {"filesystem": False}))
    free = await start_worker(_plugin(tmp_path, "free", {"filesystem": True}))
    data_dir = jailed.request.data_dir
    escape = secret.parent / "written-by-plugin.txt"
    for handle in (jailed, free):
        (handle.request.plugin_dir / "to-secret").symlink_to(secret)

    for handle, allowed in ((free, True), (jailed, False)):
        attempts = {
            "read outside": await call_value(handle, "read", {"path": str(secret)}),
            "read /etc/passwd": await call_value(handle, "read", {"path": "/etc/passwd"}),
            "list outside": await call_value(handle, "listdir", {"path": str(secret.parent)}),
            "symlink to outside": await call_value(
                handle, "read", {"path": str(handle.request.plugin_dir / "to-secret")}
            ),
        }
        for what, result in attempts.items():
            assert result["ok"] is allowed, (handle.plugin_id, what, result)
            if not allowed:
                assert result["errno"] == DENIED, (what, result)
        write = await call_value(handle, "write", {"path": str(escape), "text": "x"})
        assert write["ok"] is allowed, write
        escape.unlink(missing_ok=True)

    hardlink = await call_value(jailed, "link", {"source": str(secret), "target": str(data_dir / "secret-link")})
    assert not hardlink["ok"] and not (data_dir / "secret-link").exists()
    assert secret.read_text() == "the host's secret"  # nothing outside was touched
    assert not escape.exists()

    # inside its own directories the plugin works normally
    own = await call_value(jailed, "read", {"path": str(jailed.request.plugin_dir / "plugin.toml")})
    assert own["ok"] and 'id = "jailed"' in own["value"]
    assert (await call_value(jailed, "write", {"path": str(data_dir / "notes.txt"), "text": "kept"}))["ok"]
    assert (data_dir / "notes.txt").read_text() == "kept"
    scratch = await call_value(jailed, "temp", {})
    assert scratch["ok"] and Path(scratch["value"]).parent == data_dir / "tmp"


async def test_network_false_allows_no_ip_sockets(tmp_path: Path, start_worker: Any) -> None:
    connections: list[Any] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        offline = await start_worker(_plugin(tmp_path, "offline", {"network": False}))
        online = await start_worker(_plugin(tmp_path, "online", {"network": True}))
        refused = await call_value(offline, "connect", {"port": port})
        assert refused == {"ok": False, "errno": NOT_PERMITTED, "error": refused["error"]}
        assert (await call_value(offline, "udp", {}))["errno"] == NOT_PERMITTED
        assert connections == []  # nothing reached the server
        assert (await call_value(online, "connect", {"port": port}))["ok"]
        assert (await call_value(online, "udp", {}))["ok"]
        assert len(connections) == 1
        assert (await offline.health()).ok  # its own link to the host is a unix socket: unaffected
    finally:
        server.close()
        await server.wait_closed()


async def test_exec_false_allows_no_programs_or_processes(tmp_path: Path, start_worker: Any) -> None:
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    locked = await start_worker(_plugin(tmp_path, "locked", {"exec": False}))
    ran = await call_value(locked, "run", {"argv": argv})
    assert ran["errno"] == NOT_PERMITTED, ran
    assert (await call_value(locked, "fork", {}))["errno"] == NOT_PERMITTED
    assert not marker.exists()
    assert await call_value(locked, "thread", {}) == 42  # threads are not processes
    unlocked = await start_worker(_plugin(tmp_path, "unlocked", {"exec": True}))
    assert (await call_value(unlocked, "run", {"argv": argv})) == {"ok": True, "value": 0}
    assert marker.exists()
    assert (await call_value(unlocked, "fork", {}))["ok"]


async def test_restarted_worker_is_confined_again(tmp_path: Path, start_worker: Any, secret: Path) -> None:
    jailed = await start_worker(_plugin(tmp_path, "again", {"filesystem": False, "network": False, "exec": False}))
    with pytest.raises(Exception, match="crashed"):
        await call_value(jailed, "crash", {})
    after = await call_value(jailed, "read", {"path": str(secret)})  # waits for the restart
    assert after["errno"] == DENIED
    assert (await call_value(jailed, "fork", {}))["errno"] == NOT_PERMITTED
    assert jailed.info()["restarts"] == 1


def test_unenforceable_permission_is_an_error_not_a_no_op(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from plughost.runtime import sandbox
        from plughost.runtime.sandbox import landlock
        from plughost.sdk.manifest import Permissions

        landlock.abi_version = lambda: 0  # a kernel without Landlock
        try:
            here = Path({str(tmp_path)!r})
            sandbox.confine(Permissions(filesystem=False), plugin_dir=here, data_dir=here)
        except sandbox.SandboxUnavailable as exc:
            print(exc)
        else:
            print("confined without Landlock?")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "permissions.filesystem = false cannot be enforced: Landlock is not available" in result.stdout


async def test_manager_warns_when_permissions_cannot_apply(
    workspace: Path, write_plugin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from plughost import PluginManager

    write_plugin("trusting", JAIL, manifest_extra="[permissions]\nnetwork = false\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        with caplog.at_level(logging.WARNING):
            assert await manager.discover_and_load_all() == 1
        assert "only enforced" in caplog.text and "'trusting'" in caplog.text
        # in-process means unconfined: the warning is the truth
        assert (await manager.execute("trusting", "udp", {})).result == {"ok": True, "value": None}
