"""Mistakes on the command line and places that cannot be written: one `error:` line, the right exit
status (2 for what was typed, 1 for anything else), nothing written (real `plughost` subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.test_cli import HostProcess, plughost

SERVER_FILE = Path(".plughost") / "manage.json"


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line a failed command printed on stderr (after checking its exit status)."""
    lines = result.stderr.splitlines()
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    created = plughost("init", str(tmp_path / "ws"), "--no-interactive")
    assert created.returncode == 0, created.stderr
    return tmp_path / "ws"


def test_a_place_that_cannot_be_created_is_one_line(tmp_path: Path, ws: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    target = afile / "sub"
    assert one_error(plughost("init", str(target), "--no-interactive"), 1) == (
        f"error: cannot create {target}: Not a directory"
    )
    assert one_error(plughost("new", "x", "-d", str(target), "-w", str(ws)), 1) == (
        f"error: cannot create {target / 'x'}: Not a directory"
    )
    assert afile.read_text() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--manage-bind", "nonsense"), "--manage-bind: bind must be host:port (e.g. 127.0.0.1:3210), not 'nonsense'"),
        (("--manage-bind", "127.0.0.1:99999"), "--manage-bind: bind must be host:port"),
        (("--manage-bind", ":3461"), "--manage-bind: bind must be host:port"),
        (("--cluster", "notaurl"), "--cluster: 'notaurl' is not a Redis URL: write redis://host:port/db"),
        (("--role", "worker"), "--role worker: needs --cluster REDIS_URL or [cluster] redis_url"),
    ],
)
def test_run_options_the_settings_reject_name_the_option(ws: Path, args: tuple[str, ...], message: str) -> None:
    line = one_error(plughost("run", "--no-console", "-w", str(ws), *args), 2)
    assert line.startswith(f"error: {message}") and "pydantic" not in line and "plughost.toml" not in line
    assert not (ws / ".plughost").exists()  # stopped before the host started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plugins", "execute", "calculator", "add", "--args", "notjson"), "--args is not valid JSON"),
        (("plugins", "execute", "calculator", "add", "--args", "[1,2]"), "--args must be a JSON object"),
        (("plugins", "list", "--remote", "notaurl"), "--remote: 'notaurl' is not an http:// or https:// address"),
        (("agent", "tools", "--format", "bogus"), "--format must be table, openai, anthropic or mcp, not 'bogus'"),
        (("agent", "prompt", "--context", "[1]"), "--context must be a JSON object"),
        (("new", "bad id"), "'bad id' is not a valid plugin id"),
        (("market", "update"), "name the plugin to update, or --all"),
        (("pack", str(EXAMPLES / "plugins" / "calculator"), "--format", "rar"), "--format must be tar.gz or zip"),
        (("exec", ""), "the command is empty"),
        (("exec", "  "), "the command is empty"),
    ],
)
def test_command_line_mistakes_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert one_error(plughost(*args, "-w", str(workspace), cwd=tmp_path), 2).startswith(f"error: {message}")
    assert list(workspace.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_a_second_host_on_a_workspace_is_refused(ws: Path) -> None:
    with HostProcess(ws) as first:
        recorded = (ws / SERVER_FILE).read_text()
        second = plughost("run", "--no-console", "--manage-bind", "127.0.0.1:0", "-w", str(ws))
        assert one_error(second, 1).startswith(f"error: a host already runs for {ws} (pid {first.pid}, {first.url})")
        assert (ws / SERVER_FILE).read_text() == recorded
        status = plughost("status", "--json", "-w", str(ws))
        assert status.returncode == 0 and json.loads(status.stdout)["pid"] == first.pid
    assert not (ws / SERVER_FILE).exists()


def test_a_stale_server_file_is_replaced_and_another_hosts_is_kept(ws: Path) -> None:
    stale = {"url": "http://127.0.0.1:9", "pid": os.getpid(), "workspace": str(ws), "key_file": None}
    (ws / SERVER_FILE).parent.mkdir()
    (ws / SERVER_FILE).write_text(json.dumps(stale))  # a live process, nothing answering at its address
    with HostProcess(ws) as host:
        assert json.loads((ws / SERVER_FILE).read_text())["pid"] == host.pid
        (ws / SERVER_FILE).write_text(json.dumps(stale))  # taken over while it runs: not its file any more
    assert json.loads((ws / SERVER_FILE).read_text()) == stale


def test_new_writes_into_the_plugin_directory_the_host_loads(ws: Path, tmp_path: Path) -> None:
    inside = plughost("new", "inner", cwd=ws / "plugins")
    assert inside.returncode == 0 and inside.stderr == "", inside.stderr
    assert (ws / "plugins" / "inner" / "plugin.toml").is_file() and not (ws / "plugins" / "plugins").exists()

    (ws / "plughost.toml").write_text('[host]\nplugin_dirs = ["bots/plugins"]\n')
    configured = plughost("new", "bot-tool", "-w", str(ws))
    assert configured.returncode == 0 and configured.stderr == "", configured.stderr
    assert (ws / "bots" / "plugins" / "bot-tool" / "plugin.toml").is_file()

    elsewhere = plughost("new", "stray", "-d", str(tmp_path / "elsewhere"), "-w", str(ws))
    assert elsewhere.returncode == 0 and (tmp_path / "elsewhere" / "stray" / "plugin.toml").is_file()
    assert elsewhere.stderr.splitlines() == [
        f"warning: the host of {ws} does not load plugins from {tmp_path / 'elsewhere'}: "
        f"it looks in {ws / 'bots' / 'plugins'}"
    ]
