"""Misbehaving process plugins: each fails with a clear error and the host keeps running."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from process_support import call_value

from plughost.errors import PluginLoadError
from plughost.runtime.goplugin.handshake import HandshakeError, parse_handshake
from plughost.runtime.goplugin.logs import LineSplitter, parse_log_line


def no_process_left(marker: str) -> bool:
    """True when no process has `marker` in its command line (no orphans)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


async def test_binary_missing(tmp_path: Path, start_process: Any) -> None:
    directory = tmp_path / "ghost"
    directory.mkdir()
    (directory / "plugin.json").write_text('{"id": "ghost", "binary": "bin/ghost"}')
    with pytest.raises(PluginLoadError, match=r"bin/ghost does not exist"):
        await start_process(directory)


async def test_binary_not_executable(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin("echo hi", executable=False)
    with pytest.raises(PluginLoadError, match="is not executable"):
        await start_process(directory)


async def test_exits_at_once_with_stderr_tail(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin('echo "config file missing: /etc/x.conf" >&2\nexit 3\n')
    with pytest.raises(PluginLoadError) as failed:
        await start_process(directory)
    assert "exited before its handshake (exit code 3)" in str(failed.value)
    assert "config file missing: /etc/x.conf" in str(failed.value)


async def test_malformed_handshake(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin('echo "hello, I am not a plugin"\nexec sleep 30\n')
    with pytest.raises(PluginLoadError, match="malformed handshake line"):
        await start_process(directory)


async def test_netrpc_is_rejected(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin('echo "1|1|unix|/tmp/nothing|netrpc|"\nexec sleep 30\n')
    with pytest.raises(PluginLoadError, match="netrpc is Go-only"):
        await start_process(directory)


async def test_version_the_host_did_not_offer(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin('echo "1|7|unix|/tmp/nothing|grpc|"\nexec sleep 30\n')
    with pytest.raises(PluginLoadError, match="chose protocol version 7, but the host offered only 1"):
        await start_process(directory)


async def test_env_is_the_go_plugin_handshake_env(script_plugin: Any, start_process: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    directory = script_plugin(f"env > {out}\npwd >> {out}\nexit 0\n")
    with pytest.raises(PluginLoadError):
        await start_process(directory, min_port=20000, max_port=20100)
    env = out.read_text()
    assert "JANK_PLUGIN=jank-plugin" in env
    assert "PLUGIN_PROTOCOL_VERSIONS=1" in env
    assert "PLUGIN_MIN_PORT=20000" in env and "PLUGIN_MAX_PORT=20100" in env
    assert "PLUGIN_CLIENT_CERT" not in env
    assert env.strip().endswith(str(directory))  # cwd = plugin dir


async def test_never_prints_a_handshake(script_plugin: Any, start_process: Any) -> None:
    marker = "never-handshakes-4711"
    body = f'echo "[WARN] thinking" >&2\nsh -c "sleep 30; :" {marker} &\nwait\n'  # a child too: the group dies
    directory = script_plugin(body, name=marker, start_timeout_ms=300)
    with pytest.raises(PluginLoadError) as failed:
        await start_process(directory)
    assert "no handshake within 0.3 s" in str(failed.value)
    assert "thinking" in str(failed.value)
    assert no_process_left(marker)


async def test_exit_before_health(script_plugin: Any, start_process: Any) -> None:
    body = 'echo "1|1|unix|/tmp/plughost-no-such-socket|grpc|"\necho "[ERROR] listener died" >&2\nexit 4\n'
    directory = script_plugin(body, start_timeout_ms=30000)
    with pytest.raises(PluginLoadError) as failed:
        await asyncio.wait_for(start_process(directory), 10)  # not the 30 s start timeout
    assert "exited (exit code 4) before passing its health check" in str(failed.value)
    assert "listener died" in str(failed.value)


async def test_no_health_answer_within_start_timeout(script_plugin: Any, start_process: Any) -> None:
    directory = script_plugin(
        'echo "1|1|unix|/tmp/plughost-no-such-socket|grpc|"\nexec sleep 30\n', start_timeout_ms=500
    )
    with pytest.raises(PluginLoadError, match="did not pass its health check: DEADLINE_EXCEEDED"):
        await start_process(directory)


async def test_host_keeps_running_after_bad_plugins(
    script_plugin: Any, start_process: Any, go_plugins: dict[str, Path]
) -> None:
    bad = script_plugin("exit 1\n", name="bad")
    good = go_plugins["jank-echo"]
    results = await asyncio.gather(start_process(bad), start_process(good), return_exceptions=True)
    assert isinstance(results[0], PluginLoadError)
    assert await call_value(results[1], "echo", {"still": "serving"}) == {"still": "serving"}


async def test_worker_refuses_to_run_without_cookie() -> None:
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PLUGHOST_WORKER_PLUGIN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plughost.runtime.worker",
        "--plugin-id",
        "x",
        "--path",
        ".",
        "--data-dir",
        ".",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 1
    assert stdout == b""
    assert b"This binary is a plugin" in stderr


async def test_worker_reports_a_broken_python_plugin(tmp_path: Path, load_python: Any) -> None:
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "broken"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text("import nonexistent_module_xyz\n")
    with pytest.raises(PluginLoadError) as failed:
        await load_python(directory, "worker")
    assert "exited before its handshake (exit code 1)" in str(failed.value)
    assert "nonexistent_module_xyz" in str(failed.value)


# the parsers, on their own ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "malformed handshake"),
        ("x|1|unix|/a|grpc", "core version is not a number"),
        ("2|1|unix|/a|grpc", "core protocol 2"),
        ("1|x|unix|/a|grpc", "app version is not a number"),
        ("1|1|udp|/a|grpc", "network 'udp'"),
        ("1|1|unix||grpc", "empty address"),
        ("1|1|unix|/a", "netrpc"),
        ("1|1|unix|/a|grpc|" + "!" * 60, "not valid base64"),
    ],
)
def test_handshake_errors(line: str, message: str) -> None:
    with pytest.raises(HandshakeError, match=message):
        parse_handshake(line, (1,))


def test_handshake_fields() -> None:
    info = parse_handshake("1|2|tcp|127.0.0.1:1234|grpc|\n", (1, 2))
    assert (info.app_version, info.network, info.target, info.server_cert_der) == (2, "tcp", "127.0.0.1:1234", None)
    assert parse_handshake("1|1|unix|/tmp/p|grpc||true", (1,)).multiplex


def test_log_lines() -> None:
    import logging

    level, message, fields = parse_log_line('{"@level":"warn","@message":"disk low","@timestamp":"t","free":3}')
    assert (level, message, fields) == (logging.WARNING, "disk low", {"free": 3})
    assert parse_log_line("2024/01/01 10:00:00 [ERROR] broke")[:2] == (logging.ERROR, "broke")
    assert parse_log_line("[TRACE] detail")[:2] == (logging.DEBUG, "detail")
    assert parse_log_line("plain words")[:2] == (logging.DEBUG, "plain words")
    assert parse_log_line("{not json")[:2] == (logging.DEBUG, "{not json")


def test_line_splitter_bounds_long_lines() -> None:
    splitter = LineSplitter(max_chars=10)
    assert splitter.feed(b"ab\ncd") == ["ab"]
    assert splitter.feed(b"e\n") == ["cde"]
    assert splitter.feed(b"x" * 25) == ["x" * 10 + " …(cut)"]
    assert splitter.flush() == []
