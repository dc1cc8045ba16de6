"""Builds the native test plugins and examples once per session, with the real compilers."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plughost.runtime.base import LoadRequest
from plughost.runtime.native import NativePluginHandle, NativeRuntime, NativeSettings
from plughost.sdk.manifest import PluginManifest
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "c"
PROBE = Path(__file__).parent / "plugins" / "probe.c"
CLIPROXY_MANAGEMENT_API = Path(__file__).parent / "plugins" / "cliproxy_management_api.c"  # CLIProxyAPI's own example
PROBE_VARIANTS = {
    "probe": [],
    "no_init": ["-DPROBE_NO_INIT"],
    "init_rc": ["-DPROBE_INIT_RC"],
    "abi2": ["-DPROBE_ABI2"],
    "null_call": ["-DPROBE_NULL_CALL"],
    "null_free": ["-DPROBE_NULL_FREE"],
    "bad_meta": ["-DPROBE_BAD_META"],
    "no_caps": ["-DPROBE_NO_CAPS"],
    "schema4": ["-DPROBE_SCHEMA4"],
    "register_fails": ["-DPROBE_REGISTER_FAILS"],
}


@dataclass(frozen=True)
class Builds:
    directory: Path
    libs: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.libs[name]


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"build failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def c_builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """Every probe variant, CLIProxyAPI's management-api example and the C example, compiled with
    gcc (in parallel)."""
    gcc = require_tool("gcc", "the native plugin tests compile real C libraries")
    out = tmp_path_factory.mktemp("native-c")
    make = require_tool("make", "the C example is built with its Makefile")
    commands: dict[str, list[str]] = {}
    for name, flags in PROBE_VARIANTS.items():
        target = out / f"{name}.so"
        commands[name] = [gcc, "-std=gnu11", "-O2", "-Wall", "-shared", "-fPIC", f"-I{SDK}", *flags]
        commands[name] += ["-o", str(target), str(PROBE), "-lpthread"]
    cliproxy = out / "cliproxy_management_api.so"
    commands["cliproxy_management_api"] = [gcc, "-std=gnu11", "-O2", "-Wall", "-Wno-unused-function", "-shared"]
    commands["cliproxy_management_api"] += ["-fPIC", "-o", str(cliproxy), str(CLIPROXY_MANAGEMENT_API)]
    example = ROOT / "examples" / "native" / "c"
    commands["example_c"] = [make, "-s", "-C", str(example), f"OUT={out / 'example_c.so'}", f"SDK={SDK}"]
    procs = [
        (cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for cmd in commands.values()
    ]
    libs = {name: out / f"{name}.so" for name in commands}
    for cmd, proc in procs:
        output, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"build failed: {' '.join(cmd)}\n{output}")
    return Builds(out, libs)


@pytest.fixture(scope="session")
def rust_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Rust example (cdylib, no external crates), built with cargo offline."""
    cargo = require_tool("cargo", "the Rust example plugin is built with cargo")
    target_dir = tmp_path_factory.mktemp("native-rust")
    example = target_dir / "src-copy"  # cargo writes Cargo.lock beside Cargo.toml: keep the tree clean
    shutil.copytree(
        ROOT / "examples" / "native" / "rust", example, ignore=shutil.ignore_patterns("target", "Cargo.lock")
    )
    env = {**os.environ, "CARGO_TARGET_DIR": str(target_dir), "CARGO_NET_OFFLINE": "true"}
    _run([cargo, "build", "--release", "--offline", "--quiet"], cwd=example, env=env)
    lib = target_dir / "release" / "libplughost_example_rust.so"
    assert lib.is_file(), f"cargo did not produce {lib}"
    return lib


@pytest.fixture(scope="session")
def go_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Go `c-shared` plugin (cgo, standard library only), built in GOPATH mode."""
    go = require_tool("go", "a Go c-shared test plugin proves Go builds load unchanged")
    require_tool("gcc", "cgo needs a C compiler")
    work = tmp_path_factory.mktemp("native-go")
    package = work / "src" / "goprobe"
    shutil.copytree(Path(__file__).parent / "plugins" / "goprobe", package)
    target = work / "goprobe.so"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(work),
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "1",
        "CGO_CFLAGS": f"-I{SDK}",
    }
    _run([go, "build", "-buildmode=c-shared", "-o", str(target), "."], cwd=package, env=env)
    return target


Loader = Callable[..., Coroutine[Any, Any, NativePluginHandle]]


@pytest.fixture
async def native_runtime() -> AsyncIterator[NativeRuntime]:
    runtime = NativeRuntime(NativeSettings(stop_grace_s=5.0))
    yield runtime
    await runtime.aclose()


@pytest.fixture
async def load_native(native_runtime: NativeRuntime, tmp_path: Path) -> AsyncIterator[Loader]:
    """Load a library through the real loader; every handle is stopped at the end of the test."""
    handles: list[NativePluginHandle] = []

    async def load(
        path: Path,
        plugin_id: str = "probe",
        *,
        config: dict[str, Any] | None = None,
        network: bool = True,
        priority: int = 0,
        enabled: bool = True,
    ) -> NativePluginHandle:
        manifest = PluginManifest(
            id=plugin_id, runtime="native", entry=path.name, priority=priority, permissions={"network": network}
        )
        request = LoadRequest(
            plugin_id,
            path,
            manifest,
            tmp_path / "data" / plugin_id,
            config=config or {},
            logger=logging.getLogger(f"plughost.plugin.{plugin_id}"),
            priority=priority,
            enabled=enabled,
        )
        handle = await native_runtime.load(request)
        handles.append(handle)
        return handle

    yield load
    for handle in handles:
        await handle.stop()


@pytest.fixture
def placed_workspace(tmp_path: Path, c_builds: Builds) -> Path:
    """CLIProxyAPI's management-api example and the C example, each in-process and in a worker."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for build in ("cliproxy_management_api", "example_c"):
        for where, isolation in (("local", "none"), ("worker", "process")):
            plugin_id = f"{build.replace('_', '-')}-{where}"
            shutil.copyfile(c_builds[build], plugins / f"{plugin_id}.so")
            manifest = f'id = "{plugin_id}"\nruntime = "native"\nisolation = "{isolation}"\n'
            (plugins / f"{plugin_id}.plugin.toml").write_text(manifest)
    return tmp_path
