"""What a worker's plugin can reach of the host beyond its own link: each test attempts the break-in.

Every attempt is also made where it is expected to work (in-process, or with the right secret), so
a boundary that stopped working — or a test that could not tell — fails.
"""

from __future__ import annotations

import json
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


VICTIM = """
from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("mark")
def mark(ctx) -> str:
    with open(ctx.data_dir / "marks", "a") as handle:
        handle.write("called\\n")
    return "marked"
"""

LANE_CLIENT = r"""
import json, socket, struct, sys

path, secret = sys.argv[1], sys.argv[2]
header = struct.Struct("!IIB")  # the lane's frame: body length, call id, kind; then the body


def frame(kind, call_id, body):
    return header.pack(len(body), call_id, kind) + body


name = b"mark"
call = frame(1, 1, struct.pack("!H", len(name)) + name + json.dumps({"kind": "method", "payload": {}}).encode())
opening = frame(7, 0, secret.encode()) if secret else b""
connection = socket.socket(socket.AF_UNIX)
connection.settimeout(10)
connection.connect(path)
connection.sendall(opening + call)
data = b""
while len(data) < header.size or len(data) < header.size + header.unpack_from(data)[0]:
    chunk = connection.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"answer": data[header.size :].decode(errors="replace") if data else None}))
"""

GRPC_CLIENT = r"""
import json, sys

import grpc

from plughost.runtime.proto.plughost_v1 import plugin_pb2, plugin_pb2_grpc
from plughost.runtime.proto.plugin import grpc_controller_pb2, grpc_controller_pb2_grpc

address, secret = sys.argv[1], sys.argv[2]
metadata = (("plughost-secret", secret),) if secret else None
results = {}
with grpc.insecure_channel(f"unix:{address}") as channel:
    invoke = plugin_pb2_grpc.PluginStub(channel).Invoke
    try:
        answer = invoke(plugin_pb2.InvokeRequest(name="mark", request_json=b"{}"), timeout=10, metadata=metadata)
        results["invoke"] = answer.result_json.decode()
    except grpc.RpcError as exc:
        results["invoke"] = exc.code().name
    if not secret:
        try:
            grpc_controller_pb2_grpc.GRPCControllerStub(channel).Shutdown(grpc_controller_pb2.Empty(), timeout=10)
            results["shutdown"] = "OK"
        except grpc.RpcError as exc:
            results["shutdown"] = exc.code().name
print(json.dumps(results))
"""


def _run_client(script: str, *args: str) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


async def test_another_process_cannot_call_a_worker_without_its_secret(tmp_path: Path, load: Any) -> None:
    directory = tmp_path / "victim"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "victim"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(VICTIM)
    victim = await load(directory, "process")
    marks = victim.request.data_dir / "marks"
    instance = victim._instance
    lane, secret, address = instance.lane_path, instance.spec.secret, victim.info()["address"]
    assert lane and secret and victim.info()["invoke_lane"]

    # a process of the same user that found the sockets (in /proc/net/unix, say) but lacks the secret
    assert _run_client(LANE_CLIENT, lane, "") == {"answer": None}  # the lane hung up
    assert _run_client(LANE_CLIENT, lane, "0" * len(secret)) == {"answer": None}
    assert _run_client(GRPC_CLIENT, address, "") == {"invoke": "UNAUTHENTICATED", "shutdown": "UNAUTHENTICATED"}
    assert not marks.exists()  # no handler ran
    assert await call_value(victim, "mark") == "marked"  # the worker is alive and serves its host

    # the same clients with the secret get through: the refusals above are the secret's doing
    answered = _run_client(LANE_CLIENT, lane, secret)["answer"]
    assert answered is not None and json.loads(answered) == {"value": "marked"}
    assert _run_client(GRPC_CLIENT, address, secret) == {"invoke": '"marked"'}
    assert marks.read_text().count("called") == 3
