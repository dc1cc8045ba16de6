"""`plughost worker`: a go-plugin server hosting one plugin out of the host's process.

The host starts it (see `plughost.runtime.placement.WorkerRuntime`) with the worker cookie, the
plugin's manifest and configuration in the environment, and a secret on an inherited pipe that
every call over its gRPC socket and its invoke lane must carry. The worker loads the plugin in-process
with the runtime its manifest names (`PythonRuntime` or `NativeRuntime`: `in_process_runtimes()`),
then serves plughost.v1 `Plugin` and Jank's `PluginService` beside
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
import time
from collections.abc import Awaitable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import grpc

from plughost.errors import InvocationError, PlugHostError
from plughost.runtime.base import LoadRequest
from plughost.runtime.collector import young_threshold
from plughost.runtime.cpu import CallCpu, CpuWatchdog, metered
from plughost.runtime.goplugin.launch import SECRET_FD_ENV, read_secret
from plughost.runtime.goplugin.server import GoPluginServer, cookie_ok, install_hclog_handler, negotiated_version
from plughost.runtime.goplugin.values import NotAValueError, json_bytes, json_default, pack_map, unpack_map
from plughost.runtime.host_services import RemoteBus, RemoteState
from plughost.runtime.invoke_lane import InvokeLaneServer
from plughost.runtime.proto.plughost_v1 import plugin_pb2 as v1
from plughost.runtime.proto.plughost_v1 import plugin_pb2_grpc as v1_grpc
from plughost.runtime.proto.plugin import jank_pb2, jank_pb2_grpc
from plughost.runtime.sandbox import Preparation, SandboxUnavailable, confine, fallbacks_forced, prepare
from plughost.sdk import jsonio
from plughost.sdk.bot import BotApi
from plughost.sdk.call import CALL_KINDS, NOTHING, Call, Outcome, PluginError, settled
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest, find_manifest_file, load_manifest

# A worker whose call passes `limits.cpu_seconds` of CPU time exits with this code (the shell's
# code for "killed by SIGXCPU"); the host reports the call as timed out and restarts the worker.
CPU_LIMIT_EXIT_CODE = 152
# The kernel's RLIMIT_CPU stops a worker whose watchdog cannot run (a call in C code that holds the
# GIL) once it has used this many times `limits.cpu_seconds` since the watchdog last ran …
CPU_BACKSTOP_FACTOR = 3
# … and allows this much CPU time for starting (interpreter, imports, the plugin's load hooks).
CPU_START_ALLOWANCE_S = 30
WORKER_COOKIE_KEY = "PLUGHOST_WORKER_PLUGIN"
WORKER_COOKIE_VALUE = "plughost-worker-5c1e0a7b"
MANIFEST_ENV = "PLUGHOST_WORKER_MANIFEST"
CONFIG_ENV = "PLUGHOST_WORKER_CONFIG"
log = logging.getLogger("plughost.worker")


def error_fields(exc: BaseException) -> dict[str, Any]:
    """The error object of a call the worker could not run (the lane's ERROR frame)."""
    return PluginError.from_exception(exc).to_json()


class ServedPlugin:
    """The plugin the worker's services answer for, bound once it has loaded.

    The services and their sockets exist before the plugin is loaded, so that the sandbox can be
    put in place between the two. With `cpu_limit_s` (`limits.cpu_seconds`) each call is metered
    (`plughost.runtime.cpu`); one that passes the limit stops the worker (`CPU_LIMIT_EXIT_CODE`).
    """

    def __init__(self, cpu_limit_s: float | None = None) -> None:
        self._handle: PluginHandle | None = None
        self.watchdog: CpuWatchdog | None = None
        if cpu_limit_s is not None:
            self.watchdog = CpuWatchdog(cpu_limit_s, _cpu_limit_passed, backstop_s=CPU_BACKSTOP_FACTOR * cpu_limit_s)

    @property
    def handle(self) -> PluginHandle:
        if self._handle is None:
            raise InvocationError("the plugin is still loading", code="unavailable", retryable=True)
        return self._handle

    def bind(self, handle: PluginHandle) -> None:
        """Serve `handle` from now on (and start metering its calls)."""
        self._handle = handle
        if self.watchdog is not None:
            self.watchdog.start()

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()

    def call(self, name: str, kind: str, payload: Any, bot: BotApi | None = None) -> Awaitable[Outcome]:
        """Run one call of the served plugin (gRPC's Invoke and the invoke lane share it): await it.

        A plain function returning the handle's coroutine, so that a call has one coroutine less.
        """
        if kind not in CALL_KINDS:
            message = f"unknown call kind {kind!r}; expected one of {', '.join(CALL_KINDS)}"
            return settled(Outcome.failed("invalid_request", message))
        call = self.handle.call(Call(name, payload, kind, bot=bot))
        return call if self.watchdog is None else self._metered(self.watchdog, name, call)

    @staticmethod
    async def _metered(watchdog: CpuWatchdog, name: str, call: Coroutine[Any, Any, Outcome]) -> Outcome:
        meter = CallCpu(name)
        watchdog.track(meter)
        try:
            return await metered(call, meter)
        finally:
            watchdog.untrack(meter)

    async def grpc_call(self, name: str, kind: str, payload_json: bytes) -> Outcome:
        """gRPC's Invoke: the payload arrives as JSON bytes of its own."""
        try:
            payload = json.loads(payload_json) if payload_json else None
        except ValueError as exc:
            return Outcome.failed("protocol_error", f"the call's payload is not JSON: {exc}")
        return await self.call(name, kind, payload)

    async def lane_call(self, name: str, body: bytes, bot: BotApi) -> bytes:
        """The invoke lane's CALL: `{"kind", "payload"}` in, the outcome's JSON out (decoded once)."""
        try:
            request = jsonio.loads(body) if body else {}
        except ValueError as exc:
            return json_bytes(Outcome.failed("protocol_error", f"the call is not JSON: {exc}").to_json())
        if not isinstance(request, Mapping):
            return json_bytes(Outcome.failed("protocol_error", "the call must be a JSON object").to_json())
        outcome = await self.call(name, str(request.get("kind") or "method"), request.get("payload"), bot)
        return b"{}" if outcome is NOTHING else json_bytes(outcome.to_json())


class PlughostService(v1_grpc.PluginServicer):  # type: ignore[misc]
    """plughost.v1.Plugin over the served plugin."""

    def __init__(self, served: ServedPlugin, invoke_lane: str = "") -> None:
        self.served = served
        self.invoke_lane = invoke_lane

    async def Describe(self, request: Any, context: Any) -> Any:
        descriptor = json_bytes(self.served.handle.descriptor.to_json())
        return v1.DescribeResponse(descriptor_json=descriptor, invoke_lane=self.invoke_lane)

    async def Invoke(self, request: Any, context: Any) -> Any:
        outcome = await self.served.grpc_call(request.name, request.kind or "method", request.request_json)
        sends = json_bytes([s.to_json() for s in outcome.sends]) if outcome.sends else b""
        error = outcome.error
        if error is not None:
            wire_error = v1.Error(code=error.code, message=error.message, type=error.type, retryable=error.retryable)
            return v1.InvokeResponse(error=wire_error, sends_json=sends)
        return v1.InvokeResponse(result_json=json_bytes(outcome.value), sends_json=sends)

    async def Health(self, request: Any, context: Any) -> Any:
        health = await self.served.handle.health()
        info = json_bytes(dict(health.info))
        return v1.HealthResponse(status=health.status, detail=health.detail, info_json=info)

    async def Reconfigure(self, request: Any, context: Any) -> Any:
        config = json.loads(request.config_json) if request.config_json else {}
        try:
            await self.served.handle.reconfigure(config)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"reconfigure failed: {type(exc).__name__}: {exc}")
        return v1.ReconfigureResponse()

    async def SetEnabled(self, request: Any, context: Any) -> Any:
        try:
            await self.served.handle.set_enabled(request.enabled)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"enable hook failed: {type(exc).__name__}: {exc}")
        return v1.SetEnabledResponse()


