"""What a worker's plugin can reach of the host beyond its own link: each test attempts the break-in.

Every attempt is also made where it is expected to work (in-process, or with the right secret), so
a boundary that stopped working — or a test that could not tell — fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from process_support import WORKER_OPTIONS, call_value, request_for

from plughost.runtime.placement import PlacedRuntime, WorkerRuntime
from plughost.runtime.python import PythonRuntime

PROBE = """
import os

from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("environment")
def environment() -> dict:
    try:
        with open("/proc/self/environ", "rb") as handle:
            initial = handle.read().decode(errors="replace")
    except OSError:  # a sandbox may not let it read there
        initial = ""
    return {"os.environ": dict(os.environ), "/proc/self/environ": initial}
"""


def _probe(root: Path, name: str, manifest_extra: str = "") -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "plugin.toml").write_text(f'id = "{name}"\nversion = "1.0.0"\n{manifest_extra}')
    (directory / "plugin.py").write_text(PROBE)
    return directory


@pytest.fixture
async def load() -> AsyncIterator[Any]:
    handles: list[Any] = []

    async def start(directory: Path, isolation: str) -> Any:
        runtime = PlacedRuntime("python", in_process=PythonRuntime(), worker=WorkerRuntime(WORKER_OPTIONS))
        handle = await runtime.load(request_for(directory, isolation=isolation))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.stop()


async def test_worker_gets_a_minimal_environment_plus_what_the_manifest_declares(
    tmp_path: Path, load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGHOST_TEST_BOT_TOKEN", "the-host's-secret")
    monkeypatch.setenv("PLUGHOST_TEST_DECLARED", "meant-for-the-plugin")
    monkeypatch.setenv("LC_TIME", "C")
    declared = '[dependencies]\nenv = ["PLUGHOST_TEST_DECLARED", "PLUGHOST_TEST_UNSET"]\n'
    directory = _probe(tmp_path, "envprobe", declared)

    in_process = await call_value(await load(directory, "none"), "environment")
    assert in_process["os.environ"]["PLUGHOST_TEST_BOT_TOKEN"] == "the-host's-secret"  # the attempt works there

    for isolation in ("process", "sandbox"):
        seen = await call_value(await load(directory, isolation), "environment")
        environ = seen["os.environ"]
        assert "PLUGHOST_TEST_BOT_TOKEN" not in environ, isolation
        assert "the-host's-secret" not in seen["/proc/self/environ"], isolation
        assert environ["PLUGHOST_TEST_DECLARED"] == "meant-for-the-plugin"
        assert "PLUGHOST_TEST_UNSET" not in environ
        assert environ["PATH"] and environ["LC_TIME"] == "C"
        unexpected = {
            name
            for name in environ
            if not name.startswith(("PLUGHOST_", "PLUGIN_", "LC_"))
            and name not in {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED"}
            and name not in {"PYTHONHOME", "LD_LIBRARY_PATH", "MALLOC_ARENA_MAX"}
        }
        assert not unexpected, (isolation, unexpected)


def test_declared_environment_names_are_checked(tmp_path: Path) -> None:
    from plughost.errors import ManifestError
    from plughost.sdk.manifest import load_manifest

    manifest = tmp_path / "plugin.toml"
    manifest.write_text('id = "x"\n[dependencies]\nenv = ["GOOD_NAME", "BAD=NAME"]\n')
    with pytest.raises(ManifestError, match="'BAD=NAME' is not an environment variable name"):
        load_manifest(manifest)
