"""Start-up stays lean: commands import only what they use (see `benchmarks/bench_cli.py` for the timings).

Each check runs the real command in a fresh interpreter and records `sys.modules` as it exits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.test_cli import HostProcess, cli_env

# runs the CLI with the given arguments; at exit, writes the name of every imported module
WRAPPER = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["plughost", *sys.argv[2:]]
from plughost.cli.app import main
main()
"""
# what only `plughost run` (bots, the interactive console) or a process plugin needs
NOT_FOR_LISTING = {"grpc", "google", "websockets", "uvicorn", "starlette", "prompt_toolkit"}
# what a command sent to a running host does without: it only speaks HTTP (http.client) and JSON
NOT_FOR_REMOTE = {*NOT_FOR_LISTING, "fastapi", "httpx", "asyncio", "jsonschema", "tomli_w", "yaml", "packaging"}
# `plugins list` answered by a running host: the fast path (plughost.cli.quick) and a few standard modules
FAST_PATH = {
    "plughost",
    "plughost.cli",
    "plughost.cli.app",
    "plughost.cli.quick",
    "plughost.cli.remote",
    "plughost.cli.output",
    "plughost.cli.listing",
    "plughost.cli.plain",
}
NOT_FOR_THE_FAST_PATH = {*NOT_FOR_REMOTE, "typer", "rich", "pydantic", "http", "email", "logging", "dataclasses"}
# what loads plugins: a list read from the files needs none of it
LOADING = (
    "plughost.host",
    "plughost.core.manager",
    "plughost.runtime.python",
    "plughost.runtime.placement",
    "plughost.runtime.native.handle",
    "plughost.runtime.native.abi",
)
HOST_SIDE = (
    "plughost.host",
    "plughost.core",
    "plughost.runtime",
    "plughost.manage",
    "plughost.adapters",
    "plughost.bot",
)


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """Top-level names of the modules `plughost *args` imported."""
    return {m.split(".")[0] for m in modules_of(tmp_path, *args)}


def modules_of(tmp_path: Path, *args: str) -> set[str]:
    record = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(record), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(record.read_text()))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    return target


def test_plugins_list_imports_no_transport_grpc_or_prompt(tmp_path: Path, demo: Path) -> None:
    modules = imported_by(tmp_path, "plugins", "list", "-w", str(demo))
    assert "plughost" in modules
    assert modules & NOT_FOR_LISTING == set()


def test_plugins_list_without_a_host_loads_no_plugin(tmp_path: Path, demo: Path) -> None:
    """Read from the files by the fast path: no typer, no rich (a plain table), no runtime that loads."""
    modules = modules_of(tmp_path, "plugins", "list", "-w", str(demo))
    assert "plughost.cli.inventory" in modules
    assert {m.split(".")[0] for m in modules} & {"typer", "rich", "ctypes", *NOT_FOR_LISTING} == set()
    assert [m for m in modules if m.startswith(LOADING)] == []


def test_help_imports_no_host(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--help")
    assert modules & {"pydantic", "asyncio", "rich", *NOT_FOR_LISTING} == set()


def test_commands_sent_to_a_running_host_import_no_host(tmp_path: Path, demo: Path) -> None:
    with HostProcess(demo):
        for args in (("plugins", "list"), ("plugins", "list", "--json")):
            modules = modules_of(tmp_path, *args, "-w", str(demo))
            assert {m for m in modules if m.startswith("plughost")} == FAST_PATH
            assert {m.split(".")[0] for m in modules} & NOT_FOR_THE_FAST_PATH == set()
        for args in (("plugins", "info", "notes", "--json"), ("status",), ("exec", "/plugins")):
            modules = modules_of(tmp_path, *args, "-w", str(demo))
            assert "http.client" in modules
            assert {m.split(".")[0] for m in modules} & NOT_FOR_REMOTE == set()
            assert [m for m in modules if m.startswith(HOST_SIDE)] == []
