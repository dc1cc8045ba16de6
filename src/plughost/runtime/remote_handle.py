"""`RemotePluginHandle`: a go-plugin plugin running elsewhere, attached by address (`[remote]`).

The host never starts, signals or stops the remote process: it connects (through the AutoMTLS
bridge when the plugin presents a certificate), watches the link, and reconnects when it breaks.

- **Loss**: the gRPC channel leaving READY, a call failing `UNAVAILABLE`, or `health_failures`
  failed health checks in a row (every `health_interval_s`) make the handle check the plugin's
  health at once; a failed check means the link is lost: a `disconnected` event, status
  `disconnected`, and calls fail at once (`unavailable`, naming the address) instead of waiting.
- **Reconnect**: with exponential backoff (`RestartPolicy` delays), without end — a machine may be
  down for long. Each attempt reads `[remote]` from the manifest file again, so a plugin restarted
  with a new address or certificate is picked up once its new handshake line is pasted. Status
  `reconnecting` during an attempt, then `running` and a `reconnected` event.
- **Calls** have the gRPC deadline `call_timeout_s` (or `limits.timeout_s`): a call past it is a
  `timed_out` error that the breaker counts; nothing is killed. `stop()` closes the link only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import grpc

from plughost.errors import InvocationError, ManifestError, PluginLoadError
from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.calls import (
    DescribeError,
    declared_subscriptions,
    describe,
    host_failure,
    rpc_text,
    start_rpc,
)
from plughost.runtime.goplugin.connection import Connection
from plughost.runtime.goplugin.logs import PluginLog
from plughost.runtime.goplugin.mtls import ClientIdentity, TlsBridge, client_context, start_bridge
from plughost.runtime.goplugin.remote import (
    RemoteError,
    RemoteTarget,
    probe,
    read_identity,
    resolve_target,
    workspace_identity,
)
from plughost.runtime.goplugin.supervisor import ProcessEvent
from plughost.runtime.goplugin.values import json_bytes
from plughost.runtime.process import CallTimedOut, EventHook, ProcessOptions
from plughost.runtime.proto.plughost_v1 import plugin_pb2 as v1
from plughost.runtime.proto.plugin import jank_pb2
from plughost.sdk.call import Call, Outcome
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import Health
from plughost.sdk.manifest import find_manifest_file, load_manifest
from plughost.sdk.manifest_remote import RemoteSettings
from plughost.sdk.tasks import TaskOwner

RemoteStatus = Literal["connecting", "running", "disconnected", "reconnecting", "stopped"]
LOST_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL)
log = logging.getLogger("plughost.runtime.remote")


@dataclass
class _Link:
    """One connection to the remote plugin; its tasks (gRPC streams, the TLS bridge) are `tasks`'."""

    target: RemoteTarget
    connection: Connection
    bridge: TlsBridge | None
    tasks: TaskOwner
    connected_at: datetime

    async def close(self) -> None:
        await self.connection.close()
        if self.bridge is not None:
            await self.bridge.close()
        await self.tasks.aclose()


