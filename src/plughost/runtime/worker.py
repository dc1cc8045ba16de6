"""`plughost worker`: a go-plugin server hosting one plugin out of the host's process.

The host starts it (see `plughost.runtime.placement.WorkerRuntime`) with the worker cookie, the
plugin's manifest and configuration in the environment. The worker loads the plugin in-process
with the runtime its manifest names (`PythonRuntime`; native libraries once that runtime is
installed), then serves plughost.v1 `Plugin` and Jank's `PluginService` beside
go-plugin's health, controller, stdio and broker services. Logs go to stderr as hclog JSON.

    python -m plughost.runtime.worker --plugin-id ID --path DIR --data-dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

from plughost.errors import InvocationError, PlugHostError, UnknownHandlerError
from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.server import GoPluginServer, cookie_ok, install_hclog_handler, negotiated_version
from plughost.runtime.goplugin.values import NotAValueError, json_default, pack_map, unpack_map
from plughost.runtime.lane import LaneServer
from plughost.runtime.proto.plughost_v1 import plugin_pb2 as v1
from plughost.runtime.proto.plughost_v1 import plugin_pb2_grpc as v1_grpc
from plughost.runtime.proto.plugin import jank_pb2, jank_pb2_grpc
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest, find_manifest_file, load_manifest

WORKER_COOKIE_KEY = "PLUGHOST_WORKER_PLUGIN"
WORKER_COOKIE_VALUE = "plughost-worker-5c1e0a7b"
MANIFEST_ENV = "PLUGHOST_WORKER_MANIFEST"
CONFIG_ENV = "PLUGHOST_WORKER_CONFIG"
log = logging.getLogger("plughost.worker")


def error_fields(exc: BaseException) -> dict[str, Any]:
    """plughost.v1's `Error` of a failed call, as a dict (code, message, type, retryable)."""
    if isinstance(exc, UnknownHandlerError):
        code = "unknown_method"
    elif isinstance(exc, InvocationError):
        code = exc.code
    else:
        code = "plugin_error"
    retryable = bool(getattr(exc, "retryable", False))
    return {"code": code, "message": str(exc) or type(exc).__name__, "type": type(exc).__name__, "retryable": retryable}


def json_invoker(handle: PluginHandle) -> Callable[[str, bytes], Awaitable[bytes]]:
    """`invoke(name, request_json) -> result_json` over `handle` (gRPC's Invoke and the lane share it)."""

    async def invoke(name: str, request_json: bytes) -> bytes:
        try:
            payload = json.loads(request_json) if request_json else None
            result = await handle.invoke(name, payload)
            return json.dumps(result, default=json_default).encode()
        except Exception:
            log.debug("handler %s failed", name, exc_info=True)
            raise

    return invoke


class PlughostService(v1_grpc.PluginServicer):  # type: ignore[misc]
    """plughost.v1.Plugin over a loaded handle."""

    def __init__(self, handle: PluginHandle, invoke_lane: str = "") -> None:
        self.handle = handle
        self.invoke_lane = invoke_lane
        self._invoke = json_invoker(handle)

    async def Describe(self, request: Any, context: Any) -> Any:
        descriptor = json.dumps(self.handle.descriptor.to_json()).encode()
        return v1.DescribeResponse(descriptor_json=descriptor, invoke_lane=self.invoke_lane)

    async def Invoke(self, request: Any, context: Any) -> Any:
        try:
            return v1.InvokeResponse(result_json=await self._invoke(request.name, request.request_json))
        except Exception as exc:
            return v1.InvokeResponse(error=v1.Error(**error_fields(exc)))

    async def Health(self, request: Any, context: Any) -> Any:
        health = await self.handle.health()
        info = json.dumps(dict(health.info), default=json_default).encode()
        return v1.HealthResponse(status=health.status, detail=health.detail, info_json=info)

    async def Reconfigure(self, request: Any, context: Any) -> Any:
        config = json.loads(request.config_json) if request.config_json else {}
        try:
            await self.handle.reconfigure(config)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"reconfigure failed: {type(exc).__name__}: {exc}")
        return v1.ReconfigureResponse()

    async def SetEnabled(self, request: Any, context: Any) -> Any:
        try:
            await self.handle.set_enabled(request.enabled)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"enable hook failed: {type(exc).__name__}: {exc}")
        return v1.SetEnabledResponse()


