"""`NativePluginHandle`: a loaded native library behind the `PluginHandle` protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from plughost.errors import InvocationError, PluginStateError
from plughost.runtime.native.bot import BOT_CAPABILITY, bot_request, bot_value
from plughost.runtime.native.callbacks import HostCallbacks
from plughost.runtime.native.envelope import NativeCallError, decode_reply
from plughost.runtime.native.inline import InlinePolicy
from plughost.runtime.native.library import NativeLibrary
from plughost.runtime.native.management import (
    MANAGEMENT_HANDLE,
    handle_request,
    register_request,
    response_value,
    route_table,
)
from plughost.runtime.native.pool import DaemonPool
from plughost.runtime.native.registration import (
    Registration,
    RegistrationError,
    lifecycle_request,
    parse_registration,
)
from plughost.runtime.native.settings import NativeSettings
from plughost.sdk.call import (
    BOT_KINDS,
    INVALID_ANSWER,
    INVALID_REQUEST,
    UNKNOWN_HANDLER,
    ActionSink,
    Call,
    Outcome,
    PluginError,
    actions_from_json,
)
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import Health
from plughost.sdk.http import HttpRoutes

T = TypeVar("T")
POOL_JOIN_S = 2.0


class NativePluginHandle:
    """One native library serving one plugin id.

    Calls run on daemon threads (never on the event loop) and may overlap. `stop` refuses new
    calls, waits for in-flight calls, runs the plugin's `shutdown` and retires the host context;
    the library itself is never unloaded (see `docs/native.md`).
    """

    def __init__(
        self,
        plugin_id: str,
        library: NativeLibrary,
        callbacks: HostCallbacks,
        *,
        config: Mapping[str, Any],
        enabled: bool,
        priority: int,
        version: str,
        settings: NativeSettings | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.library = library
        self.callbacks = callbacks
        self.config: dict[str, Any] = dict(config)
        self.enabled = enabled
        self.priority = priority
        self.file_version = version
        self.settings = settings or NativeSettings()
        self.registration: Registration | None = None
        self.descriptor = Descriptor(id=plugin_id, version=version or "0.0.0", priority=priority)
        self.inline = InlinePolicy(self.settings.inline_budget_us)
        self._watchers = 0
        self._pool = DaemonPool(f"native-{plugin_id}", self.settings.max_call_threads)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._abandoned = 0
        self._abandoned_total = 0
        self._callback_ids = itertools.count(1)
        self._stopping = False
        self._stopped = False
        self._shutdown_error: str | None = None
        self._deferred_shutdown = False

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """`plugin.register`, then `bot.describe` and `management.register` when declared."""
        await self._register("plugin.register")

    def deliver_outside_calls(self, sink: ActionSink) -> None:
        """Hand `host.bot.send` calls made outside any call (from the plugin's own threads) to
        `sink`, on this event loop, in order."""
        loop = asyncio.get_running_loop()

        def deliver(send: dict[str, Any]) -> None:
            actions = actions_from_json([send])
            with contextlib.suppress(RuntimeError):  # the loop closed: the host is gone
                loop.call_soon_threadsafe(sink, self.plugin_id, actions)

        self.callbacks.outside_calls = deliver

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        await self._register("plugin.reconfigure")

    async def set_enabled(self, enabled: bool) -> None:
        if enabled != self.enabled:
            self.enabled = enabled
            await self._register("plugin.reconfigure")

    async def health(self) -> Health:
        info = self.stats()
        if self._stopped:
            return Health("down", "stopped", info)
        if self._abandoned:
            detail = f"{self._abandoned} native call(s) still running after their caller gave up"
            return Health("degraded", detail, info)
        if self.registration is not None and not self.registration.active:
            return Health("degraded", f"inactive: {self.registration.inactive_reason}", info)
        return Health("ok", "", info)

    def stats(self) -> dict[str, Any]:
        return {
            "in_flight": self._in_flight,
            "abandoned_running": self._abandoned,
            "abandoned_total": self._abandoned_total,
            "threads": self._pool.threads,
            "offloaded_calls": self._pool.submitted,
            "inline_methods": sorted(self.inline.inline_methods),
            "callbacks": dict(self.callbacks.stats.calls),
            "callback_failures": dict(self.callbacks.stats.failures),
        }

    @property
    def stopping(self) -> bool:
        """True once `stop` was called (no new calls are accepted)."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def stop(self) -> None:
        """Refuse new calls, wait for in-flight ones, call `shutdown`, retire the host context.

        If calls are still running after the grace period (a hung plugin), `shutdown` is
        deferred until the last one returns; the library stays loaded either way.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self.callbacks.unloading = True  # only threads inside a call (or shutdown) may call back now
        try:
            await self.wait_calls(lambda in_flight, _: in_flight == 0, self.settings.stop_grace_s)
        except TimeoutError:
            with self._lock:
                self._deferred_shutdown = self._in_flight > 0
            if self._deferred_shutdown:
                self.callbacks.logger.warning(
                    "plugin '%s': %d call(s) still running after %.1f s; shutdown deferred until they return",
                    self.plugin_id,
                    self._in_flight,
                    self.settings.stop_grace_s,
                )
                self._pool.shutdown()
                self._stopped = True
                return
        await self._finish_shutdown()

    async def wait_calls(self, predicate: Callable[[int, int], bool], timeout: float) -> None:
        """Wait until `predicate(in_flight, abandoned_running)` holds; raises TimeoutError."""
        loop = asyncio.get_running_loop()
        reached = asyncio.Event()
        give_up = threading.Event()

        def watch() -> None:
            with self._idle:
                self._watchers += 1
                try:
                    self._idle.wait_for(lambda: give_up.is_set() or predicate(self._in_flight, self._abandoned))
                finally:
                    self._watchers -= 1
            if not give_up.is_set():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(reached.set)

        threading.Thread(target=watch, name=f"native-{self.plugin_id}-watch", daemon=True).start()
        try:
            await asyncio.wait_for(reached.wait(), timeout)
        finally:
            give_up.set()
            with self._idle:
                self._idle.notify_all()

    async def _finish_shutdown(self) -> None:
        try:
            await asyncio.wait_for(self._offload(self._shutdown_in_call), self.settings.stop_grace_s)
        except TimeoutError:
            self._shutdown_error = f"shutdown did not return within {self.settings.stop_grace_s:g} s"
            self.callbacks.logger.warning("plugin '%s': %s", self.plugin_id, self._shutdown_error)
        except Exception as exc:
            self._shutdown_error = str(exc)
        finally:
            self.callbacks.close()
            self._pool.shutdown()
            self._stopped = True
        if not await asyncio.to_thread(self._pool.join, POOL_JOIN_S):
            self.callbacks.logger.warning("plugin '%s': worker threads did not exit", self.plugin_id)

    # calls -----------------------------------------------------------------------------------
    async def call(self, call: Call) -> Outcome:
        """A bot call goes to `bot.<kind>` with QimenBot's fields, an `http` call to
        `management.handle`; any other handler name is an ABI method."""
        method = call.handler
        try:
            if call.kind in BOT_KINDS:
                return await self._bot_call(call)
            if call.kind == "http":
                return await self._http_call(call)
            payload = self._request(method, call.payload)
            if self.inline.allows(method):  # learned-inline methods: no extra step on the hot path
                return Outcome(self._reply(method, *self._timed_call(method, payload)))
            return Outcome(self._reply(method, *await self._offload(self._timed_call, method, payload)))
        except InvocationError as exc:
            return Outcome(None, (), PluginError(exc.code, str(exc), retryable=exc.retryable))

    async def call_abi(self, method: str, request: Any) -> Any:
        """One host → plugin call of an ABI method with a JSON request (None = empty, bytes = verbatim);
        raises `NativeCallError` (an `InvocationError`) when it fails."""
        payload = self._request(method, request)
        if self.inline.allows(method):
            return self._reply(method, *self._timed_call(method, payload))
        return self._reply(method, *await self._offload(self._timed_call, method, payload))

    def _request(self, method: str, request: Any) -> bytes:
        self._check_open(method)
        return _encode(request)

    def _reply(self, method: str, rc: int, data: bytes, elapsed: float, callbacks: int) -> Any:
        self.inline.observe(method, elapsed, callbacks)
        return decode_reply(self.plugin_id, method, rc, data)

    def _timed_call(self, method: str, payload: bytes) -> tuple[int, bytes, float, int]:
        before = self.callbacks.callbacks_on_this_thread()
        started = time.perf_counter()
        rc, data = self._call_counted(method, payload)
        elapsed = time.perf_counter() - started
        return rc, data, elapsed, self.callbacks.callbacks_on_this_thread() - before

    def call_blocking(self, method: str, request: Any) -> Any:
        """The same call on the current thread (for worker processes and benchmarks, never the loop)."""
        rc, data = self._call_counted(method, _encode(request))
        return decode_reply(self.plugin_id, method, rc, data)

    def take_pending_sends(self) -> list[dict[str, Any]]:
        """`host.bot.send` calls made outside any bot call (from plugin threads), oldest first."""
        return self.callbacks.take_pending_sends()

    async def _http_call(self, call: Call) -> Outcome:
        """`management.handle` with the request in its ABI shape; the answer as an `HttpResponse` value."""
        where = f"plugin '{self.plugin_id}' {MANAGEMENT_HANDLE}"
        if call.handler != MANAGEMENT_HANDLE:
            return Outcome.failed(UNKNOWN_HANDLER, f"{where}: an http call must name it, not {call.handler!r}")
        try:
            request = handle_request(call.payload)
        except ValueError as exc:
            return Outcome.failed(INVALID_REQUEST, f"{where}: invalid http request: {exc}")
        result = await self.call_abi(MANAGEMENT_HANDLE, request)  # a NativeCallError: `call` makes it the error
        try:
            return Outcome(response_value(result))
        except ValueError as exc:
            return Outcome.failed(INVALID_ANSWER, f"{where} answered a malformed response: {exc}")

    async def _bot_call(self, call: Call) -> Outcome:
        method = f"bot.{call.kind}"
        self._check_open(method)
        callback_id = f"{self.plugin_id}:{next(self._callback_ids)}"
        payload = _encode(bot_request(call.kind, call.handler, call.payload, callback_id))
        rc, data, queued = await self._offload(self._bot_call_counted, method, payload, callback_id)
        try:
            sends = actions_from_json(queued)
        except (TypeError, ValueError, KeyError) as exc:
            return Outcome.failed("invalid_answer", f"plugin '{self.plugin_id}' queued a malformed send: {exc}")
        try:
            value = bot_value(call.kind, decode_reply(self.plugin_id, method, rc, data))
        except ValueError as exc:
            return Outcome.failed("invalid_answer", f"plugin '{self.plugin_id}' {method}: {exc}", sends=sends)
        except NativeCallError as exc:  # sends queued before the failure still go out
            return Outcome(None, sends, PluginError(exc.code, str(exc), retryable=exc.retryable))
        return Outcome(value, sends)

    def _bot_call_counted(self, method: str, payload: bytes, callback_id: str) -> tuple[int, bytes, list[Any]]:
        queue = self.callbacks.open_call(callback_id)
        try:
            rc, data = self._call_counted(method, payload)
        finally:
            self.callbacks.close_call(callback_id)
        return rc, data, queue.sends

    def _check_open(self, method: str) -> None:
        if self._stopping:
            raise PluginStateError(f"plugin '{self.plugin_id}' is stopping or stopped; call {method} refused")

    def _call_counted(self, method: str, payload: bytes) -> tuple[int, bytes]:
        with self._lock:
            if self._stopping:
                raise PluginStateError(f"plugin '{self.plugin_id}' is stopping; call {method} refused")
            self._in_flight += 1
            if self._watchers:
                self._idle.notify_all()
        self.callbacks.enter_call()
        try:
            return self.library.call(method, payload)
        finally:
            self.callbacks.exit_call()
            with self._lock:
                self._in_flight -= 1
                last = self._in_flight == 0
                if self._watchers:
                    self._idle.notify_all()
                deferred = last and self._deferred_shutdown
                self._deferred_shutdown = self._deferred_shutdown and not deferred
            if deferred:
                self._deferred_finish()

    def _deferred_finish(self) -> None:
        """The last hung call returned after `stop`: now run `shutdown` (on this worker thread)."""
        try:
            self._shutdown_in_call()
        except Exception as exc:
            self._shutdown_error = str(exc)
        finally:
            self.callbacks.close()

    def _shutdown_in_call(self) -> None:
        self.callbacks.enter_call()
        try:
            self.library.shutdown()
        finally:
            self.callbacks.exit_call()

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        future = self._pool.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # already running in native code: it cannot be stopped
                self._mark_abandoned(future)
            raise

    def _mark_abandoned(self, future: Any) -> None:
        with self._lock:
            self._abandoned += 1
            self._abandoned_total += 1

        def done(_: Any) -> None:
            with self._lock:
                self._abandoned -= 1
                self._idle.notify_all()

        future.add_done_callback(done)

    # registration ----------------------------------------------------------------------------
    async def _register(self, method: str) -> None:
        request = lifecycle_request(self.config, enabled=self.enabled, priority=self.priority)
        result = await self.call_abi(method, request)
        try:
            registration = parse_registration(result)
        except RegistrationError as exc:
            raise NativeCallError(f"plugin '{self.plugin_id}' {method}: {exc}", code="unsupported_schema") from None
        self.registration = registration
        commands: Descriptor | None = None
        routes = HttpRoutes()
        reason = registration.inactive_reason
        if registration.active and BOT_CAPABILITY in registration.capabilities:
            try:
                described = await self.call_abi("bot.describe", {})
                if not isinstance(described, Mapping):
                    raise ValueError("bot.describe must answer a JSON object")
                commands = Descriptor.from_json(described, id=self.plugin_id)
            except (InvocationError, ValueError, KeyError, TypeError) as exc:
                reason = f"bot.describe failed: {exc}"
        if registration.active and "management_api" in registration.capabilities:
            try:
                result = await self.call_abi(
                    "management.register", register_request(self.plugin_id, registration.metadata)
                )
                routes = route_table(self.plugin_id, result)
            except InvocationError as exc:
                routes.rejected.append(f"management.register failed: {exc}")
        self.descriptor = self._describe(registration, commands, routes, reason)

    def _describe(
        self, registration: Registration, bot: Descriptor | None, routes: HttpRoutes, reason: str | None
    ) -> Descriptor:
        meta = registration.metadata
        metadata: dict[str, Any] = {
            "runtime": "native",
            "library": str(self.library.path),
            "abi_version": 1,
            "schema_version": registration.schema_version,
            "plugin": meta,
            "declared_capabilities": sorted(registration.capabilities),
            "capability_values": registration.capability_values,
            "active": reason is None,
            "inactive_reason": reason,
            "management": {"rejected": list(routes.rejected)},
        }
        descriptor = Descriptor(
            id=self.plugin_id,
            version=self.file_version or meta.get("Version") or "0.0.0",  # a `-v<version>` file name wins
            capabilities=registration.capabilities if reason is None else frozenset(),
            priority=self.priority,
            metadata=metadata,
            http=tuple(routes.specs) if reason is None else (),
        )
        if bot is not None and reason is None:
            descriptor = replace(
                descriptor,
                commands=bot.commands,
                routes=bot.routes,
                interceptors=bot.interceptors,
                methods=bot.methods,
                subscriptions=bot.subscriptions,
                schedules=bot.schedules,
                matchers=bot.matchers,
            )
        return descriptor


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(request: Any) -> bytes:
    if request is None:
        return b""
    if isinstance(request, bytes | bytearray | memoryview):
        return bytes(request)
    return _ENCODER.encode(request).encode()


__all__ = ["NativePluginHandle", "NativeSettings", "Path"]