class JankService(jank_pb2_grpc.PluginServiceServicer):  # type: ignore[misc]
    """Jank's PluginService over the served plugin: Execute(method, args) with Any(Value) maps."""

    def __init__(self, served: ServedPlugin) -> None:
        self.served = served

    async def Execute(self, request: Any, context: Any) -> Any:
        try:
            args = unpack_map(request.args, where="argument")
        except NotAValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            result = (await self.served.call(request.method, "method", args)).unwrap()
            data = result if isinstance(result, Mapping) else {"result": result}
            try:
                packed = pack_map(data)
            except TypeError:  # models, sets …: through their JSON form
                packed = pack_map(json.loads(json.dumps(data, default=json_default)))
            return jank_pb2.ExecuteResponse(data=packed)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")

    async def HealthCheck(self, request: Any, context: Any) -> Any:
        health = await self.served.handle.health()
        return jank_pb2.HealthCheckResponse(status="healthy" if health.ok else "unhealthy")


def _cpu_limit_passed(meter: CallCpu, used: float) -> None:
    """The watchdog's verdict (on its own thread): say which call it was, then stop the worker.

    The call's code may be running on any thread and cannot be stopped; the process can.
    """
    message = f"the call to '{meter.name}' used {used:.2f} s of CPU time, more than limits.cpu_seconds; stopping"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    line = json.dumps({"@level": "error", "@message": message, "@module": log.name, "@timestamp": stamp})
    with contextlib.suppress(OSError):
        os.write(2, line.encode() + b"\n")  # no logging locks: another thread may hold them
    os._exit(CPU_LIMIT_EXIT_CODE)


