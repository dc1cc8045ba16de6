"""Plugin sockets live in a per-host directory; a killed host's are removed by the next start.

Real hosts (`plughost run`) with a worker plugin and a go-plugin plugin, killed with SIGKILL.
`TMPDIR` points at a directory of the test, so "nothing in the temp directory" is checked exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from plughost.runtime.rundir import SUN_PATH_MAX, fits

WORKER_PLUGIN = """
from plughost import Plugin
plugin = Plugin()

@plugin.method("ping")
def ping() -> str:
    return "pong"
"""


def sockets(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if stat.S_ISSOCK(p.lstat().st_mode))


def workspace_at(path: Path, go_plugin: Path) -> Path:
    plugin = path / "plugins" / "pinger"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text('id = "pinger"\nversion = "1.0.0"\nisolation = "process"\n')
    (plugin / "plugin.py").write_text(WORKER_PLUGIN)
    shutil.copytree(go_plugin, path / "plugins" / "jank-echo", ignore=shutil.ignore_patterns("gopath"))
    return path


def environment(tmp_path: Path, xdg: bool) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("XDG_RUNTIME_DIR", None)
    if xdg:
        (tmp_path / "xdg").mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "xdg")
    return env


def start_host(workspace: Path, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """`plughost run`, returned once it has loaded the workspace."""
    with log.open("w") as stderr:
        host = subprocess.Popen(
            [sys.executable, "-m", "plughost", "run", "-w", str(workspace), "--no-console"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    assert host.stdout is not None
    seen = []
    for line in host.stdout:
        seen.append(line)
        if line.startswith("running;"):
            return host
    host.kill()
    host.wait()
    raise AssertionError("the host did not start:\n" + "".join(seen) + log.read_text())


def list_plugins(workspace: Path, env: dict[str, str]) -> None:
    """Another host: `plughost plugins list` loads the workspace and exits."""
    result = subprocess.run(
        [sys.executable, "-m", "plughost", "plugins", "list", "--load", "--json", "-w", str(workspace)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    states = {row["id"]: row["state"] for row in json.loads(result.stdout)}
    assert states == {"pinger": "enabled", "com.example.jank-echo": "enabled"}


@pytest.mark.parametrize(
    ("where", "long_path", "xdg"),
    [
        ("workspace", False, False),
        ("xdg", True, True),  # the workspace is too deep for socket paths: $XDG_RUNTIME_DIR
        ("temp", True, False),  # nor any $XDG_RUNTIME_DIR: a private directory in the temp directory
    ],
)
def test_killed_host_sockets(  # a short name: tmp_path must leave room for socket paths
    tmp_path: Path, go_plugins: dict[str, Path], where: str, long_path: bool, xdg: bool
) -> None:
    """A host killed with SIGKILL leaves its sockets; the next start removes them; none go to the temp directory."""
    env = environment(tmp_path, xdg)
    temp = Path(env["TMPDIR"])
    place = tmp_path / ("deep-" + "x" * 90 if long_path else "ws")
    workspace = workspace_at(place, go_plugins["jank-echo"])
    assert where != "workspace" or fits(workspace / ".plughost" / "run" / "1234567"), "tmp_path is too deep"
    base = {
        "workspace": workspace / ".plughost" / "run",
        "xdg": tmp_path / "xdg" / "plughost",
        "temp": temp / f"plughost-{os.getuid()}",
    }[where]

    host = start_host(workspace, env, tmp_path / "first.log")
    try:
        own = base / str(host.pid)
        live = sockets(own)
        # the worker's gRPC and invoke-lane sockets and the go plugin's socket
        assert len(live) >= 3, (live, (tmp_path / "first.log").read_text())
        assert all(len(os.fsencode(s)) <= SUN_PATH_MAX for s in live)
        list_plugins(workspace, env)  # another host meanwhile leaves a live host's sockets alone
        assert sockets(own) == live
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
        assert host.stdout is not None
        host.stdout.close()
    assert sockets(own) == live  # the killed host could not clean up

    list_plugins(workspace, env)
    assert not own.exists()
    assert sockets(tmp_path) == []  # the second host removed its own at exit too
    if where == "temp":
        assert [p.name for p in temp.iterdir()] == [base.name]
        assert [p.name for p in base.iterdir()] == [".lock"]
    else:
        assert list(temp.iterdir()) == []  # nothing ever went to the temp directory


def test_a_socket_dir_too_long_for_socket_paths_is_a_clear_error(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "plugins").mkdir(parents=True)
    (workspace / "plughost.toml").write_text(f'[process]\nsocket_dir = "{"r" * 120}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "plughost", "plugins", "list", "--load", "-w", str(workspace)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: [process] socket_dir {workspace / ('r' * 120)}: too long for unix socket paths (at most 107 bytes)"
    )
