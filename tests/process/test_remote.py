"""Remote plugins (`[remote]`): a Go Jank plugin started separately, attached by address.

Every remote here is the real jank-echo example, started by the test as a process of its own with
go-plugin's cookie and `PLUGIN_CLIENT_CERT` — over TCP (`JANK_LISTEN`, see examples/go/jank-echo/
listen.go) or over go-plugin's own unix socket — on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from process_support import FAST, call_value, request_for
from rich.console import Console
from tests.process.conftest import Events

from plughost import PluginManager
from plughost.cli.output import plugin_table
from plughost.errors import ManifestError, PluginLoadError
from plughost.runtime import default_runtimes
from plughost.runtime.config import ProcessConfig
from plughost.runtime.goplugin.mtls import ClientIdentity
from plughost.runtime.goplugin.remote import IDENTITY_FILE, RemoteError, parse_address, workspace_identity
from plughost.runtime.process import ProcessOptions, ProcessRuntime
from plughost.runtime.remote_handle import RemotePluginHandle
from plughost.sdk.manifest import parse_manifest
from plughost.sdk.models import EventType, PluginState

FAST_RECONNECT = ProcessConfig(
    start_timeout_s=5,
    call_timeout_s=5,
    health_interval_s=0,  # the channel's own state change reports a lost link: no polling needed
    restart_initial_delay_s=0.05,
    restart_max_delay_s=0.2,
)


@dataclass
class Remote:
    """A jank-echo process started apart from any host, and the handshake line it printed."""

    process: asyncio.subprocess.Process
    line: str

    @property
    def address(self) -> str:
        return self.line.split("|")[3]

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@pytest.fixture
async def start_remote(go_plugins: dict[str, Path], tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await start_remote(client_cert=PEM, listen="127.0.0.1:0", server_key=(cert, key))` → `Remote`;
    `listen=None` runs go-plugin's own `plugin.Serve` (a unix socket in tmp_path)."""
    binary = go_plugins["jank-echo"] / "bin" / "jank-echo"
    started: list[Remote] = []

    async def start(
        *, client_cert: str | None, listen: str | None = "127.0.0.1:0", server_key: tuple[Path, Path] | None = None
    ) -> Remote:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGIN_", "JANK_"))}
        env.update(JANK_PLUGIN="jank-plugin", TMPDIR=str(tmp_path))
        if client_cert is not None:
            env["PLUGIN_CLIENT_CERT"] = client_cert
        if listen is not None:
            env["JANK_LISTEN"] = listen
        if server_key is not None:
            env["JANK_TLS_CERT"], env["JANK_TLS_KEY"] = str(server_key[0]), str(server_key[1])
        process = await asyncio.create_subprocess_exec(
            str(binary), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        remote = Remote(process, line)
        started.append(remote)
        assert line.startswith("1|1|"), line
        return remote

    yield start
    for remote in started:
        if remote.process.returncode is None:
            await remote.kill()


@pytest.fixture
def identity(tmp_path: Path) -> ClientIdentity:
    """The workspace's client identity (tmp_path is the workspace)."""
    return workspace_identity(tmp_path / IDENTITY_FILE)


@pytest.fixture
def server_key(tmp_path: Path) -> tuple[Path, Path]:
    """A stable server certificate for the remote (JANK_TLS_CERT/KEY): it survives the remote's restarts."""
    server = ClientIdentity.generate()
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_text(server.cert_pem)
    key.write_text(server.key_pem)
    return cert, key


def write_remote_plugin(
    plugins: Path, remote: dict[str, Any], *, plugin_id: str = "remote-echo", extra: str = ""
) -> Path:
    directory = plugins / plugin_id
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f'{key} = "{value}"\n' for key, value in remote.items())
    (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nruntime = "process"\n{extra}\n[remote]\n{lines}')
    return directory


@pytest.fixture
async def attach(tmp_path: Path, events: Events) -> AsyncIterator[Callable[..., Any]]:
    """`await attach(plugin_dir, options=…)` → a `RemotePluginHandle` (its identity: the workspace's)."""
    handles: list[Any] = []

    async def load(plugin_dir: Path, *, options: ProcessOptions = FAST) -> RemotePluginHandle:
        options = replace(options, identity_file=tmp_path / IDENTITY_FILE)
        handle = await ProcessRuntime(options, on_event=events).load(request_for(plugin_dir))
        assert isinstance(handle, RemotePluginHandle)
        handles.append(handle)
        return handle

    yield load
    for handle in handles:
        await handle.stop()


def certificate_field(pem: str) -> str:
    """A certificate as the 6th field of a handshake line (unpadded base64 DER)."""
    return base64.b64encode(ssl.PEM_cert_to_DER_cert(pem)).decode().rstrip("=")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# the test: attached by address with mTLS, killed, started again, recovered -----------------
async def test_remote_over_mtls_is_recovered_after_kill_and_restart(
    tmp_path: Path, identity: ClientIdentity, server_key: tuple[Path, Path], start_remote: Any, events: Events
) -> None:
    workspace = tmp_path
    (workspace / "plugins").mkdir()
    remote = await start_remote(client_cert=identity.cert_pem, server_key=server_key)
    write_remote_plugin(workspace / "plugins", {"handshake_line": remote.line})
    async with PluginManager(workspace, runtimes=default_runtimes(FAST_RECONNECT, workspace=workspace)) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("remote-echo")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert isinstance(instance.handle, RemotePluginHandle)
        instance.handle.add_listener(events)
        result = await manager.execute("remote-echo", "add", {"a": 2, "b": 3})
        assert result.success and result.result == {"sum": 5.0}, result.error
        info = instance.handle.info()
        assert info["tls"] is True and info["address"] == remote.address and info["status"] == "running"

        await remote.kill()
        lost = await events.wait_for("disconnected")
        assert remote.address in lost.message
        failed = await manager.execute("remote-echo", "echo", {"x": 1})
        assert not failed.success and f"at {remote.address} is" in (failed.error or ""), failed.error
        row = next(r for r in manager.catalog() if r["id"] == "remote-echo")
        assert row["runtime_status"] in ("disconnected", "reconnecting")
        shown = Console(width=200, record=True)
        shown.print(plugin_table([row]))
        assert f"enabled ({row['runtime_status']})" in shown.export_text()  # `plughost plugins list`
        assert (await instance.handle.health()).status == "down"
        error_events = manager.events.history("remote-echo", EventType.ERROR)
        assert any(e.metadata.get("process_event") == "disconnected" for e in error_events)

        again = await start_remote(client_cert=identity.cert_pem, listen=remote.address, server_key=server_key)
        assert again.line == remote.line  # same address, same certificate
        await events.wait_for("reconnected", timeout=20)
        result = await manager.execute("remote-echo", "echo", {"back": True})
        assert result.success and result.result == {"back": True}, result.error
        assert instance.handle.info()["reconnects"] == 1
        recovered = manager.events.history("remote-echo", EventType.RECOVER)
        assert any(e.metadata.get("process_event") == "reconnected" for e in recovered)
    assert again.process.returncode is None  # the host's shutdown detached; the remote runs on


async def test_a_restarted_remote_with_a_new_address_and_certificate_is_picked_up_from_the_manifest(
    tmp_path: Path, identity: ClientIdentity, start_remote: Any, attach: Any, events: Events
) -> None:
    remote = await start_remote(client_cert=identity.cert_pem)  # go-plugin's AutoMTLS: a new certificate per start
    plugin_dir = write_remote_plugin(tmp_path / "plugins", {"handshake_line": remote.line})
    handle = await attach(plugin_dir, options=replace(FAST, restart=replace(FAST.restart, max_delay_s=0.2)))
    assert await call_value(handle, "echo", {"n": 1}) == {"n": 1.0}
    await remote.kill()
    await events.wait_for("disconnected")
    again = await start_remote(client_cert=identity.cert_pem)
    assert again.address != remote.address and again.line.split("|")[5] != remote.line.split("|")[5]
    failed = await events.wait_for("reconnect_failed")
    assert f"cannot reach {remote.address}" in failed.message
    write_remote_plugin(tmp_path / "plugins", {"handshake_line": again.line})  # the operator pastes the new line
    await events.wait_for("reconnected", timeout=20)
    assert await call_value(handle, "echo", {"n": 2}) == {"n": 2.0}
    assert handle.info()["address"] == again.address


async def test_unmodified_go_plugin_on_its_unix_socket_is_attached_and_left_running(
    identity: ClientIdentity, start_remote: Any, attach: Any, tmp_path: Path
) -> None:
    remote = await start_remote(client_cert=identity.cert_pem, listen=None)  # go-plugin's plugin.Serve
    assert remote.line.split("|")[2] == "unix"
    handle = await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": remote.line}))
    assert await call_value(handle, "echo", {"over": "unix"}) == {"over": "unix"}
    assert (await handle.health()).ok
    await handle.stop()
    assert handle.info()["status"] == "stopped"
    assert remote.process.returncode is None  # stop closes the link, never the remote
    handle = await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": remote.line}))
    assert await call_value(handle, "echo", {"again": True}) == {"again": True}


async def test_timeouts_and_the_breaker_apply_to_a_remote_and_never_kill_it(tmp_path: Path, start_remote: Any) -> None:
    workspace = tmp_path
    remote = await start_remote(client_cert=None)  # plaintext, which loopback allows
    write_remote_plugin(workspace / "plugins", {"address": remote.address}, extra="[limits]\ntimeout_s = 0.3")
    async with PluginManager(workspace, runtimes=default_runtimes(FAST_RECONNECT, workspace=workspace)) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("remote-echo")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert instance.handle is not None and instance.handle.info()["tls"] is False  # type: ignore[attr-defined]
        late = await manager.execute("remote-echo", "sleep", {"ms": 5000})
        assert not late.success and late.metadata["code"] == "timed_out", late.error  # the guard's clock or
        assert late.error is not None and "0.3 s" in late.error  # the gRPC deadline: whichever fires first
        assert (await manager.execute("remote-echo", "echo", {"still": "up"})).result == {"still": "up"}
        for _ in range(3):
            await manager.execute("remote-echo", "sleep", {"ms": 5000})
        assert instance.state is PluginState.ISOLATED  # three timeouts in a row open the breaker
    assert remote.process.returncode is None


# bad input: a clear one-line error, nothing attached ---------------------------------------------
async def test_unreachable_address_is_refused_and_nothing_is_attached(tmp_path: Path) -> None:
    workspace = tmp_path
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    write_remote_plugin(workspace / "plugins", {"address": address})
    async with PluginManager(workspace, runtimes=default_runtimes(FAST_RECONNECT, workspace=workspace)) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("remote-echo")
        assert instance is not None and instance.state is PluginState.ERROR and instance.handle is None
        assert f"cannot reach {address}: Connection refused" in (instance.error or "")
        assert "\n" not in (instance.error or "")


async def test_wrong_server_certificate_is_refused(
    tmp_path: Path, identity: ClientIdentity, start_remote: Any, attach: Any
) -> None:
    remote = await start_remote(client_cert=identity.cert_pem)
    fields = remote.line.split("|")
    fields[5] = certificate_field(ClientIdentity.generate().cert_pem)  # another server's certificate
    with pytest.raises(PluginLoadError) as refused:
        await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": "|".join(fields)}))
    message = str(refused.value)
    assert "presented another certificate than the configured one" in message and "\n" not in message
    # nothing was lost: the remote still serves a host that trusts its real certificate
    handle = await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": remote.line}))
    assert await call_value(handle, "echo", {"ok": True}) == {"ok": True}


async def test_remote_started_for_another_host_refuses_this_ones_certificate(
    tmp_path: Path, identity: ClientIdentity, start_remote: Any, attach: Any
) -> None:
    remote = await start_remote(client_cert=ClientIdentity.generate().cert_pem)
    with pytest.raises(PluginLoadError, match="refused this host's client certificate") as refused:
        await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": remote.line}))
    assert "plughost plugins remote-cert" in str(refused.value)


async def test_plaintext_is_refused_off_loopback(tmp_path: Path, attach: Any) -> None:
    for remote in ({"address": "10.0.0.5:7001"}, {"handshake_line": "1|1|tcp|192.0.2.1:7001|grpc|"}):
        with pytest.raises(PluginLoadError, match="is not on loopback: mTLS is required"):
            await attach(write_remote_plugin(tmp_path / "plugins", remote))


@pytest.mark.parametrize(
    "address",
    ["localhost", "127.0.0.1:0", "127.0.0.1:70000", "::1:7001", "unix:relative/plugin.sock", "my host:80", ":80"],
)
async def test_malformed_address_is_refused(tmp_path: Path, attach: Any, address: str) -> None:
    with pytest.raises(PluginLoadError, match=f"malformed address '{address}'"):
        await attach(write_remote_plugin(tmp_path / "plugins", {"address": address}))


async def test_missing_unix_socket_and_malformed_handshake_line(tmp_path: Path, attach: Any) -> None:
    with pytest.raises(PluginLoadError, match=r"cannot reach unix:/nonexistent/plugin\.sock"):
        await attach(write_remote_plugin(tmp_path / "plugins", {"address": "/nonexistent/plugin.sock"}))
    with pytest.raises(PluginLoadError, match="handshake_line: malformed handshake line"):
        await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": "listening on 7001"}))
    with pytest.raises(PluginLoadError, match="plughost supports only the grpc protocol"):
        await attach(write_remote_plugin(tmp_path / "plugins", {"handshake_line": "1|1|tcp|127.0.0.1:7001|netrpc|"}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"runtime": "process", "remote": {}}, "give `address"),
        ({"runtime": "process", "entry": "bin/x", "remote": {"address": "127.0.0.1:1"}}, "remove `entry`"),
        ({"runtime": "python", "remote": {"address": "127.0.0.1:1"}}, 'runtime = "process"'),
        ({"runtime": "process", "remote": {"address": "127.0.0.1:1", "protocol": "netrpc"}}, "protocol 'netrpc'"),
        ({"runtime": "process", "remote": {"address": "127.0.0.1:1", "client_cert": "c.pem"}}, "client_key"),
        ({"runtime": "process", "remote": {"address": "  "}}, "must not be empty"),
    ],
)
def test_malformed_remote_section_is_a_manifest_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest({"id": "remote-echo", **data}, "plugin.toml")


def test_addresses_are_parsed() -> None:
    assert parse_address("10.0.0.5:7001") == ("tcp", "10.0.0.5:7001")
    assert parse_address("[::1]:7001") == ("tcp", "[::1]:7001")
    assert parse_address("unix:/run/p.sock") == ("unix", "/run/p.sock")
    assert parse_address("/run/p.sock") == ("unix", "/run/p.sock")
    with pytest.raises(RemoteError):
        parse_address("10.0.0.5")


# the host's identity and the command that prints it ---------------------------------------------
def test_remote_cert_command_prints_the_persistent_identity(tmp_path: Path) -> None:
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "plughost", "-w", str(tmp_path), "plugins", "remote-cert", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    first = run()
    assert first.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in first
    path = tmp_path / IDENTITY_FILE
    assert run("--path").strip() == str(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert run() == first  # made once, kept
    assert workspace_identity(path).cert_pem == first
