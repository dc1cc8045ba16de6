"""The real `plughost` CLI beside a running host: commands go through its management API.

Most tests run the CLI as a subprocess against the in-process host of `tests/manage/conftest.py`
(the subprocess is awaited, so the host keeps serving meanwhile); the end-to-end one runs
`plughost run` as a subprocess too, and restarts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plughost.cli import remote
from plughost.manage.auth import KEY_ENV, KEY_FILE
from plughost.manage.server import SERVER_FILE
from tests.conftest import EXAMPLES
from tests.manage.conftest import Running
from tests.test_cli import PLUGHOST, HostProcess, cli_env, plughost


async def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `plughost *args` without blocking the event loop the in-process host serves on."""
    process = await asyncio.create_subprocess_exec(
        *PLUGHOST, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or cli_env()
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_server_file(workspace: Path, url: str, pid: int) -> None:
    path = workspace / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"url": url, "pid": pid, "workspace": str(workspace), "key_file": None}
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    return target


def test_the_client_agrees_with_the_server_on_paths_and_variable() -> None:
    assert (remote.SERVER_FILE, remote.KEY_FILE, remote.KEY_ENV) == (SERVER_FILE, KEY_FILE, KEY_ENV)


# through the in-process host -----------------------------------------------------------------------
async def test_commands_go_through_the_running_host(running: Running) -> None:
    ws = str(running.workspace)
    via = f"via the running host at {running.server.url}"
    await running.client.post("/api/v1/plugins/settings/execute", json={"method": "echo", "args": {"text": "x"}})

    listed = await cli("plugins", "list", "--json", "-w", ws)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip() == via  # one line on stderr; stdout is only the JSON
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["settings"]["calls"] == 1  # the host's own guard figures: not a freshly loaded workspace

    table = await cli("plugins", "list", "-p", str(running.workspace / "plugins"), "-w", ws)
    assert "settings" in table.stdout and "enabled" in table.stdout
    assert table.stderr.splitlines() == [
        f"--plugin-dir is not used: the host running at {running.server.url} has its own plugin directories",
        via,
    ]

    info = await cli("plugins", "info", "settings", "-w", ws)
    assert info.returncode == 0, info.stderr
    assert "metrics: 1 calls, 0 failures, 0 timeouts" in info.stdout and "method echo" in info.stdout
    detail = json.loads((await cli("plugins", "info", "settings", "--json", "-w", ws)).stdout)
    assert detail["guard"]["handlers"]["echo"]["calls"] == 1 and detail["config_schema"]["required"] == ["greeting"]

    called = await cli("plugins", "execute", "settings", "echo", "--args", '{"text": "hi"}', "-w", ws)
    assert (called.returncode, called.stdout) == (0, "hi\n")
    failed = await cli("plugins", "execute", "settings", "boom", "-w", ws)
    assert failed.returncode == 1 and failed.stderr.strip().endswith("error: RuntimeError: kaboom")
    failed_json = await cli("plugins", "execute", "settings", "boom", "--json", "-w", ws)
    assert failed_json.returncode == 1 and json.loads(failed_json.stdout)["success"] is False

    reloaded = await cli("plugins", "reload", "plain", "-w", ws)
    assert reloaded.returncode == 0 and "plugin 'plain' reloaded (version 1.0.0)" in reloaded.stdout


async def test_exec_runs_in_the_host_with_the_same_exit_codes(running: Running) -> None:
    ws = str(running.workspace)
    listed = await cli("exec", "/plugins", "-w", ws)
    assert listed.returncode == 0 and "settings" in listed.stdout and "via the running host" in listed.stderr
    unknown = await cli("exec", "/no-such-command", "-w", ws)
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr
    disabled = await cli("exec", "/plugins disable plain", "-w", ws)
    assert disabled.returncode == 0, disabled.stderr
    assert str(running.host.manager.get_plugin("plain").state) == "disabled"  # type: ignore[union-attr]


async def test_status_reports_the_running_host(running: Running) -> None:
    result = await cli("status", "--json", "-w", str(running.workspace))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["running"] is True and data["url"] == running.server.url and data["pid"] == os.getpid()
    assert data["plugins"] == {"enabled": 2}
    text = (await cli("status", "-w", str(running.workspace))).stdout
    assert f"host: running at {running.server.url} (pid {os.getpid()}" in text
    assert "plugins: 2 enabled" in text and "open breakers: none" in text


