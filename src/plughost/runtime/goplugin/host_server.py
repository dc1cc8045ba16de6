"""The host's message bus and shared state for a go-plugin process plugin, over go-plugin's broker.

Each process the host starts for an executable plugin gets its own `plughost.host.v1.HostServices`
gRPC server on a private unix socket (in the host's 0700 socket directory), so the listener
identifies the plugin: every operation runs on that plugin's `ctx.bus` and `ctx.state` views
(`plughost.runtime.host_services.HostServices`), and its permission checks stay in the host.
The host announces the socket on go-plugin's broker stream as `ConnInfo{HOST_SERVICE_ID, "unix",
path}`; the plugin learns the id from `PLUGHOST_HOST_SERVICE_ID` and dials it (`broker.Dial(id)`;
the Go client is `plughost/hostapi` under `plughost.sdk.golang.GO_CLIENT`). The server starts and
stops with the process: a restarted plugin gets a new socket, the old one is removed.

One unary call, `Call(operation, params_json)`, runs one operation of `HOST_OPERATIONS`; its
answer is `result_json`, or `error{kind, code, message}` as `error_fields` makes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import grpc

from plughost.runtime.goplugin.values import json_bytes
from plughost.runtime.host_services import HostServiceError, HostServices, error_fields
from plughost.runtime.proto.plughost_host_v1 import host_services_pb2 as host_pb
from plughost.runtime.proto.plughost_host_v1 import host_services_pb2_grpc as host_grpc
from plughost.runtime.proto.plugin import grpc_broker_pb2
from plughost.runtime.rundir import host_socket_dir

SERVICE_ID_ENV = "PLUGHOST_HOST_SERVICE_ID"
# far above the ids go-plugin's `NextId` hands out, so it never meets a plugin's own brokered services
HOST_SERVICE_ID = 1 << 30
STOP_GRACE_S = 1.0
log = logging.getLogger(__name__)


class _Servicer(host_grpc.HostServicesServicer):  # type: ignore[misc]
    def __init__(self, plugin_id: str, services: HostServices) -> None:
        self.plugin_id = plugin_id
        self.services = services

    async def Call(self, request: Any, context: Any) -> Any:
        operation = request.operation
        try:
            result = await self.services.run(operation, _params(operation, request.params_json))
            return host_pb.CallResponse(result_json=json_bytes(result))
        except Exception as exc:  # every failure is an answer to the plugin, never a crash of the host
            log.debug("plugin '%s': host operation %r failed: %s", self.plugin_id, operation, exc)
            return host_pb.CallResponse(error=host_pb.Error(**error_fields(exc)))


def _params(operation: str, raw: bytes) -> dict[str, Any]:
    """The JSON object of an operation's params (empty bytes: `{}`)."""
    if not raw:
        return {}
    try:
        params = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HostServiceError(f"{operation}: params_json is not JSON ({exc})", code="invalid_request") from None
    if not isinstance(params, dict):
        raise HostServiceError(
            f"{operation}: params_json must be a JSON object, not {type(params).__name__}", code="invalid_request"
        )
    return params


class HostServiceServer:
    """One plugin process's `HostServices` server; `start()` binds it, `close()` stops it and
    removes its socket. Constructs without I/O."""

    def __init__(self, plugin_id: str, services: HostServices, socket_dir: Path | None = None) -> None:
        self.plugin_id = plugin_id
        self.path = (socket_dir or host_socket_dir(None)) / f"host{secrets.token_hex(6)}"
        self._servicer = _Servicer(plugin_id, services)
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Listen on the unix socket `path`."""
        server = grpc.aio.server()
        host_grpc.add_HostServicesServicer_to_server(self._servicer, server)
        if not server.add_insecure_port(f"unix:{self.path}"):
            raise OSError(f"cannot listen on {self.path} for plugin '{self.plugin_id}'s host services")
        await server.start()
        self._server = server

    def conn_info(self) -> Any:
        """What the host announces on the plugin's broker stream."""
        return grpc_broker_pb2.ConnInfo(service_id=HOST_SERVICE_ID, network="unix", address=str(self.path))

    async def close(self) -> None:
        """Stop serving (calls in flight get `STOP_GRACE_S`) and remove the socket."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(STOP_GRACE_S)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


__all__ = ["HOST_SERVICE_ID", "SERVICE_ID_ENV", "HostServiceServer"]