def _manifest(path: Path, plugin_id: str) -> PluginManifest:
    raw = os.environ.get(MANIFEST_ENV)
    if raw:
        return PluginManifest.model_validate_json(raw)
    directory = path if path.is_dir() else path.parent
    found = find_manifest_file(directory)
    if found is None:
        return PluginManifest(id=plugin_id)
    return load_manifest(found, default_id=directory.name)


async def serve(
    plugin_id: str, path: Path, data_dir: Path, secret: str, manifest: PluginManifest, prepared: Preparation
) -> int:
    """Load the plugin, print the handshake, serve until Shutdown; the exit code.

    Only callers that know `secret` (the host) are served, over gRPC and over the invoke lane.
    `prepared` is what the sandbox did before the worker started any thread.
    """
    from plughost.runtime.placement import in_process_runtimes

    version = negotiated_version()
    # inside the worker the plugin runs in-process, with the loader its manifest names
    manifest = manifest.model_copy(update={"isolation": "none"})
    config = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    runtimes = in_process_runtimes()
    runtime = runtimes.get(manifest.runtime)
    if runtime is None:
        log.error("plugin '%s': runtime '%s' cannot run in a worker in this installation", plugin_id, manifest.runtime)
        return 1
    served = ServedPlugin(manifest.limits.cpu_seconds)
    server = GoPluginServer(secret)
    lane = InvokeLaneServer(served.lane_call, error_fields, secret=secret)
    request = LoadRequest(
        plugin_id=plugin_id,
        path=path,
        manifest=manifest,
        data_dir=data_dir,
        config=config,
        logger=logging.getLogger(f"plugin.{plugin_id}"),
        bus=RemoteBus(lane.host_operation),  # the host's bus and state, over the invoke lane
        state=RemoteState(lane.host_operation),
    )
    plughost = PlughostService(served)
    v1_grpc.add_PluginServicer_to_server(plughost, server.server)
    jank_pb2_grpc.add_PluginServiceServicer_to_server(JankService(served), server.server)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.shutdown.set)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # like go-plugin: the host decides when we stop
    real_stdout = sys.stdout
    handle: PluginHandle | None = None
    try:
        line = await server.start(version)
        await lane.start(server.socket_dir / f"lane{secrets.token_hex(6)}")
        plughost.invoke_lane = str(lane.path)
        data_dir.mkdir(parents=True, exist_ok=True)
        _confine(request, prepared)  # before any code of the plugin runs
        handle = await runtime.load(request)
        served.bind(handle)
        real_stdout.write(line + "\n")
        real_stdout.flush()
        sys.stdout = server.stdio
        await server.shutdown.wait()
    except (PlugHostError, SandboxUnavailable) as exc:
        log.error("%s", exc)
        return 1
    finally:
        served.close()
        logging.getLogger("grpc._cython.cygrpc").setLevel(logging.CRITICAL)  # cancelled streams at stop
        await lane.close()
        if handle is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.stop(), 10)
        await server.stop()
        for each in runtimes.values():
            await each.aclose()
        sys.stdout = real_stdout
    return 0


def _confine(request: LoadRequest, prepared: Preparation) -> None:
    """Put the sandbox of the plugin's permissions in place (see `plughost.runtime.sandbox`)."""
    confined = confine(
        request.manifest.permissions,
        plugin_dir=request.plugin_dir,
        data_dir=request.data_dir,
        prepared=prepared,
        fallbacks=fallbacks_forced(),
    )
    for applied in confined:
        log.info("sandbox: %s", applied)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plughost worker", description="Serve one Python plugin over go-plugin.")
    parser.add_argument("--plugin-id", required=True)
    parser.add_argument("--path", required=True, type=Path, help="plugin directory or file")
    parser.add_argument("--data-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    if not cookie_ok(WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE):
        return 1
    install_hclog_handler()
    secret = read_secret()
    if secret is None:
        log.error("the worker was started without its secret (%s): only plughost starts workers", SECRET_FD_ENV)
        return 1
    try:
        manifest = _manifest(args.path, args.plugin_id)
    except (PlugHostError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    prepared = prepare(manifest.permissions, fallbacks=fallbacks_forced())  # while this is the only thread
    with young_threshold():
        return asyncio.run(serve(args.plugin_id, args.path, args.data_dir, secret, manifest, prepared))


if __name__ == "__main__":
    sys.exit(main())