class RemotePluginHandle:
    """A remote go-plugin plugin. See the module docstring for the behaviour."""

    def __init__(
        self, request: LoadRequest, options: ProcessOptions, identity_file: Path, on_event: EventHook | None = None
    ) -> None:
        assert request.manifest.remote is not None
        self.plugin_id = request.plugin_id
        self.request = request
        self.options = options
        self.identity_file = identity_file
        self.descriptor = Descriptor(id=request.plugin_id, version=request.manifest.version, priority=request.priority)
        self.protocol = "unknown"
        self.status: RemoteStatus = "connecting"
        self.last_error = ""
        self.reconnects = 0
        self.config: dict[str, Any] = dict(request.config)
        self._settings: RemoteSettings = request.manifest.remote
        self._target: RemoteTarget | None = None
        self._listeners: list[EventHook] = [on_event] if on_event else []
        self._log = PluginLog(request.logger, request.plugin_id)
        self._link: _Link | None = None
        self._suspect = asyncio.Event()  # a call saw the link fail: check it now
        self._enabled: bool | None = None
        self._stopping = False
        self.tasks = request.tasks if request.tasks is not None else TaskOwner(f"plugin:{request.plugin_id}")
        self._supervision = self.tasks.child(f"{request.plugin_id}:supervision")

    # lifecycle ----------------------------------------------------------------------------------
    def add_listener(self, hook: EventHook) -> None:
        """Receive every `ProcessEvent` of this plugin (`disconnected`, `reconnected` …)."""
        self._listeners.append(hook)

    async def start(self) -> None:
        """Attach; `PluginLoadError` with the one-line reason when the remote cannot be attached."""
        try:
            self._link = await self._connect(self._settings)
        except RemoteError as exc:
            self.last_error = str(exc)
            raise PluginLoadError(self.plugin_id, str(exc)) from None
        self._running("started", f"attached to remote plugin '{self.plugin_id}' at {self.address}")
        self._supervision.spawn(self._supervise(), name=f"{self.plugin_id}:remote-link")

    async def stop(self) -> None:
        """Close the link (the remote process keeps running) and end every task of the handle."""
        if self._stopping:
            return
        self._stopping = True
        try:
            await self._supervision.aclose()
            link, self._link = self._link, None
            if link is not None:
                await link.close()
                self._emit("stopped", f"detached from remote plugin '{self.plugin_id}' at {self.address}")
        finally:
            await self.tasks.aclose()
            self.status = "stopped"

    @property
    def address(self) -> str:
        """The address the plugin is (or was last) reached at."""
        return self._target.display if self._target is not None else (self._settings.address or "?")

    async def _connect(self, settings: RemoteSettings) -> _Link:
        """Resolve, probe, connect and describe; `RemoteError` with the reason otherwise."""
        handshake = self.request.manifest.handshake
        target = resolve_target(settings, self.request.plugin_dir, handshake.protocol_version if handshake else 1)
        self._target = target
        timeout = self.options.start_timeout_s
        context, identity = None, None
        if target.server_cert_der is not None:
            identity = self._identity(settings)
            try:
                context = client_context(identity, target.server_cert_der)
            except ssl.SSLError as exc:
                raise RemoteError(
                    f"[remote]: the server certificate is not a valid certificate ({exc.reason})"
                ) from None
        await probe(target, context, timeout)
        tasks = self.tasks.child(f"{self.plugin_id}:link")
        bridge = None
        try:
            grpc_target, authority = target.handshake().target, None
            if identity is not None:
                bridge = await start_bridge(
                    target.handshake(),
                    identity,
                    self.options.socket_dir,
                    tasks=tasks.child("mtls"),
                    server_name=target.server_name,
                )
                grpc_target, authority = bridge.target, target.server_name
            connection = Connection(grpc_target, self._log, authority=authority, tasks=tasks.child("grpc"))
        except BaseException:
            if bridge is not None:
                await bridge.close()
            await tasks.aclose()
            raise
        link = _Link(target, connection, bridge, tasks, datetime.now(UTC))
        try:
            await self._handshake(link, timeout)
        except BaseException:
            await link.close()
            raise
        return link

    async def _handshake(self, link: _Link, timeout: float) -> None:
        """Health check, streams, Describe, and the enabled state of a plughost.v1 plugin."""
        connection = link.connection
        try:
            await connection.wait_ready(timeout=timeout)
        except (grpc.aio.AioRpcError, ConnectionError) as exc:
            raise RemoteError(
                f"{link.target.display} did not pass go-plugin's health check within {timeout:g} s "
                f"({rpc_text(exc)}); a plugin started with PLUGIN_CLIENT_CERT expects mTLS: paste its handshake line"
            ) from None
        connection.start_streams(self.plugin_id)
        try:
            described = await describe(
                connection, self.descriptor, self.options.call_timeout_s, declared_subscriptions(self.request.manifest)
            )
            if self._enabled is not None and described.protocol == "plughost.v1":
                await connection.v1.SetEnabled(
                    v1.SetEnabledRequest(enabled=self._enabled), timeout=self.options.call_timeout_s
                )
        except DescribeError as exc:
            raise RemoteError(f"{link.target.display}: {exc}") from None
        except grpc.aio.AioRpcError as exc:
            raise RemoteError(f"{link.target.display}: SetEnabled failed: {rpc_text(exc)}") from None
        self.protocol, self.descriptor = described.protocol, described.descriptor

    def _identity(self, settings: RemoteSettings) -> ClientIdentity:
        if settings.client_cert is not None and settings.client_key is not None:
            directory = self.request.plugin_dir
            return read_identity(directory / settings.client_cert, directory / settings.client_key)
        return workspace_identity(self.identity_file)

    # supervision --------------------------------------------------------------------------------
    def _running(self, kind: Literal["started", "reconnected"], message: str) -> None:
        self.status = "running"
        self.last_error = ""
        self._suspect.clear()
        self._emit(kind, message)

    async def _supervise(self) -> None:
        while True:
            link = self._link
            assert link is not None
            reason = await self._watch(link)
            self._link = None
            self.status = "disconnected"
            self.last_error = f"lost the link: {reason}"
            message = f"lost the link to remote plugin '{self.plugin_id}' at {link.target.display}: {reason}"
            self.request.logger.error("%s; reconnecting", message)
            self._emit("disconnected", message)
            await link.close()
            self._link = await self._reconnect()
            self.reconnects += 1
            self._running("reconnected", f"reconnected to remote plugin '{self.plugin_id}' at {self.address}")

    async def _watch(self, link: _Link) -> str:
        """Wait until the link is lost; why. Checks health when the channel leaves READY, when a
        call saw it fail, and every `health_interval_s` (lost after `health_failures` of those)."""
        failures = 0
        while True:
            timed = await self._next_check(link.connection.channel)
            try:
                healthy = await link.connection.check_health(timeout=self.options.health_timeout_s)
                reason = "" if healthy else "it reports NOT_SERVING"
            except (grpc.aio.AioRpcError, TimeoutError) as exc:
                healthy, reason = False, f"health check failed ({rpc_text(exc)})"
            if healthy:
                failures = 0
                continue
            failures += 1
            if not timed or failures >= self.options.health_failures:
                return reason

    async def _next_check(self, channel: grpc.aio.Channel) -> bool:
        """Wait for a reason to check health: True when it is only the periodic check."""
        state = channel.get_state()
        if state != grpc.ChannelConnectivity.READY or self._suspect.is_set():
            self._suspect.clear()
            return False
        async with TaskOwner(f"{self.plugin_id}:watch", logger=self.request.logger) as race:
            changed = race.spawn(channel.wait_for_state_change(state), name=f"{self.plugin_id}:channel")
            suspect = race.spawn(self._suspect.wait(), name=f"{self.plugin_id}:suspect")
            waits = {changed, suspect}
            if self.options.health_interval_s > 0:
                waits.add(race.spawn(asyncio.sleep(self.options.health_interval_s), name=f"{self.plugin_id}:tick"))
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        self._suspect.clear()
        return not (done & {changed, suspect})

    async def _reconnect(self) -> _Link:
        """Connect again, with backoff, until it works (or the handle stops, which cancels this)."""
        policy = self.options.restart
        delay = policy.initial_delay_s
        while True:
            await asyncio.sleep(delay)
            delay = min(policy.max_delay_s, max(delay, 0.001) * policy.factor)
            self.status = "reconnecting"
            try:
                return await self._connect(self._current_settings())
            except RemoteError as exc:
                self.last_error = f"reconnect failed: {exc}"
                message = f"reconnecting to remote plugin '{self.plugin_id}' failed: {exc}"
                self.request.logger.warning("%s; next attempt in %g s", message, delay)
                self._emit("reconnect_failed", message)
            self.status = "disconnected"

    def _current_settings(self) -> RemoteSettings:
        """`[remote]` as the manifest file says now (the pasted handshake line of a restarted plugin)."""
        manifest_file = find_manifest_file(self.request.plugin_dir)
        if manifest_file is None:
            return self._settings
        try:
            remote = load_manifest(manifest_file).remote
        except ManifestError as exc:
            self.request.logger.warning("plugin '%s': keeping the loaded [remote]: %s", self.plugin_id, exc)
            return self._settings
        if remote is not None:
            self._settings = remote
        return self._settings

    def _emit(self, kind: Any, message: str) -> None:
        event = ProcessEvent(self.plugin_id, kind, message)
        for hook in list(self._listeners):
            try:
                hook(event)
            except Exception:
                log.exception("process event hook failed for %s", self.plugin_id)

    def _connected(self, name: str) -> _Link:
        """The link, or an `unavailable` error that names the address (calls never wait for it)."""
        link = self._link
        if link is not None and self.status == "running":
            return link
        reason = f": {self.last_error}" if self.last_error else ""
        raise InvocationError(
            f"cannot call '{name}': remote plugin '{self.plugin_id}' at {self.address} is {self.status}{reason}",
            code="unavailable",
            retryable=self.status in ("disconnected", "reconnecting"),
        )

    # calls --------------------------------------------------------------------------------------
    @property
    def call_deadline_s(self) -> float:
        """Every call ends by this deadline, as a `timed_out` outcome (the guard's `DeadlineKeeper`)."""
        return self.options.call_timeout_s

    async def call(self, call: Call) -> Outcome:
        """One call (`Invoke` or Jank's `Execute`) with the call deadline; failures are outcome errors."""
        timeout = self.options.call_timeout_s
        try:
            link = self._connected(call.handler)
            rpc, answer = start_rpc(link.connection, self.protocol, self.plugin_id, call, timeout)
            return answer(await rpc)
        except grpc.aio.AioRpcError as exc:
            return host_failure(self._call_error(call.handler, exc, timeout))
        except InvocationError as exc:
            return host_failure(exc)

    def _call_error(self, name: str, exc: grpc.aio.AioRpcError, limit: float) -> InvocationError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return CallTimedOut(
                f"call to '{name}' of remote plugin '{self.plugin_id}' at {self.address} passed its deadline "
                f"of {limit:g} s"
            )
        if code in LOST_CODES:
            self._suspect.set()
            return InvocationError(
                f"remote plugin '{self.plugin_id}' at {self.address} is unreachable: {exc.details()}",
                code="unavailable",
                retryable=True,
            )
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return InvocationError(
                f"plugin '{self.plugin_id}' does not implement {self.protocol} calls: {exc.details()}",
                code="protocol_error",
            )
        return InvocationError(exc.details() or code.name, code="plugin_error")

    def channel(self) -> grpc.aio.Channel:
        """The current gRPC channel, for plugin-specific services (it changes on reconnect)."""
        return self._connected("channel").connection.channel

    # status -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Runtime status: `status` (running, disconnected, reconnecting, stopped), `remote`,
        `address`, `network`, `tls`, `connected_at`, `reconnects`, `error`."""
        data: dict[str, Any] = {
            "status": self.status,
            "remote": True,
            "protocol": self.protocol,
            "address": self.address,
            "reconnects": self.reconnects,
        }
        target, link = self._target, self._link
        if target is not None:
            data.update(network=target.network, tls=target.server_cert_der is not None)
        if link is not None:
            data["connected_at"] = link.connected_at.isoformat()
        if self.last_error:
            data["error"] = self.last_error
        return data

    async def health(self) -> Health:
        info = self.info()
        link = self._link
        if link is None or self.status != "running":
            return Health("down", self.last_error or self.status, info)
        try:
            if not await link.connection.check_health(timeout=self.options.health_timeout_s):
                return Health("degraded", "plugin reports NOT_SERVING", info)
            if self.protocol == "jank":
                answer = await link.connection.jank.HealthCheck(
                    jank_pb2.HealthCheckRequest(), timeout=self.options.health_timeout_s
                )
                if answer.status != "healthy":
                    return Health("degraded", f"plugin reports '{answer.status or 'unknown'}'", info)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return Health("ok", "", info)
            self._suspect.set()
            return Health("degraded", f"health check failed: {rpc_text(exc)}", info)
        return Health("ok", "", info)

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        if self.protocol != "plughost.v1":
            return
        link = self._connected("reconfigure")
        try:
            await link.connection.v1.Reconfigure(
                v1.ReconfigureRequest(config_json=json_bytes(dict(config))), timeout=self.options.call_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise self._call_error("reconfigure", exc, self.options.call_timeout_s) from None

    async def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if self.protocol != "plughost.v1":
            return
        link = self._connected("set_enabled")
        with contextlib.suppress(grpc.aio.AioRpcError):  # told again when the link comes back
            await link.connection.v1.SetEnabled(
                v1.SetEnabledRequest(enabled=enabled), timeout=self.options.call_timeout_s
            )


__all__ = ["RemotePluginHandle", "RemoteStatus"]
