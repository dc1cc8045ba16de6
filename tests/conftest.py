"""Shared fixtures and helpers for the whole suite."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hang_report import report_if_hung
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, why: str = "") -> str:
    """Path of system tool `name`; skip (locally) or fail (under CI=true) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed{': ' + why if why else ''} (Debian: apt-get install it)"
        if in_ci():
            pytest.fail(f"CI must provide every tool the tests need: {message}")
        pytest.skip(message)
    return path


PluginWriter = Callable[..., Path]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test about to be ended by pytest-timeout first prints its asyncio tasks (see hang_report)."""
    marker = item.get_closest_marker("timeout")
    timeout = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout") or 0)
    with report_if_hung(timeout):
        return (yield)


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port (killed after the test); skips without one."""
    server = RedisServer(require_tool("redis-server", "the Redis backend's tests"), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace with a plugins/ directory."""
    (tmp_path / "plugins").mkdir()
    return tmp_path


@pytest.fixture
def write_plugin(workspace: Path) -> PluginWriter:
    """Write a plugin directory: `write_plugin("id", code, manifest_extra="...")`."""

    def write(
        plugin_id: str,
        code: str = "",
        *,
        manifest: str | None = None,
        manifest_extra: str = "",
        version: str = "1.0.0",
        filename: str = "plugin.py",
        parent: Path | None = None,
    ) -> Path:
        directory = (parent or workspace / "plugins") / plugin_id
        directory.mkdir(parents=True, exist_ok=True)
        if manifest is None:
            manifest = f'id = "{plugin_id}"\nversion = "{version}"\n' + textwrap.dedent(manifest_extra)
        (directory / "plugin.toml").write_text(manifest, encoding="utf-8")
        if code:
            (directory / filename).write_text(textwrap.dedent(code), encoding="utf-8")
        return directory

    return write
