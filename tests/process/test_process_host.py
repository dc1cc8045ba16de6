"""Process plugins under the manager and the CLI: Jank's plugin.json, source_only builds, workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from process_support import EXAMPLES, GO_SDK, ROOT

from plughost import PluginManager
from plughost.core.config import HostConfig
from plughost.runtime import default_runtimes
from plughost.sdk.models import PluginState


def copy_example(src: Path, plugins: Path, *, with_bin: bool = True) -> Path:
    target = plugins / src.name
    shutil.copytree(src, target, ignore=None if with_bin else shutil.ignore_patterns("bin"))
    return target


async def test_manager_loads_jank_plugin_json_with_id_independent_of_dir(
    workspace: Path, go_plugins: dict[str, Path]
) -> None:
    target = workspace / "plugins" / "some-dir-name"
    shutil.copytree(go_plugins["jank-echo"], target)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("com.example.jank-echo")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        result = await manager.execute("com.example.jank-echo", "add", {"a": 1, "b": 2})
        assert result.success and result.result == {"sum": 3.0}
        info = (await instance.handle.health()).info
        assert info["status"] == "running" and info["protocol_version"] == 1
        pid = info["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_source_only_plugin_is_built_on_demand(
    workspace: Path, go_plugins: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGHOST_GO_SDK", str(GO_SDK))  # the copy's build script finds plughost/hostapi there
    target = workspace / "plugins" / "kv"
    shutil.copytree(go_plugins["kv"], target, ignore=shutil.ignore_patterns("bin"))
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        report = manager.discover()
        assert report.candidates["kv"].status.value == "source_only"
        await manager.discover_and_load_all()
        instance = manager.get_plugin("kv")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert (target / "bin" / "kv").is_file()
        result = await manager.execute("kv", "put", {"key": "a", "value": "b"})
        assert result.success, result.error


async def test_failing_build_reports_its_output(workspace: Path) -> None:
    target = workspace / "plugins" / "broken-build"
    (target / "scripts").mkdir(parents=True)
    (target / "plugin.json").write_text('{"id": "broken-build", "binary": "bin/broken"}')
    (target / "scripts" / "build.sh").write_text('echo "compiling…"\necho "main.go:3: undefined: Foo" >&2\nexit 2\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("broken-build")
        assert instance is not None and instance.state is PluginState.ERROR
        assert "exit code 2" in (instance.error or "")
        assert "undefined: Foo" in (instance.error or "")


async def test_manager_runs_isolated_python_plugin_in_a_worker(workspace: Path, behave_dir: Path) -> None:
    target = workspace / "plugins" / "behave"
    shutil.copytree(behave_dir, target)
    (target / "plugin.toml").write_text('id = "behave"\nversion = "1.2.3"\nisolation = "process"\n')
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute("behave", "state", {})
        assert result.success, result.error
        assert result.result["pid"] != os.getpid()
        assert result.result["enabled"] is True


async def test_standalone_python_grpc_plugin(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # python3 there has no grpcio: PLUGHOST_PYTHON must be used
    import ast

    tree = ast.parse((EXAMPLES / "python-grpc" / "plugin.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.startswith("plughost") for name in imported)  # go-plugin style, no plughost
    copy_example(EXAMPLES / "python-grpc", workspace / "plugins")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        plugin_id = "com.example.python-kv"
        instance = manager.get_plugin(plugin_id)
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert (await manager.execute(plugin_id, "put", {"key": "k", "value": "v"})).result == {"stored": "k"}
        assert (await manager.execute(plugin_id, "get", {"key": "k"})).result == {"value": "v"}
        info = (await instance.handle.health()).info
        assert info["network"] == "tcp" and info["address"].startswith("127.0.0.1:")
        failed = await manager.execute(plugin_id, "nope", {})
        assert not failed.success and "unknown method" in (failed.error or "")


def test_cli_executes_a_jank_method(workspace: Path, go_plugins: dict[str, Path]) -> None:
    shutil.copytree(go_plugins["jank-echo"], workspace / "plugins" / "jank-echo")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from plughost.cli.app import main; main()",
            "plugins",
            "execute",
            "com.example.jank-echo",
            "echo",
            "--args",
            '{"greeting": "hi", "n": 3}',
            "--json",
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    payload: Any = json.loads(result.stdout)
    assert payload["success"] is True
    assert payload["result"] == {"greeting": "hi", "n": 3.0}


async def test_crash_is_reported_as_event_and_counted_by_the_breaker(
    workspace: Path, go_plugins: dict[str, Path]
) -> None:
    import asyncio
    import signal

    shutil.copytree(go_plugins["jank-echo"], workspace / "plugins" / "jank-echo")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        plugin_id = "com.example.jank-echo"
        instance = manager.get_plugin(plugin_id)
        assert instance is not None and instance.handle is not None
        seen: list[Any] = []
        recovered = asyncio.Event()

        async def on_event(event: Any) -> None:
            seen.append(event)
            if (event.metadata or {}).get("process_event") == "restarted":
                recovered.set()

        manager.add_event_handler(on_event)
        os.kill(instance.handle.info()["pid"], signal.SIGKILL)
        await asyncio.wait_for(recovered.wait(), 15)
        crash = next(e for e in seen if (e.metadata or {}).get("process_event") == "crashed")
        assert crash.metadata["exit_code"] == -signal.SIGKILL
        assert manager.guard.breaker(plugin_id).consecutive_failures == 1
        result = await manager.execute(plugin_id, "echo", {"after": "restart"})
        assert result.success and result.result == {"after": "restart"}
        assert manager.guard.breaker(plugin_id).consecutive_failures == 0


async def test_build_timeout_kills_the_build(tmp_path: Path) -> None:
    import asyncio

    from process_support import FAST

    from plughost.errors import PluginLoadError
    from plughost.runtime.base import Candidate
    from plughost.runtime.process import ProcessRuntime
    from plughost.sdk.manifest import load_manifest
    from plughost.sdk.models import DiscoveryStatus

    target = tmp_path / "slow-build"
    (target / "scripts").mkdir(parents=True)
    (target / "plugin.json").write_text('{"id": "slow-build", "binary": "bin/slow"}')
    (target / "scripts" / "build.sh").write_text('echo "starting"\nexec sleep 30\n')
    from dataclasses import replace

    runtime = ProcessRuntime(replace(FAST, build_timeout_s=0.3))
    manifest = load_manifest(target / "plugin.json")
    candidate = Candidate("slow-build", target, manifest, DiscoveryStatus.SOURCE_ONLY, str(tmp_path))
    with pytest.raises(PluginLoadError, match=r"did not finish within 0.3 s and was killed"):
        await asyncio.wait_for(runtime.build(candidate), 10)


EXECUTE_PLUGIN = """
from plughost.sdk import Plugin

