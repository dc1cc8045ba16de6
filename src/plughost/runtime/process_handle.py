"""`ProcessPluginHandle`: one supervised plugin process and its gRPC connection.

`plughost.runtime.process.ProcessRuntime.load()` makes these (and imports this module, with
gRPC, the first time); see `plughost.runtime.process` for the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import grpc

from plughost.errors import InvocationError, PluginLoadError
from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.calls import (
    DescribeError,
    declared_subscriptions,
    describe,
    encoded,
    host_failure,
    rpc_text,
    start_rpc,
)
from plughost.runtime.goplugin.connection import Connection
from plughost.runtime.goplugin.host_server import HostServiceServer
from plughost.runtime.goplugin.launch import ChildProcess, Launched, LaunchError, LaunchSpec, Spawn, kill_group, launch
from plughost.runtime.goplugin.logs import PluginLog
from plughost.runtime.goplugin.supervisor import ProcessEvent, RestartBudget
from plughost.runtime.goplugin.values import json_bytes
from plughost.runtime.host_services import HostServices
from plughost.runtime.invoke_lane import InvokeLaneCallFailed, InvokeLaneClient, InvokeLaneClosed
from plughost.runtime.process import CallTimedOut, EventHook, ProcessOptions
from plughost.runtime.proto.plughost_v1 import plugin_pb2 as v1
from plughost.runtime.proto.plugin import jank_pb2
from plughost.sdk import jsonio
from plughost.sdk.call import NOTHING, Call, Outcome, PluginError
from plughost.sdk.deadlines import deadline_passed
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import Health
from plughost.sdk.jsonio import PLAIN
from plughost.sdk.tasks import TaskOwner

ProcessStatus = Literal["starting", "running", "restarting", "stopped", "error"]
log = logging.getLogger("plughost.runtime.process")
PLAIN_ANSWER_BYTES = 64
"""Answers of a worker up to this size with a plain value are read once and their outcome reused …"""
PLAIN_ANSWERS_KEPT = 64
"""… up to this many distinct ones per plugin (then forgotten and learned again)."""


class AnswerReader:
    """Reads the outcomes a worker answers over its invoke lane.

    Most answers are a few bytes with a plain value (`{}`, `{"value":true}`); each of those is read
    once and its outcome reused, as outcomes are values that nobody changes.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[bytes, Outcome] = {}

    def read(self, answer: bytes) -> Outcome | None:
        """The outcome in `answer`; None when it is not JSON."""
        if answer == b"{}":
            return NOTHING
        short = len(answer) <= PLAIN_ANSWER_BYTES
        if short and (known := self._known.get(answer)) is not None:
            return known
        try:
            outcome = Outcome.from_json(jsonio.loads(answer))
        except (ValueError, RecursionError):
            return None
        if short and outcome.error is None and not outcome.sends and type(outcome.value) in PLAIN:
            if len(self._known) >= PLAIN_ANSWERS_KEPT:
                self._known.clear()
            self._known[answer] = outcome
        return outcome


@dataclass
class _Instance:
    """One running process of a plugin and its connection.

    Its tasks (output pumps, gRPC streams, the invoke lane's reader, the TLS bridge) belong to
    `launched.tasks`, which `_stop_instance` closes.
    """

    launched: Launched
    connection: Connection
    spec: LaunchSpec
    started_at: datetime
    started_mono: float
    closers: list[Callable[[], Any]] = field(default_factory=list)
    exit_reason: str = ""
    lane: InvokeLaneClient | None = None
    lane_path: str = ""  # the worker's lane socket, removed with the instance
    host_server: HostServiceServer | None = None  # the plugin's bus and state (`host_services`)

    @property
    def process(self) -> ChildProcess:
        return self.launched.process

    @property
    def tasks(self) -> TaskOwner:
        return self.launched.tasks


