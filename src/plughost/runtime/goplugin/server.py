"""The server half of go-plugin in Python: handshake, health, controller, stdio and broker.

`plughost.runtime.worker` uses it to serve a plugin handle over plughost.v1 and Jank's
PluginService; the services of a go-plugin server are all here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plughost.runtime.goplugin.launch import SECRET_METADATA
from plughost.runtime.proto.plugin import (
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2,
    grpc_stdio_pb2_grpc,
)

MAX_MESSAGE = 2**31 - 1
STDIO_BACKLOG = 1000
NOT_A_PLUGIN = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


class HclogFormatter(logging.Formatter):
    """hclog's JSON line format, which go-plugin hosts (and plughost) parse from stderr."""

    LEVELS: ClassVar[dict[int, str]] = {
        logging.DEBUG: "debug",
        logging.INFO: "info",
        logging.WARNING: "warn",
        logging.ERROR: "error",
    }

    def format(self, record: logging.LogRecord) -> str:
        level = self.LEVELS.get(record.levelno, "error" if record.levelno > logging.ERROR else "debug")
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return json.dumps({"@level": level, "@message": message, "@module": record.name, "@timestamp": stamp})


class StdioForwarder(io.TextIOBase):
    """Replaces `sys.stdout` after the handshake: text goes to the host over GRPCStdio."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._chunks: deque[tuple[Any, bytes]] = deque(maxlen=STDIO_BACKLOG)
        self._wake = asyncio.Event()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.push(grpc_stdio_pb2.StdioData.STDOUT, text.encode("utf-8", "replace"))
        return len(text)

    def push(self, channel: Any, data: bytes) -> None:
        self._chunks.append((channel, data))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stream(self) -> AsyncIterator[Any]:
        while True:
            while self._chunks:
                channel, data = self._chunks.popleft()
                yield grpc_stdio_pb2.StdioData(channel=channel, data=data)
            self._wake.clear()
            await self._wake.wait()


class _Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):  # type: ignore[misc]
    def __init__(self, shutdown: asyncio.Event) -> None:
        self._shutdown = shutdown

    async def Shutdown(self, request: Any, context: Any) -> Any:
        self._shutdown.set()
        return grpc_controller_pb2.Empty()


class _Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):  # type: ignore[misc]
    def __init__(self, forwarder: StdioForwarder) -> None:
        self._forwarder = forwarder

    async def StreamStdio(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for chunk in self._forwarder.stream():
            yield chunk


class _Broker(grpc_broker_pb2_grpc.GRPCBrokerServicer):  # type: ignore[misc]
    async def StartStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for _info in request_iterator:
            pass  # no brokered services; keep the stream open until the host closes it
        nothing: tuple[Any, ...] = ()
        for item in nothing:
            yield item


class RequireSecret(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every call must carry the secret in its `SECRET_METADATA`; others fail UNAUTHENTICATED.

    Any process of the same user can connect to the server's unix socket; the secret, which only
    the host and this process know, tells the host from the rest.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None or self._carries_secret(details):
            return handler
        return _refusal(handler)

    def _carries_secret(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == SECRET_METADATA:
                given = value if isinstance(value, bytes) else str(value).encode()
                return hmac.compare_digest(given, self._secret)
        return False


def _refusal(handler: Any) -> Any:
    """A handler of the same shape as `handler` that refuses the call."""

    async def refuse(request: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "this plugin answers only the host that started it")

    shape = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return shape(
        refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


class GoPluginServer:
    """A go-plugin gRPC server on a unix socket: add application services, then `start()`.

    With a `secret`, every call must carry it (`RequireSecret`).
    """

    def __init__(self, secret: str | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.server = grpc.aio.server(
            options=[("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)],
            interceptors=[RequireSecret(secret)] if secret else None,
        )
        self.shutdown = asyncio.Event()
        self.stdio = StdioForwarder(self.loop)
        self.health = health_async.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(_Controller(self.shutdown), self.server)
        grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(_Stdio(self.stdio), self.server)
        grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(_Broker(), self.server)
        self.socket_path = Path("")

    @property
    def socket_dir(self) -> Path:
        """Where go-plugin puts sockets: `PLUGIN_UNIX_SOCKET_DIR`, else the temp directory."""
        return Path(os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir())

    async def start(self, app_version: int = 1) -> str:
        """Listen, mark "plugin" SERVING and return the handshake line (not yet printed)."""
        self.socket_path = self.socket_dir / f"plugin{secrets.token_hex(6)}"
        self.server.add_insecure_port(f"unix:{self.socket_path}")
        await self.server.start()
        await self.health.set("plugin", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        return f"1|{app_version}|unix|{self.socket_path}|grpc|"

    async def stop(self, grace: float = 0.5) -> None:
        await self.server.stop(grace)
        with contextlib.suppress(OSError):
            self.socket_path.unlink()


def cookie_ok(key: str, value: str) -> bool:
    """True when the host started us with the handshake cookie; else print go-plugin's notice."""
    if os.environ.get(key) == value:
        return True
    sys.stderr.write(NOT_A_PLUGIN)
    sys.stderr.flush()
    return False


def negotiated_version(supported: tuple[int, ...] = (1,)) -> int:
    """The highest version both sides speak (the lowest of ours when the host offers none of them)."""
    offered = {int(v) for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v.strip().isdigit()}
    common = sorted(set(supported) & offered)
    return common[-1] if common else min(supported)


def install_hclog_handler(level: int = logging.DEBUG) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HclogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("grpc").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
