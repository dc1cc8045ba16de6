"""The gRPC side of a go-plugin plugin: channel, health, stdio drain, broker stream, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plughost.runtime.goplugin.launch import SECRET_METADATA
from plughost.runtime.goplugin.logs import LineSplitter, PluginLog
from plughost.runtime.proto.plughost_v1 import plugin_pb2_grpc as v1_grpc
from plughost.runtime.proto.plugin import (
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2,
    grpc_stdio_pb2_grpc,
    jank_pb2_grpc,
)
from plughost.sdk.tasks import TaskOwner

MAX_MESSAGE = 2**31 - 1
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.enable_retries", 0),
]
HEALTH_SERVICE = "plugin"
CLOSE_TIMEOUT_S = 2.0
QUIET_STREAM_ENDS = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
log = logging.getLogger(__name__)


def _with_metadata(stub: Any, metadata: tuple[tuple[str, str], ...]) -> Any:
    """`stub` with every method sending `metadata` (cheaper than a client interceptor per call)."""
    for name, method in list(vars(stub).items()):
        if callable(method):
            setattr(stub, name, functools.partial(method, metadata=metadata))
    return stub


class Connection:
    """A connected plugin: stubs plus the stdio and broker streams it keeps open.

    With a `secret` (a worker's), every call carries it. `broker_offers` (`ConnInfo`s) are announced
    to the plugin on the broker stream when it opens: services of the host it may `broker.Dial`.
    """

    def __init__(
        self,
        target: str,
        plugin_log: PluginLog,
        *,
        authority: str | None = None,
        tasks: TaskOwner | None = None,
        secret: str | None = None,
        broker_offers: Sequence[Any] = (),
    ) -> None:
        options: list[tuple[str, Any]] = list(CHANNEL_OPTIONS)
        if authority:
            options.append(("grpc.default_authority", authority))
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self.plugin_log = plugin_log
        stubs = [
            health_pb2_grpc.HealthStub(self.channel),
            grpc_controller_pb2_grpc.GRPCControllerStub(self.channel),
            jank_pb2_grpc.PluginServiceStub(self.channel),
            v1_grpc.PluginStub(self.channel),
            grpc_stdio_pb2_grpc.GRPCStdioStub(self.channel),
            grpc_broker_pb2_grpc.GRPCBrokerStub(self.channel),
        ]
        if secret:
            stubs = [_with_metadata(stub, ((SECRET_METADATA, secret),)) for stub in stubs]
        self.health, self.controller, self.jank, self.v1, self._stdio, self._broker = stubs
        self._tasks = tasks if tasks is not None else TaskOwner(f"{plugin_log.plugin_id}:connection")
        self._broker_closed = asyncio.Event()
        self._broker_offers = tuple(broker_offers)

    async def check_health(self, timeout: float) -> bool:
        """go-plugin's ping: Health/Check("plugin") is SERVING."""
        response = await self.health.Check(health_pb2.HealthCheckRequest(service=HEALTH_SERVICE), timeout=timeout)
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the channel connects and the health check answers SERVING."""
        response = await self.health.Check(
            health_pb2.HealthCheckRequest(service=HEALTH_SERVICE), timeout=timeout, wait_for_ready=True
        )
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            raise ConnectionError(f"health check of service '{HEALTH_SERVICE}' answered {name}, not SERVING")

    def start_streams(self, name: str) -> None:
        """Drain StreamStdio and hold the broker stream open, both owned by this connection."""
        self._tasks.spawn(self._drain_stdio(), name=f"{name}:stdio")
        self._tasks.spawn(self._hold_broker(), name=f"{name}:broker")

    async def _drain_stdio(self) -> None:
        splitters = {1: LineSplitter(), 2: LineSplitter()}
        try:
            async for chunk in self._stdio.StreamStdio(empty_pb2.Empty()):
                splitter = splitters.get(chunk.channel)
                if splitter is None:
                    continue
                for line in splitter.feed(chunk.data):
                    if chunk.channel == grpc_stdio_pb2.StdioData.STDERR:
                        self.plugin_log.stderr_line(line)
                    else:
                        self.plugin_log.stdout_line(line)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in QUIET_STREAM_ENDS:
                log.debug("[%s] stdio stream ended: %s", self.plugin_log.plugin_id, exc.details())

    async def _broker_requests(self) -> AsyncIterator[Any]:
        """The host's half of the broker stream: its offers, then nothing until the connection closes."""
        for offer in self._broker_offers:
            yield offer
        await self._broker_closed.wait()

    async def _hold_broker(self) -> None:
        try:
            async for _info in self._broker.StartStream(self._broker_requests()):
                log.debug("[%s] broker offered a connection (unused)", self.plugin_log.plugin_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in QUIET_STREAM_ENDS:
                log.debug("[%s] broker stream ended: %s", self.plugin_log.plugin_id, exc.details())

    async def shutdown(self, timeout: float) -> None:
        """Ask the plugin to stop (GRPCController/Shutdown); UNAVAILABLE and friends are expected."""
        with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError):
            await self.controller.Shutdown(grpc_controller_pb2.Empty(), timeout=timeout)

    async def close(self) -> None:
        """Cancel the streams and close the channel."""
        self._broker_closed.set()
        await self._tasks.aclose()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.channel.close(grace=None), CLOSE_TIMEOUT_S)