class ProcessPluginHandle:
    """A supervised plugin process. See the module docstring for the behaviour."""

    def __init__(
        self,
        request: LoadRequest,
        spec: LaunchSpec,
        options: ProcessOptions,
        on_event: EventHook | None = None,
        *,
        spec_factory: Callable[[], LaunchSpec] | None = None,
        spawn: Spawn | None = None,
        host_services: HostServices | None = None,
    ) -> None:
        self.plugin_id = request.plugin_id
        self.request = request
        self.options = options
        self.descriptor = Descriptor(id=request.plugin_id, version=request.manifest.version, priority=request.priority)
        self.status: ProcessStatus = "starting"
        self.last_error = ""
        self.restarts = 0
        self.protocol = "unknown"
        self._spec = spec
        self._spec_factory = spec_factory
        self._spawn = spawn  # how its process starts (None: a new program; workers: maybe forked)
        # served to each process over the broker (`plughost.runtime.goplugin.host_server`); its
        # launch spec names the service id
        self._host_services = host_services
        self._listeners: list[EventHook] = [on_event] if on_event else []
        self._log = PluginLog(request.logger, request.plugin_id)
        self._instance: _Instance | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._budget = RestartBudget(options.restart)
        # the handle's tasks: supervision (watch, restart, health) and, as children, each process's
        self.tasks = request.tasks if request.tasks is not None else TaskOwner(f"plugin:{request.plugin_id}")
        self._supervision = self.tasks.child(f"{request.plugin_id}:supervision")
        self._calls = self.tasks.child(f"{request.plugin_id}:calls")  # executables' calls, given time when abandoned
        self._enabled: bool | None = None
        self._active = 0  # calls in flight: `stop` lets them finish (a reload's old version keeps serving)
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_exit: int | None = None
        self._answers = AnswerReader()
        self.client_identity: Any = None  # ClientIdentity when the plugin uses AutoMTLS
        self.config: dict[str, Any] = dict(request.config)

    # lifecycle ----------------------------------------------------------------------------------
    def add_listener(self, hook: EventHook) -> None:
        """Receive every `ProcessEvent` of this plugin (crash, restart, give-up …)."""
        self._listeners.append(hook)

    async def start(self) -> None:
        """Start the process; raise `PluginLoadError` with the reason when it does not become ready."""
        try:
            self._instance = await self._start_instance()
        except LaunchError as exc:
            self.status = "error"
            self.last_error = str(exc)
            raise PluginLoadError(self.plugin_id, str(exc)) from None
        self._became_ready("started", f"plugin '{self.plugin_id}' started")
        self._supervision.spawn(self._supervise(), name=f"{self.plugin_id}:supervisor")
        if self.options.health_interval_s > 0:
            self._supervision.spawn(self._monitor_health(), name=f"{self.plugin_id}:health")

    async def stop(self) -> None:
        """Shutdown RPC → wait `stop_grace_s` → SIGKILL the process group → remove stale sockets.

        Supervision stops first (no restart races the stop); calls in flight get `stop_grace_s` to
        finish (a reload switches callers to the new version first); then every task of the handle
        is awaited.
        """
        if self._stopping:
            return
        self._stopping = True
        try:
            await self._supervision.aclose()
            if self._active:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), self.options.stop_grace_s)
            instance, self._instance = self._instance, None
            if instance is not None:
                await self._stop_instance(instance)
                self._emit("stopped", f"plugin '{self.plugin_id}' stopped", pid=instance.process.pid)
        finally:
            await self.tasks.aclose()
            self.status = "stopped"
            self._ready.set()  # wake waiting callers; they see the stopped state

    async def _start_instance(self) -> _Instance:
        spec = self._spec_factory() if self._spec_factory else self._spec
        tasks = self.tasks.child(f"{self.plugin_id}:process")
        closers: list[Callable[[], Any]] = []
        host_server = await self._start_host_server(spec, closers)
        try:
            launched = await launch(spec, self._log, tasks, self._spawn)
        except BaseException:
            await tasks.aclose()
            await _run_closers(closers)
            raise
        started = time.monotonic()
        try:
            target, authority = launched.handshake.target, None
            if launched.handshake.server_cert_der is not None:
                target, authority = await self._secure_target(launched, closers)
        except BaseException:
            kill_group(launched.process)
            await tasks.aclose()
            await _run_closers(closers)
            raise
        connection = Connection(
            target,
            self._log,
            authority=authority,
            tasks=tasks.child(f"{self.plugin_id}:grpc"),
            secret=spec.secret,
            broker_offers=() if host_server is None else (host_server.conn_info(),),
        )
        instance = _Instance(launched, connection, spec, datetime.now(UTC), started, closers, host_server=host_server)
        try:
            remaining = max(0.1, spec.start_timeout_s - (time.monotonic() - started))
            await self._wait_ready_or_exit(instance, remaining)
            connection.start_streams(self.plugin_id)
            await self._describe(instance)
            if self._enabled is not None and self.protocol == "plughost.v1":
                await connection.v1.SetEnabled(
                    v1.SetEnabledRequest(enabled=self._enabled), timeout=self.options.call_timeout_s
                )
        except BaseException:
            await self._stop_instance(instance, graceful=False)
            raise
        return instance

    async def _start_host_server(self, spec: LaunchSpec, closers: list[Callable[[], Any]]) -> HostServiceServer | None:
        """The process's own `HostServices` server, listening (None when the plugin gets none)."""
        if self._host_services is None:
            return None
        server = HostServiceServer(self.plugin_id, self._host_services, spec.socket_dir)
        try:
            await server.start()
        except BaseException as exc:
            await server.close()
            if isinstance(exc, OSError | RuntimeError):
                raise LaunchError(f"cannot serve the host's bus and state to the plugin: {exc}") from None
            raise
        closers.append(server.close)
        return server

    async def _wait_ready_or_exit(self, instance: _Instance, timeout: float) -> None:
        """The first health check, failing at once (with the stderr tail) if the process exits meanwhile."""

        async def check() -> Exception | None:
            try:
                await instance.connection.wait_ready(timeout=timeout)
            except Exception as exc:  # the answer of the race, not a failure of the task
                return exc
            return None

        async with TaskOwner(f"{self.plugin_id}:starting", logger=self.request.logger) as race:
            ready = race.spawn(check(), name=f"{self.plugin_id}:ready")
            exited = race.spawn(instance.process.wait(), name=f"{self.plugin_id}:exited")
            await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done() or ready.cancelled():
            await asyncio.wait(instance.launched.pumps, timeout=1.0)  # the last of its stderr
            tail = self._log.tail_text()
            raise LaunchError(
                f"plugin exited (exit code {instance.process.returncode}) before passing its health check"
                + (f"; stderr tail:\n{tail}" if tail else "")
            )
        failure = ready.result()
        if failure is not None:
            raise LaunchError(f"plugin did not pass its health check: {rpc_text(failure)}") from None

    async def _secure_target(self, launched: Launched, closers: list[Callable[[], Any]]) -> tuple[str, str]:
        """Connect through the TLS bridge to a plugin that answered with a server certificate."""
        if self.client_identity is None:
            raise LaunchError(
                "plugin answered with a TLS server certificate although the host sent no client certificate"
            )
        from plughost.runtime.goplugin.mtls import start_bridge

        bridge = await start_bridge(
            launched.handshake, self.client_identity, self.options.socket_dir, tasks=launched.tasks.child("mtls")
        )
        closers.append(bridge.close)
        return bridge.target, "localhost"

    async def _describe(self, instance: _Instance) -> None:
        try:
            described = await describe(
                instance.connection,
                self.descriptor,
                self.options.call_timeout_s,
                declared_subscriptions(self.request.manifest),
            )
        except DescribeError as exc:
            raise LaunchError(str(exc)) from None
        self.protocol, self.descriptor = described.protocol, described.descriptor
        if described.invoke_lane:
            instance.lane_path = described.invoke_lane
            instance.lane = await self._connect_lane(instance, described.invoke_lane)

    async def _connect_lane(self, instance: _Instance, path: str) -> InvokeLaneClient | None:
        """The worker's invoke lane, when enabled and as private as its gRPC socket (unix, no TLS,
        authenticated with the secret the worker was started with)."""
        handshake = instance.launched.handshake
        secret = instance.spec.secret
        if not self.options.invoke_lane or handshake.network != "unix" or handshake.server_cert_der is not None:
            return None
        if secret is None:
            return None
        try:
            services = HostServices(self.request.bus, self.request.state)  # ctx.bus and ctx.state in the worker
            return await InvokeLaneClient.connect(
                path,
                self.plugin_id,
                secret=secret,
                tasks=instance.tasks.child(f"{self.plugin_id}:lane"),
                services=services.run,
            )
        except (OSError, TimeoutError) as exc:
            self.request.logger.warning("plugin '%s': no invoke lane (%s); calling over gRPC", self.plugin_id, exc)
            return None

    async def _stop_instance(self, instance: _Instance, *, graceful: bool = True) -> None:
        process = instance.process
        connection = instance.connection
        if instance.lane is not None:
            await instance.lane.close()
        if connection is not None:
            if graceful and process.returncode is None:
                instance.exit_reason = instance.exit_reason or "stopped"
                await connection.shutdown(timeout=min(1.0, self.options.stop_grace_s))
            await connection.close()
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), self.options.stop_grace_s if graceful else 0.01)
        kill_group(process)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5.0)
        await _run_closers(instance.closers)
        await instance.tasks.aclose(grace=1.0)  # the pumps read the process's last output first
        handshake = instance.launched.handshake
        for stale in (handshake.address if handshake.network == "unix" else "", instance.lane_path):
            if stale:
                with contextlib.suppress(OSError):
                    os.unlink(stale)

    # supervision --------------------------------------------------------------------------------
    def _became_ready(self, kind: Literal["started", "restarted"], message: str) -> None:
        self.status = "running"
        self.last_error = ""
        self._ready.set()
        pid = self._instance.process.pid if self._instance else None
        self._emit(kind, message, pid=pid)

    async def _supervise(self) -> None:
        while True:
            instance = self._instance
            assert instance is not None
            code = await instance.process.wait()
            if self._stopping:
                return
            self._ready.clear()
            self._last_exit = code
            self._instance = None
            self.status = "restarting"
            await asyncio.wait(instance.launched.pumps, timeout=1.0)  # the last of its stderr
            reason = instance.exit_reason or instance.spec.limit_exits.get(code) or "exited unexpectedly"
            tail = self._log.tail_text()
            self.last_error = f"plugin '{self.plugin_id}' {reason} (exit code {code})"
            self.request.logger.error("%s; stderr tail:\n%s", self.last_error, tail or "(empty)")
            self._emit("crashed", self.last_error, exit_code=code, stderr_tail=tail, pid=instance.process.pid)
            await self._stop_instance(instance, graceful=False)
            self._budget.crashed_after(time.monotonic() - instance.started_mono)
            if not await self._restart():
                return

    async def _restart(self) -> bool:
        def failed(exc: Exception) -> None:
            self.last_error = f"restart of plugin '{self.plugin_id}' failed: {rpc_text(exc)}"
            self._emit("restart_failed", self.last_error, stderr_tail=self._log.tail_text())

        instance = await self._budget.restart(self._start_instance, failed, lambda: self._stopping)
        if instance is None:
            if not self._stopping:
                self.status = "error"
                self.last_error = f"{self.last_error}; {self._budget.exhausted_reason}"
                self._emit("gave_up", self.last_error, exit_code=self._last_exit, stderr_tail=self._log.tail_text())
                self._ready.set()  # wake waiting callers: they fail with the reason
            return False
        self._instance = instance
        self.restarts += 1
        self._became_ready("restarted", f"plugin '{self.plugin_id}' restarted (restart {self.restarts})")
        return True

    async def _monitor_health(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.options.health_interval_s)
            instance = self._instance
            if instance is None or self.status != "running":
                failures = 0
                continue
            try:
                healthy = await instance.connection.check_health(timeout=self.options.health_timeout_s)
            except (grpc.aio.AioRpcError, TimeoutError):
                healthy = False
            failures = 0 if healthy else failures + 1
            if failures >= self.options.health_failures and instance is self._instance:
                message = f"plugin '{self.plugin_id}' failed {failures} health checks; killing it to restart"
                self.request.logger.warning(message)
                self._emit("unhealthy", message, pid=instance.process.pid)
                self.kill_current("was killed after failing its health checks")
                failures = 0

    def kill_current(self, reason: str) -> None:
        """SIGKILL the current process (the supervisor restarts it)."""
        instance = self._instance
        if instance is not None and instance.process.returncode is None:
            instance.exit_reason = reason
            if self.status == "running":  # new calls wait for the restart instead of using this process
                self.status = "restarting"
                self._ready.clear()
            kill_group(instance.process)

    def _emit(self, kind: Any, message: str, **fields: Any) -> None:
        event = ProcessEvent(self.plugin_id, kind, message, **fields)
        for hook in list(self._listeners):
            try:
                hook(event)
            except Exception:
                log.exception("process event hook failed for %s", self.plugin_id)

    async def _current(self) -> _Instance:
        """The running instance; waits while the plugin restarts (the caller's timeout bounds the wait)."""
        while True:
            instance = self._instance
            if instance is not None and instance.process.returncode is not None:
                self._mark_dead(instance)  # exited; the supervisor restarts it
            if instance is not None and self.status == "running":
                return instance
            if self.status in ("stopped", "error") or self._stopping:
                raise InvocationError(
                    f"plugin '{self.plugin_id}' is {self.status}: {self.last_error or 'not running'}",
                    code="unavailable",
                )
            await self._ready.wait()

    # calls --------------------------------------------------------------------------------------
    @property
    def call_deadline_s(self) -> float:
        """Every call ends by this deadline, as a `timed_out` outcome (the guard's `DeadlineKeeper`)."""
        return self.options.call_timeout_s

    async def call(self, call: Call) -> Outcome:
        """One call over the worker's invoke lane, plughost.v1 `Invoke`, or Jank's `Execute`.

        Failures are outcome errors; only the caller's own cancellation propagates. The worker is
        told to cancel the handler; with `kill_on_timeout` a call abandoned at its deadline (see
        `deadline_passed`) also kills the process, whose handler cannot be trusted to stop. A caller
        that merely went away (its bot disconnected, its event was dropped) kills nothing.
        """
        self._active += 1
        self._idle.clear()
        instance = self._instance
        timeout = self.options.call_timeout_s
        try:
            if instance is None or self.status != "running" or instance.process.returncode is not None:
                started = time.monotonic()
                instance = await self._wait_until_running(timeout)
                timeout = max(0.001, timeout - (time.monotonic() - started))
            if instance.lane is not None and not instance.lane.closed:
                return await self._call_lane(instance, instance.lane, call, timeout)
            if self.options.kill_on_timeout:  # a worker: a call past its deadline kills the process
                return await self._call_grpc(instance, call, timeout)
            return await self._call_watched(instance, call, timeout)
        except grpc.aio.AioRpcError as exc:
            return host_failure(await self._call_error(instance, call.handler, exc, timeout))  # type: ignore[arg-type]
        except InvocationError as exc:
            return host_failure(exc)
        except asyncio.CancelledError as cancelled:
            task = asyncio.current_task()
            if instance is not None and task is not None and not task.cancelling():
                # the channel closed under the call: the process crashed (or is going away)
                return host_failure(await self._connection_lost(instance, call.handler, "the channel closed"))
            if self.options.kill_on_timeout and deadline_passed(cancelled):
                self.kill_current(f"was killed because the call to '{call.handler}' was abandoned (timeout)")
            raise
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _call_grpc(self, instance: _Instance, call: Call, timeout: float) -> Outcome:
        """A worker's call over gRPC (waiting on `_completion`, so a cancellation keeps its message)."""
        rpc, answer = self._start_rpc(instance, call, timeout)
        completed, _ = _completion(rpc)
        try:
            await completed
        except asyncio.CancelledError:
            rpc.cancel()
            raise
        return answer(await rpc)

    def _start_rpc(self, instance: _Instance, call: Call, deadline: float) -> tuple[Any, Callable[[Any], Outcome]]:
        """The call's RPC, started (plughost.v1 `Invoke` or Jank's `Execute`, with `deadline` in
        seconds), and what turns its response into the outcome."""
        return start_rpc(instance.connection, self.protocol, self.plugin_id, call, deadline)

    async def _call_watched(self, instance: _Instance, call: Call, timeout: float) -> Outcome:
        """An executable's call: the caller gets its answer or a timeout at `timeout`; a call
        abandoned that way keeps `stop_grace_s` more to return (its gRPC deadline, which the
        plugin sees), and a plugin that does not return by then is restarted — a stuck call
        never keeps running in it.

        The caller waits for the RPC's completion, not for the RPC itself: giving up at
        `timeout` (or being cancelled) leaves the RPC running, and no task is started for a call
        that answers in time."""
        rpc, answer = self._start_rpc(instance, call, timeout + self.options.stop_grace_s)
        ended, end = _completion(rpc)  # True: answered in time, False: timed out
        timer = asyncio.get_running_loop().call_later(timeout, end, False)
        try:
            answered = await ended
        except asyncio.CancelledError:
            self._abandon(rpc, instance, call.handler, timeout)
            raise
        finally:
            timer.cancel()
        if not answered:
            self._abandon(rpc, instance, call.handler, timeout)
            raise self._deadline_passed(call.handler, timeout)
        return answer(await rpc)

    def _abandon(self, rpc: Any, instance: _Instance, name: str, limit: float) -> None:
        """Give a call its caller no longer waits for `stop_grace_s` more (see `_call_watched`)."""
        if rpc.done():
            return
        if self._calls.closed:  # the handle is stopping: the call ends with it
            rpc.cancel()
            return
        self._calls.spawn(self._outlive(rpc, instance, name, limit), name=f"{name}:abandoned")

    async def _outlive(self, rpc: Any, instance: _Instance, name: str, limit: float) -> None:
        """Wait for an abandoned call: its end within the grace is a `late_answer`; its gRPC
        deadline passing means the plugin is still running it, and it is restarted."""
        try:
            await rpc
            failure: BaseException | None = None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the handle stops (and the RPC with it)
            return  # the channel closed under the call: the process is going away
        except Exception as exc:  # the end of a call nobody waits for any more
            failure = exc
        if self._stopping or self._instance is not instance:
            return
        grace = self.options.stop_grace_s
        if isinstance(failure, grpc.aio.AioRpcError) and failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            self.kill_current(
                f"was restarted: its call to '{name}' did not return within {grace:g} s after its {limit:g} s deadline"
            )
        else:
            self._emit("late_answer", f"the call to '{name}' returned within {grace:g} s after its deadline")

    def _mark_dead(self, instance: _Instance) -> None:
        """A call saw `instance` die: later calls wait for the restart instead of reaching it."""
        if self._instance is instance and not self._stopping:
            self.status = "restarting"
            self._ready.clear()

    async def _wait_until_running(self, timeout: float) -> _Instance:
        try:
            async with asyncio.timeout(timeout):
                return await self._current()
        except TimeoutError:
            raise CallTimedOut(
                f"plugin '{self.plugin_id}' was not ready within {timeout:g} s ({self.status}: {self.last_error})"
            ) from None

    async def _call_lane(self, instance: _Instance, lane: InvokeLaneClient, call: Call, timeout: float) -> Outcome:
        body = b'{"kind":"%s","payload":%s}' % (call.kind.encode(), encoded(call.payload))
        try:
            result = await lane.call(call.handler, body, timeout, actions=call.bot)
        except TimeoutError:
            raise self._deadline_passed(call.handler, timeout) from None
        except InvokeLaneClosed as exc:
            raise await self._connection_lost(instance, call.handler, str(exc)) from None
        except InvokeLaneCallFailed as failed:
            return Outcome(None, (), PluginError.from_json(failed.error))
        outcome = self._answers.read(result)
        if outcome is None:
            return Outcome.failed(
                "protocol_error", f"plugin '{self.plugin_id}' sent an outcome that is not JSON: {result[:200]!r}"
            )
        return outcome

    async def _call_error(
        self, instance: _Instance, name: str, exc: grpc.aio.AioRpcError, limit: float
    ) -> InvocationError:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self._deadline_passed(name, limit)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL):
            return await self._connection_lost(instance, name, exc.details())
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return InvocationError(
                f"plugin '{self.plugin_id}' does not implement {self.protocol} calls: {exc.details()}",
                code="protocol_error",
            )
        return InvocationError(exc.details() or code.name, code="plugin_error")

    def _deadline_passed(self, name: str, limit: float) -> CallTimedOut:
        if self.options.kill_on_timeout:
            self.kill_current(f"was killed because '{name}' passed its deadline of {limit:g} s")
        return CallTimedOut(f"call to '{name}' of plugin '{self.plugin_id}' passed its deadline of {limit:g} s")

    async def _connection_lost(self, instance: _Instance, name: str, details: str) -> InvocationError:
        """The error of a call whose connection broke: `crashed` when the process exited."""
        exit_code = await _exit_code_soon(instance.process, 1.0)
        if exit_code is not None and not self._stopping:
            self._mark_dead(instance)
            await asyncio.wait(instance.launched.pumps, timeout=1.0)  # its last words are still in the pipes
            tail = self._log.tail_text()
            limit = instance.spec.limit_exits.get(exit_code)
            if limit is not None and not instance.exit_reason:
                return CallTimedOut(
                    f"plugin '{self.plugin_id}' {limit} during the call to '{name}' (exit code {exit_code}); "
                    "it is being restarted" + (f"; stderr tail:\n{tail}" if tail else "")
                )
            return InvocationError(
                f"plugin '{self.plugin_id}' {instance.exit_reason or 'crashed'} during the call to '{name}' "
                f"(exit code {exit_code}); it is being restarted" + (f"; stderr tail:\n{tail}" if tail else ""),
                code="crashed",
                retryable=True,
            )
        message = f"plugin '{self.plugin_id}' is unavailable: {details}"
        return InvocationError(message, code="unavailable", retryable=True)

    def channel(self) -> grpc.aio.Channel:
        """The current gRPC channel, for plugin-specific services (go-plugin's GRPCClient).

        It changes when the plugin restarts; fetch it again after a `restarted` event.
        """
        if self._instance is None:
            raise InvocationError(f"plugin '{self.plugin_id}' is {self.status}", code="unavailable")
        return self._instance.connection.channel

    # status -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Runtime status: running / stopped / error (+ pid, protocol version, address, started_at)."""
        instance = self._instance
        data: dict[str, Any] = {
            "status": self.status,
            "protocol": self.protocol,
            "restarts": self.restarts,
        }
        if instance is not None:
            hs = instance.launched.handshake
            data.update(
                pid=instance.process.pid,
                protocol_version=hs.app_version,
                network=hs.network,
                address=hs.address,
                started_at=instance.started_at.isoformat(),
                tls=hs.server_cert_der is not None,
                invoke_lane=instance.lane is not None and not instance.lane.closed,
            )
            if instance.host_server is not None:
                data["host_services"] = str(instance.host_server.path)
        if self.last_error:
            data["error"] = self.last_error
        if self._last_exit is not None:
            data["last_exit_code"] = self._last_exit
        return data

    async def health(self) -> Health:
        info = self.info()
        instance = self._instance
        if self.status in ("stopped", "error") or instance is None:
            return Health("down", self.last_error or self.status, info)
        if self.status != "running":
            return Health("degraded", self.status, info)
        try:
            ok = await instance.connection.check_health(timeout=self.options.health_timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            return Health("degraded", f"health check failed: {rpc_text(exc)}", info)
        if not ok:
            return Health("degraded", "plugin reports NOT_SERVING", info)
        if self.protocol == "jank":
            try:
                answer = await instance.connection.jank.HealthCheck(
                    jank_pb2.HealthCheckRequest(), timeout=self.options.health_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    return Health("degraded", f"HealthCheck failed: {rpc_text(exc)}", info)
            else:
                if answer.status != "healthy":
                    return Health("degraded", f"plugin reports '{answer.status or 'unknown'}'", info)
        return Health("ok", "", info)

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        instance = await self._current()
        if self.protocol != "plughost.v1":
            self.request.logger.debug("plugin '%s' speaks Jank's protocol: no reconfigure call", self.plugin_id)
            return
        payload = json_bytes(dict(config))
        try:
            await instance.connection.v1.Reconfigure(
                v1.ReconfigureRequest(config_json=payload), timeout=self.options.call_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise await self._call_error(instance, "reconfigure", exc, self.options.call_timeout_s) from None

    async def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if self.protocol != "plughost.v1":
            return
        instance = await self._current()
        try:
            await instance.connection.v1.SetEnabled(
                v1.SetEnabledRequest(enabled=enabled), timeout=self.options.call_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise await self._call_error(instance, "set_enabled", exc, self.options.call_timeout_s) from None


async def _run_closers(closers: list[Callable[[], Any]]) -> None:
    """Close what an instance opened beside its process (TLS bridge, host services server)."""
    for close in closers:
        with contextlib.suppress(Exception):
            result = close()
            if asyncio.iscoroutine(result):
                await result


def _completion(rpc: Any) -> tuple[asyncio.Future[bool], Callable[[bool], None]]:
    """A plain future that turns True when `rpc` completes, and what ends it sooner (`end(False)`).

    A caller waits on it rather than on the RPC: cancelling a gRPC call replaces the cancellation
    with one of its own, which loses the message that tells a deadline (`deadline_passed`) from a
    caller that went away."""
    ended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def end(answered: bool) -> None:
        if not ended.done():
            ended.set_result(answered)

    rpc.add_done_callback(lambda _: end(True))
    return ended, end


async def _exit_code_soon(process: ChildProcess, timeout: float) -> int | None:
    if process.returncode is not None:
        return process.returncode
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        return None


__all__ = ["ProcessPluginHandle", "ProcessStatus"]