plugin = Plugin()


@plugin.execute
def run(context):
    return {"echo": context.input_data, "user": context.user_id}
"""


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_lurkbot_execute_is_the_same_in_both_placements(workspace: Path, isolation: str) -> None:
    target = workspace / "plugins" / "ctx"
    target.mkdir()
    (target / "plugin.toml").write_text(f'id = "ctx"\nversion = "1.0.0"\nisolation = "{isolation}"\n')
    (target / "plugin.py").write_text(EXECUTE_PLUGIN)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute_plugin("ctx", {"user_id": "u1", "input_data": {"q": 1}})
        assert result.success, result.error
        assert result.result == {"echo": {"q": 1}, "user": "u1"}


async def test_process_section_of_host_config(workspace: Path, behave_dir: Path) -> None:
    import asyncio

    target = workspace / "plugins" / "behave"
    shutil.copytree(behave_dir, target)
    (target / "plugin.toml").write_text('id = "behave"\nversion = "1.2.3"\nisolation = "process"\n')
    (workspace / "plughost.toml").write_text('[process]\ncall_timeout_s = 0.5\nsocket_dir = "run"\n')
    runtimes = default_runtimes(HostConfig.load(workspace).process, workspace=workspace)
    async with PluginManager(workspace, runtimes=runtimes) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("behave")
        assert instance is not None and instance.handle is not None, instance and instance.error
        assert Path(instance.handle.info()["address"]).parent.parent == workspace / "run"  # run/<host pid>/
        restarted = asyncio.Event()
        instance.handle.add_listener(lambda event: restarted.set() if event.kind == "restarted" else None)
        result = await manager.execute("behave", "block", {"seconds": 30})
        assert not result.success
        assert result.metadata["timed_out"] is True  # the RPC deadline, reported as a timeout
        await asyncio.wait_for(restarted.wait(), 20)  # the worker was killed; a call would wait only 0.5 s
        retried = await manager.execute("behave", "echo", {"text": "after"})
        assert retried.success and retried.result == {"text": "after"}, retried.error