async def test_enable_and_disable_change_the_host_and_its_state_file(running: Running) -> None:
    ws = str(running.workspace)
    disabled = await cli("plugins", "disable", "plain", "-w", ws)
    assert disabled.returncode == 0 and disabled.stdout == "plugin 'plain' is now disabled\n"
    assert str(running.host.manager.get_plugin("plain").state) == "disabled"  # type: ignore[union-attr]
    called = await running.client.post("/api/v1/plugins/plain/execute", json={"method": "hi"})
    assert called.json()["success"] is False
    # the host writes its state file on its next change: the CLI's change is part of it, not undone
    await running.client.post("/api/v1/plugins/settings/disable")
    state = tomllib.loads((running.workspace / "plugin-state.toml").read_text())
    assert state["modules"] == {"plain": False, "settings": False}
    again = await cli("plugins", "disable", "plain", "-w", ws)
    assert again.stdout == "plugin 'plain' is already disabled\n"
    enabled = await cli("plugins", "enable", "plain", "-w", ws)
    assert enabled.stdout == "plugin 'plain' is now enabled\n"


async def test_local_is_refused_for_changes_beside_a_running_host(running: Running) -> None:
    ws = str(running.workspace)
    for args in (("plugins", "disable", "plain"), ("plugins", "enable", "plain"), ("exec", "/plugins")):
        refused = await cli(*args, "--local", "-w", ws)
        assert refused.returncode == 1
        assert "a host is running for this workspace" in refused.stderr and "drop --local" in refused.stderr
    assert not (running.workspace / "plugin-state.toml").exists()
    listed = await cli("plugins", "list", "--json", "--local", "-w", ws)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip() == (
        f"--local: loaded the workspace; the host running at {running.server.url} is not changed"
    )
    assert "calls" not in json.loads(listed.stdout)[0]
    both = await cli("plugins", "list", "--local", "--remote", running.server.url, "-w", ws)
    assert both.returncode == 1 and "--remote and --local exclude each other" in both.stderr


async def test_unknown_plugin_reads_as_when_loading_the_workspace(running: Running) -> None:
    ws = str(running.workspace)
    for args in (("plugins", "info", "ghost"), ("plugins", "enable", "ghost"), ("plugins", "execute", "ghost", "x")):
        there = await cli(*args, "-w", ws)
        here = await cli(*args, "--local", "-w", ws) if args[1] != "enable" else None
        assert there.returncode == 1
        assert there.stderr.splitlines()[-1] == "error: plugin 'ghost' was not found"
        if here is not None:
            assert here.stderr.splitlines()[-1] == there.stderr.splitlines()[-1]


async def test_a_failed_reload_reads_as_when_loading_the_workspace(running: Running) -> None:
    (running.workspace / "plugins" / "plain" / "plugin.py").write_text("import nope\n")
    result = await cli("plugins", "reload", "plain", "-w", str(running.workspace))
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr
    assert "answered 409" not in result.stderr


async def test_wrong_key_is_one_clear_line(running: Running) -> None:
    ws = str(running.workspace)
    wrong = await cli("plugins", "list", "--key", "w" * 43, "-w", ws)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert wrong.stderr.splitlines()[-1].startswith(
        f"error: the host at {running.server.url} answered 401 unauthorized: wrong management key"
    )
    assert "--key or PLUGHOST_MANAGE_KEY" in wrong.stderr


async def test_remote_with_key_from_option_or_environment(running: Running, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no server file, no key file
    elsewhere.mkdir()
    url = running.server.url
    by_option = await cli("status", "--json", "--remote", url, "--key", running.key, "-w", str(elsewhere))
    assert by_option.returncode == 0, by_option.stderr
    assert json.loads(by_option.stdout)["workspace"] == str(running.workspace)
    assert by_option.stderr.strip() == f"via the host at {url}"
    by_env = await cli(
        "plugins", "list", "--json", "--remote", url, "-w", str(elsewhere), env=cli_env(**{KEY_ENV: running.key})
    )
    assert by_env.returncode == 0 and {r["id"] for r in json.loads(by_env.stdout)} == {"settings", "plain"}
    missing = await cli("plugins", "list", "--remote", url, "-w", str(elsewhere))
    assert missing.returncode == 1 and "401 unauthorized: missing management key" in missing.stderr


# no host, a stale one, one that went away -----------------------------------------------------------
def test_remote_to_a_closed_port_fails_clearly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (("plugins", "list"), ("plugins", "disable", "x"), ("status",)):
        result = plughost(*args, "--remote", url, "--key", "k" * 20, "-w", str(tmp_path))
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: cannot reach a plughost at {url}: connection refused (is `plughost run` serving there?)"
        )


def test_stale_server_file_is_ignored_with_a_note(demo: Path) -> None:
    pid = dead_pid()
    write_server_file(demo, f"http://127.0.0.1:{closed_port()}", pid)
    listed = plughost("plugins", "list", "--json", "-w", str(demo))
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip() == (
        f"ignored a stale .plughost/manage.json (its host, pid {pid}, is not running); "
        "no running host: listed from the plugins' files, none loaded (--load loads them)"
    )
    assert "calculator" in {r["id"] for r in json.loads(listed.stdout)}
    disabled = plughost("plugins", "disable", "greeter", "-w", str(demo))  # no host to undo it: made here
    assert disabled.returncode == 0 and "greeter = false" in (demo / "plugin-state.toml").read_text()


