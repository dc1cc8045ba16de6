"""Host callbacks a native plugin may call: `host.log`, `host.http.do`, `host.bot.send`, and the
message bus and shared state (`host.bus.*`, `host.state.*`: `plughost.runtime.host_services`).

One `HostCallbacks` object serves one loaded library. Its trampoline is reached from any
thread — re-entrantly inside a host → plugin call, or from the plugin's own threads at any time,
even after unload was requested (then every callback answers `host_call_failed`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import functools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from plughost.runtime.host_services import HOST_OPERATIONS, HostServices, error_fields
from plughost.runtime.native.abi import Buffer, CAllocator, HostCallFn
from plughost.runtime.native.envelope import encode_error, encode_ok, get_ci, get_ci_any

HOST_CALL_FAILED = "host_call_failed"
DEFAULT_HTTP_TIMEOUT_S = 30.0
HOST_OPERATION_TIMEOUT_S = 30.0  # a bus or state callback's wait for the host (beyond a request's timeout)
LOG_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class CallbackError(Exception):
    """A host callback refused or failed; becomes an error envelope (`host_call_failed` by default)."""

    def __init__(self, message: str, code: str = HOST_CALL_FAILED) -> None:
        super().__init__(message)
        self.code = code


PENDING_SENDS_LIMIT = 256  # sends made outside any call that wait when nothing delivers them


@dataclass
class SendQueue:
    """Proactive sends (`host.bot.send`) made during one host → plugin call, in order."""

    sends: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CallbackStats:
    """How often each callback ran and failed (shown by health)."""

    calls: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


class HostCallbacks:
    """The per-library host context: permission checks, callback dispatch, send queues."""

    def __init__(
        self,
        plugin_id: str,
        logger: logging.Logger,
        allocator: CAllocator,
        *,
        network: bool = True,
        http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
    ) -> None:
        self.plugin_id = plugin_id
        self.logger = logger
        self.network = network
        self.http_timeout_s = http_timeout_s
        self.retired = False
        self.unloading = False
        self.stats = CallbackStats()
        self.allocator = allocator
        self._lock = threading.Lock()
        self._local = threading.local()
        self._by_callback_id: dict[str, SendQueue] = {}
        self._pending_sends: deque[dict[str, Any]] = deque(maxlen=PENDING_SENDS_LIMIT)
        self.dropped_sends = 0
        self.outside_calls: Callable[[dict[str, Any]], None] | None = None
        """Takes a `host.bot.send` made outside any call (from any thread); else it waits, bounded."""
        self._http: httpx.Client | None = None
        self._handlers: dict[str, Callable[[Any], Any]] = {
            "host.log": self._log,
            "host.http.do": self._http_do,
            "host.bot.send": self._bot_send,
        }
        for operation in HOST_OPERATIONS:
            self._handlers[f"host.{operation}"] = functools.partial(self._host_operation, operation)
        self._services: tuple[HostServices, asyncio.AbstractEventLoop] | None = None
        # the token plugins hand back as host_ctx; its address is stable while `self` lives
        self.token = ctypes.c_int(1)
        self.token_address: int = ctypes.addressof(self.token)
        self.trampoline = HostCallFn(self._trampoline)

    def serve_shared(self, services: HostServices, loop: asyncio.AbstractEventLoop) -> None:
        """Answer `host.bus.*` and `host.state.*` with `services`, run on `loop` (the host's)."""
        self._services = (services, loop)

    # send queues -------------------------------------------------------------------------------
    def open_call(self, callback_id: str) -> SendQueue:
        """Start collecting `host.bot.send` for a call running on this thread."""
        queue = SendQueue()
        self._local.queue = queue
        with self._lock:
            self._by_callback_id[callback_id] = queue
        return queue

    def enter_call(self) -> None:
        """This thread is now inside a host → plugin call (callbacks stay allowed while unloading)."""
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def exit_call(self) -> None:
        self._local.depth -= 1

    def close_call(self, callback_id: str) -> None:
        self._local.queue = None
        with self._lock:
            self._by_callback_id.pop(callback_id, None)

    def take_pending_sends(self) -> list[dict[str, Any]]:
        """Sends made outside any call while nothing took them, oldest first; clears them."""
        with self._lock:
            sends = list(self._pending_sends)
            self._pending_sends.clear()
        return sends

    def close(self) -> None:
        """Refuse every later callback and release the HTTP client."""
        self.retired = True
        http, self._http = self._http, None
        if http is not None:
            http.close()

    # dispatch ----------------------------------------------------------------------------------
    def _trampoline(self, ctx: int | None, method: bytes | None, req: int | None, req_len: int, resp: Any) -> int:
        try:
            if resp:
                resp[0].ptr = None
                resp[0].len = 0
            if not ctx or method is None or not resp:
                return 1
            if ctx != self.token_address:
                return 1
            data = ctypes.string_at(req, req_len) if req and req_len else b""
            reply = self.dispatch(method.decode("utf-8", errors="replace"), data)
            ptr, length = self.allocator.copy_out(reply)
            resp[0].ptr = ptr
            resp[0].len = length
            return 0
        except BaseException:  # nothing may unwind into C
            self.logger.exception("host callback of plugin '%s' failed unexpectedly", self.plugin_id)
            return 1

    def callbacks_on_this_thread(self) -> int:
        """How many callbacks this thread has made so far (to tell whether a call called back)."""
        count: int = getattr(self._local, "count", 0)
        return count

    def dispatch(self, method: str, data: bytes) -> bytes:
        """Run one callback; always returns an envelope."""
        self._local.count = getattr(self._local, "count", 0) + 1
        with self._lock:
            self.stats.calls[method] = self.stats.calls.get(method, 0) + 1
        try:
            if self.retired or (self.unloading and not getattr(self._local, "depth", 0)):
                raise CallbackError(f"plugin '{self.plugin_id}' was unloaded; callback {method} refused")
            handler = self._handlers.get(method)
            if handler is None:
                raise CallbackError(f"unsupported host callback {method}")
            try:
                request = json.loads(data) if data else {}
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CallbackError(f"{method}: request is not valid JSON ({exc})") from None
            if not isinstance(request, Mapping):
                raise CallbackError(f"{method}: request must be a JSON object")
            return encode_ok(handler(request))
        except CallbackError as exc:
            with self._lock:
                self.stats.failures[method] = self.stats.failures.get(method, 0) + 1
            self.logger.warning("plugin '%s': host callback failed: %s", self.plugin_id, exc)
            return encode_error(exc.code, str(exc))
        except Exception as exc:
            with self._lock:
                self.stats.failures[method] = self.stats.failures.get(method, 0) + 1
            self.logger.warning("plugin '%s': host callback %s failed: %s", self.plugin_id, method, exc)
            return encode_error(HOST_CALL_FAILED, f"{method}: {type(exc).__name__}: {exc}")

    # callbacks ---------------------------------------------------------------------------------
    def _log(self, request: Mapping[str, Any]) -> dict[str, Any]:
        level_name = str(get_ci(request, "level") or "debug").lower()
        level = LOG_LEVELS.get(level_name, logging.DEBUG)
        message = str(get_ci(request, "message") or "")
        fields = get_ci(request, "fields") or {}
        suffix = ""
        if isinstance(fields, Mapping) and fields:
            suffix = " " + " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
        self.logger.log(level, "[%s] %s%s", self.plugin_id, message, suffix, extra={"plugin_fields": fields})
        return {}

    def _http_do(self, request: Mapping[str, Any]) -> dict[str, Any]:
        inner = get_ci(request, "request")
        if isinstance(inner, Mapping):
            request = inner
        if not self.network:
            raise CallbackError(
                f"host.http.do refused: plugin '{self.plugin_id}' lacks the network permission "
                "(set permissions.network = true in its plugin.toml)"
            )
        url = str(get_ci(request, "url") or "")
        if not url.startswith(("http://", "https://")):
            raise CallbackError(f"host.http.do: url must be http:// or https://, got {url!r}")
        method = str(get_ci(request, "method") or "GET").upper()
        headers = _header_pairs(get_ci(request, "headers"))
        body_b64 = get_ci(request, "body")
        try:
            body = base64.b64decode(body_b64, validate=True) if body_b64 else b""
        except (binascii.Error, TypeError, ValueError) as exc:
            raise CallbackError(f"host.http.do: body is not standard base64 ({exc})") from None
        client = self._client()
        try:
            response = client.request(method, url, headers=headers, content=body or None)
        except httpx.HTTPError as exc:
            raise CallbackError(f"host.http.do {method} {url}: {type(exc).__name__}: {exc}") from None
        out_headers: dict[str, list[str]] = {}
        for key, value in response.headers.multi_items():
            out_headers.setdefault(_canonical_header(key), []).append(value)
        self.logger.debug("plugin '%s' http %s %s -> %s", self.plugin_id, method, url, response.status_code)
        return {
            "StatusCode": response.status_code,
            "Headers": out_headers,
            "Body": base64.b64encode(response.content).decode("ascii"),
        }

    def _bot_send(self, request: Mapping[str, Any]) -> dict[str, Any]:
        send = normalise_send(request)
        callback_id = get_ci(request, "host_callback_id")
        with self._lock:
            queue = self._by_callback_id.get(str(callback_id)) if callback_id else None
        queue = queue or getattr(self._local, "queue", None)
        if queue is not None:
            queue.sends.append(send)
            return {"queued": len(queue.sends)}
        if self.outside_calls is not None:  # the host sends it through a connected bot
            self.outside_calls(send)
            return {"queued": 1}
        with self._lock:
            if len(self._pending_sends) == self._pending_sends.maxlen:
                self.dropped_sends += 1
                self.logger.warning(
                    "plugin '%s': %d send(s) made outside any call were dropped (nothing delivers them and "
                    "%d wait already)", self.plugin_id, self.dropped_sends, PENDING_SENDS_LIMIT,
                )  # fmt: skip
            self._pending_sends.append(send)
            return {"queued": len(self._pending_sends)}

    def _host_operation(self, operation: str, request: Mapping[str, Any]) -> Any:
        """`host.bus.*`/`host.state.*`: run on the host's loop, this plugin thread waiting for the answer."""
        if self._services is None:
            raise CallbackError(f"host.{operation}: the message bus and shared state are not available here")
        services, loop = self._services
        if loop.is_closed():
            raise CallbackError(f"host.{operation}: the host is stopping")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise CallbackError(
                f"host.{operation} was called on the host's event loop thread (an inline call); "
                "it runs from the plugin's call threads (do not set an inline budget for this method)"
            )
        extra = request.get("timeout")
        timeout = HOST_OPERATION_TIMEOUT_S + (extra if isinstance(extra, int | float) and extra > 0 else 0)
        future = asyncio.run_coroutine_threadsafe(services.run(operation, request), loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise CallbackError(f"host.{operation}: the host did not answer within {timeout:g} s") from None
        except Exception as exc:
            failure = error_fields(exc)
            raise CallbackError(f"host.{operation}: {failure['message']}", failure["code"]) from None

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.http_timeout_s, follow_redirects=False)
            return self._http


def normalise_send(request: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a `host.bot.send` request: target group/private, its id, and a message."""
    target = str(get_ci(request, "target") or "").lower()
    group_id = get_ci(request, "group_id")
    user_id = get_ci(request, "user_id")
    if not target:
        target = "group" if group_id else "private"
    if target not in ("group", "private"):
        raise CallbackError(f"host.bot.send: target must be 'group' or 'private', got {target!r}")
    if target == "group" and not group_id:
        raise CallbackError("host.bot.send: a group send needs group_id")
    if target == "private" and not user_id:
        raise CallbackError("host.bot.send: a private send needs user_id")
    message = get_ci_any(request, "message", "segments", "text")
    if isinstance(message, str):
        message = [{"type": "text", "data": {"text": message}}]
    if not isinstance(message, list) or not message:
        raise CallbackError("host.bot.send: message must be non-empty text or a list of segments")
    for segment in message:
        if not isinstance(segment, Mapping) or not isinstance(segment.get("type"), str):
            raise CallbackError(f'host.bot.send: segment {segment!r} is not {{"type": …, "data": {{…}}}}')
    return {"target": target, "group_id": group_id, "user_id": user_id, "message": message}


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if isinstance(headers, Mapping):
        for key, values in headers.items():
            for value in values if isinstance(values, list) else [values]:
                pairs.append((str(key), str(value)))
    return pairs


def _canonical_header(key: str) -> str:
    """Go's canonical MIME header spelling (`content-type` → `Content-Type`)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))


__all__ = ["HOST_CALL_FAILED", "Buffer", "CallbackError", "HostCallbacks", "SendQueue"]