class JankService(jank_pb2_grpc.PluginServiceServicer):  # type: ignore[misc]
    """Jank's PluginService over a loaded handle: Execute(method, args) with Any(Value) maps."""

    def __init__(self, handle: PluginHandle) -> None:
        self.handle = handle

    async def Execute(self, request: Any, context: Any) -> Any:
        try:
            args = unpack_map(request.args, where="argument")
        except NotAValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            result = await self.handle.invoke(request.method, args)
            data = result if isinstance(result, Mapping) else {"result": result}
            try:
                packed = pack_map(data)
            except TypeError:  # models, sets …: through their JSON form
                packed = pack_map(json.loads(json.dumps(data, default=json_default)))
            return jank_pb2.ExecuteResponse(data=packed)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")

    async def HealthCheck(self, request: Any, context: Any) -> Any:
        health = await self.handle.health()
        return jank_pb2.HealthCheckResponse(status="healthy" if health.ok else "unhealthy")


def _manifest(path: Path, plugin_id: str) -> PluginManifest:
    raw = os.environ.get(MANIFEST_ENV)
    if raw:
        return PluginManifest.model_validate_json(raw)
    directory = path if path.is_dir() else path.parent
    found = find_manifest_file(directory)
    if found is None:
        return PluginManifest(id=plugin_id)
    return load_manifest(found, default_id=directory.name)


async def serve(plugin_id: str, path: Path, data_dir: Path) -> int:
    """Load the plugin, print the handshake, serve until Shutdown; the exit code."""
    from plughost.runtime import default_runtimes

    version = negotiated_version()
    # inside the worker the plugin runs in-process, with the loader its manifest names
    manifest = _manifest(path, plugin_id).model_copy(update={"isolation": "none"})
    config = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    request = LoadRequest(
        plugin_id=plugin_id,
        path=path,
        manifest=manifest,
        data_dir=data_dir,
        config=config,
        logger=logging.getLogger(f"plugin.{plugin_id}"),
    )
    runtimes = default_runtimes()
    runtime = runtimes.get(manifest.runtime) if manifest.runtime != "process" else None
    if runtime is None:
        log.error("plugin '%s': runtime '%s' cannot run in a worker in this installation", plugin_id, manifest.runtime)
        return 1
    try:
        handle = await runtime.load(request)
    except PlugHostError as exc:
        log.error("%s", exc)
        return 1
    server = GoPluginServer()
    lane = LaneServer(json_invoker(handle), error_fields)
    await lane.start(server.socket_dir / f"lane{secrets.token_hex(6)}")
    v1_grpc.add_PluginServicer_to_server(PlughostService(handle, str(lane.path)), server.server)
    jank_pb2_grpc.add_PluginServiceServicer_to_server(JankService(handle), server.server)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.shutdown.set)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # like go-plugin: the host decides when we stop
    line = await server.start(version)
    real_stdout = sys.stdout
    real_stdout.write(line + "\n")
    real_stdout.flush()
    sys.stdout = server.stdio
    try:
        await server.shutdown.wait()
    finally:
        logging.getLogger("grpc._cython.cygrpc").setLevel(logging.CRITICAL)  # cancelled streams at stop
        await lane.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.stop(), 10)
        await server.stop()
        for each in runtimes.values():
            await each.aclose()
        sys.stdout = real_stdout
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plughost worker", description="Serve one Python plugin over go-plugin.")
    parser.add_argument("--plugin-id", required=True)
    parser.add_argument("--path", required=True, type=Path, help="plugin directory or file")
    parser.add_argument("--data-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if not cookie_ok(WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE):
        return 1
    install_hclog_handler()
    return asyncio.run(serve(args.plugin_id, args.path, args.data_dir))


if __name__ == "__main__":
    sys.exit(main())