def test_server_file_of_another_workspace_is_ignored(demo: Path, tmp_path: Path) -> None:
    write_server_file(demo, f"http://127.0.0.1:{closed_port()}", os.getpid())
    data = json.loads((demo / SERVER_FILE).read_text())
    (demo / SERVER_FILE).write_text(json.dumps(data | {"workspace": str(tmp_path / "original")}))
    listed = plughost("plugins", "list", "--json", "-w", str(demo))
    assert listed.returncode == 0, listed.stderr
    assert f"it was written for {tmp_path / 'original'}" in listed.stderr


def test_host_gone_between_discovery_and_call(demo: Path) -> None:
    """The server file names a live process, but nothing answers: reading falls back, changing refuses."""
    url = f"http://127.0.0.1:{closed_port()}"
    write_server_file(demo, url, os.getpid())
    listed = plughost("plugins", "list", "--json", "-w", str(demo))
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip() == (
        f"the host at {url} does not answer (connection refused); no running host: listed from the plugins' "
        "files, none loaded (--load loads them)"
    )
    refused = plughost("plugins", "disable", "greeter", "-w", str(demo))
    assert refused.returncode == 1 and "may be starting or stopping" in refused.stderr
    assert not (demo / "plugin-state.toml").exists()
    status = plughost("status", "-w", str(demo))
    assert status.returncode == 1 and f"no running host serves {demo}" in status.stdout


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server that reads the request, then closes the connection without answering (a host stopping mid-call)."""
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}"

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield url
    server.close()
    thread.join(5)


def test_host_that_hangs_up_during_the_call(demo: Path, hangs_up: str) -> None:
    write_server_file(demo, hangs_up, os.getpid())
    result = plughost("plugins", "disable", "greeter", "-w", str(demo), "--key", "k" * 20)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: the host at {hangs_up} closed the connection without answering" in result.stderr
    assert "may or may not have taken effect" in result.stderr


def test_something_else_on_the_port_is_not_taken_for_a_host(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}"

    def answer() -> None:  # twice: the fast path of `plugins list` asks, declines, then the full command asks
        for _ in range(2):
            with server.accept()[0] as connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = plughost("plugins", "list", "--remote", url, "--key", "k" * 20, "-w", str(tmp_path))
    finally:
        thread.join(5)
        server.close()
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {url} answered 404 Not Found, not as a plughost host does"


def test_status_without_a_running_host(demo: Path) -> None:
    result = plughost("status", "-w", str(demo))
    assert result.returncode == 1 and result.stdout.strip() == f"no running host serves {demo}"
    assert "plughost status --local" in result.stderr
    as_json = plughost("status", "--json", "-w", str(demo))
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == {"running": False, "workspace": str(demo)}
    local = plughost("status", "--local", "-w", str(demo))
    assert local.returncode == 0, local.stderr
    assert "host: not running" in local.stdout and "plugins: 6 enabled" in local.stdout
    assert local.stderr.strip() == "--local: loaded the workspace"


# end to end: plughost run, the CLI beside it, a restart ----------------------------------------------
def test_disable_beside_plughost_run_takes_effect_and_survives_a_restart(demo: Path) -> None:
    with HostProcess(demo) as host:
        disabled = plughost("plugins", "disable", "greeter", "-w", str(demo))
        assert disabled.returncode == 0, disabled.stderr
        assert disabled.stdout == "plugin 'greeter' is now disabled\n"
        assert disabled.stderr.strip() == f"via the running host at {host.url}"
        headers = {"Authorization": f"Bearer {host.key()}"}
        with httpx.Client(base_url=host.url, headers=headers, timeout=30) as api:
            assert api.get("/api/v1/plugins/greeter").json()["state"] == "disabled"
            call = api.post("/api/v1/plugins/greeter/execute", json={"args": "Ada"}).json()
            assert call["success"] is False and "disabled" in call["error"]
            api.post("/api/v1/plugins/notes/disable")  # the host's own next state write keeps the CLI's change
            api.post("/api/v1/plugins/notes/enable")
        refused = plughost("plugins", "execute", "greeter", "--args", '"Ada"', "-w", str(demo))
        assert refused.returncode == 1 and "disabled" in refused.stderr
        assert tomllib.loads((demo / "plugin-state.toml").read_text())["modules"]["greeter"] is False
        assert host.stop() == 0
    assert not (demo / SERVER_FILE).exists()
    with HostProcess(demo) as again:
        rows = {r["id"]: r for r in json.loads(plughost("plugins", "list", "--json", "-w", str(demo)).stdout)}
        assert rows["greeter"]["state"] == "disabled" and rows["notes"]["state"] == "enabled"
        status = json.loads(plughost("status", "--json", "-w", str(demo)).stdout)
        assert status["pid"] == again.pid and status["plugins"] == {"enabled": 5, "disabled": 1}
