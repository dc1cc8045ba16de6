"""The invoke lane: a framed unix-socket side channel for `Invoke` between host and worker.

gRPC's Python server costs ~0.5 ms per call, more than a whole Go plugin round trip. A
`plughost worker` therefore also listens on a second unix socket, next to its go-plugin socket,
and names it in `DescribeResponse.invoke_lane`. The host then sends `Invoke` calls there; all
other RPCs (health, stdio, broker, describe, reconfigure, shutdown) stay on gRPC, and a plugin
that names no lane is called over gRPC as before.

Frames, both ways: a 9-byte header `!IIB` (body length, call id, kind) and the body.

| kind          | direction     | body                                                          |
|---------------|---------------|---------------------------------------------------------------|
| AUTH          | host → worker | the worker's secret; the first frame of every connection      |
| CALL          | host → worker | `!H` name length, UTF-8 name, JSON `{"kind", "payload"}`      |
| RESULT        | worker → host | the call's outcome JSON `{"value", "sends"?, "error"?}`       |
| ERROR         | worker → host | JSON `{"code", "message", "type"}`: the worker failed, not the handler |
| CANCEL        | host → worker | empty: the caller gave up; the handler is cancelled           |
| ACTION        | worker → host | JSON `{"id", "action", "params"}`: a bot action made during the call |
| ACTION_RESULT | host → worker | JSON `{"id", "data"}` or `{"id", "error"}`                    |

Calls are multiplexed by id; ACTION frames carry the id of the call they belong to, and the host
runs them on that call's bot. An ACTION named `plughost.<operation>` is one of the host's
services instead (the message bus and shared state, `plughost.runtime.host_services`), run on the
plugin's own views; the worker sends those with call id 0, inside a call or outside any, and a
failure answers `{"id", "error", "failure": {"kind", "code", "message"}}`.

Frames one side makes in the same event-loop iteration leave in one write (`FrameWriter`): with many
calls in flight, a batch of calls costs the worker one wake-up, and its answers, made together,
cost the host one.

A frame the reader does not understand closes the connection (pending calls then fail with
`InvokeLaneClosed`, and the host falls back to gRPC).

Any process of the same user can connect to the socket. Only the host knows the worker's secret
(handed to the worker on an inherited pipe), so a connection whose first frame is not AUTH with
that secret is closed before anything else is read from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import itertools
import json
import logging
import os
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from plughost.runtime.host_services import HostLink, HostServiceError, error_fields, raise_remote
from plughost.sdk.bot import BotApi
from plughost.sdk.deadlines import DeadlineClock, FutureDeadline, deadlines_of
from plughost.sdk.shared import NotJsonError
from plughost.sdk.stepping import Resume
from plughost.sdk.tasks import TaskOwner

HEADER = struct.Struct("!IIB")
NAME_LENGTH = struct.Struct("!H")
MAX_BODY = 2**31 - 1
MAX_AUTH_BODY = 1024
AUTH_TIMEOUT_S = 5.0
HOST_ACTION_PREFIX = "plughost."
HOST_OPERATION_TIMEOUT_S = 30.0  # beyond a bus request's own timeout
log = logging.getLogger(__name__)


class Kind(IntEnum):
    CALL = 1
    RESULT = 2
    ERROR = 3
    CANCEL = 4
    ACTION = 5
    ACTION_RESULT = 6
    AUTH = 7


_KINDS = {kind.value: kind for kind in Kind}  # a dict lookup: `Kind(n)` costs a microsecond per frame


class InvokeLaneClosed(ConnectionError):
    """The lane's connection ended (the worker exited, or a peer sent a malformed frame)."""


class InvokeLaneProtocolError(ValueError):
    """A frame that breaks the lane's format."""


class InvokeLaneCallFailed(Exception):
    """The handler failed in the worker; `error` is the worker's error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error


class InvokeLaneActionFailed(Exception):
    """A bot action the worker asked the host to run failed there (the message says why)."""


class FrameSink(Protocol):
    """Where a `FrameWriter` writes: each end's `_LaneConnection` (an `asyncio.StreamWriter` would do too)."""

    @property
    def transport(self) -> asyncio.WriteTransport: ...
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...
    async def drain(self) -> None: ...
    async def wait_closed(self) -> None: ...


class FrameWriter:
    """Writes the frames made in one event-loop iteration to the connection together, in order."""

    __slots__ = ("_batch", "_loop", "_writer")

    def __init__(self, writer: FrameSink) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._batch: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queue `data`; it is written at the end of this loop iteration."""
        batch = self._batch
        batch.append(data)
        if len(batch) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued now."""
        batch, self._batch = self._batch, []
        if batch and not self._writer.is_closing():
            self._writer.write(batch[0] if len(batch) == 1 else b"".join(batch))

    async def drain(self) -> None:
        """Wait while the connection's buffer is above its high-water mark."""
        await self._writer.drain()

    def backed_up(self) -> bool:
        """True when the connection's buffer is above its high-water mark (then `drain`); most
        calls find it is not, and skip two coroutines."""
        transport = self._writer.transport
        return transport.is_closing() or transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]

    def is_closing(self) -> bool:
        return self._writer.is_closing()

    def close(self) -> None:
        """Write what is queued, then close the connection."""
        self.flush()
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()


class RemoteBot(BotApi):
    """The bot of one call in the worker: actions travel to the host as ACTION frames."""

    def __init__(self, writer: FrameWriter, call_id: int, waiting: dict[tuple[int, int], Any]) -> None:
        self._writer = writer
        self._call_id = call_id
        self._waiting = waiting
        self._ids = itertools.count(1)

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        action_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        key = (self._call_id, action_id)
        self._waiting[key] = future
        body = json.dumps({"id": action_id, "action": action, "params": dict(params or {})}).encode()
        try:
            self._writer.write(frame(Kind.ACTION, self._call_id, body))
            async with asyncio.timeout(timeout):
                answer = await future
        finally:
            self._waiting.pop(key, None)
        if "error" in answer:
            raise InvokeLaneActionFailed(str(answer["error"]))
        return answer.get("data")


InvokeHandler = Callable[[str, bytes, BotApi], Awaitable[bytes]]
ErrorEncoder = Callable[[BaseException], dict[str, Any]]


def frame(kind: Kind, call_id: int, body: bytes = b"") -> bytes:
    """One encoded frame."""
    if len(body) > MAX_BODY:
        raise InvokeLaneProtocolError(f"frame body of {len(body)} bytes exceeds the lane's limit of {MAX_BODY}")
    return HEADER.pack(len(body), call_id, kind) + body


def call_body(name: str, request_json: bytes) -> bytes:
    encoded = name.encode()
    if len(encoded) > 0xFFFF:
        raise InvokeLaneProtocolError("handler name longer than 65535 bytes")
    return NAME_LENGTH.pack(len(encoded)) + encoded + request_json


def parse_call(body: bytes) -> tuple[str, bytes]:
    """(name, request JSON) of a CALL body."""
    if len(body) < NAME_LENGTH.size:
        raise InvokeLaneProtocolError("CALL frame too short for its name length")
    (length,) = NAME_LENGTH.unpack_from(body)
    end = NAME_LENGTH.size + length
    if len(body) < end:
        raise InvokeLaneProtocolError("CALL frame shorter than its name")
    try:
        name = body[NAME_LENGTH.size : end].decode()
    except UnicodeDecodeError as exc:
        raise InvokeLaneProtocolError(f"CALL frame name is not UTF-8: {exc}") from None
    return name, body[end:]


class FrameReader:
    """Splits the bytes of one connection into frames as they arrive (`max_body`: the longest body
    it accepts; a worker lowers it until the host has authenticated)."""

    __slots__ = ("_buffer", "error", "max_body")

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self.max_body = max_body
        self.error: InvokeLaneProtocolError | None = None
        """The first frame that broke the format; nothing after it is read."""

    def feed(self, data: bytes) -> list[tuple[Kind, int, bytes]]:
        """The frames `data` completes, in order (a partial one waits for more bytes); they stop at
        a frame that breaks the format, which is then `error`."""
        if self.error is not None:
            return []
        buffer = self._buffer
        buffer += data
        frames: list[tuple[Kind, int, bytes]] = []
        size, offset, end = HEADER.size, 0, len(buffer)
        while end - offset >= size:
            length, call_id, kind = HEADER.unpack_from(buffer, offset)
            if length > self.max_body:
                self.error = InvokeLaneProtocolError(
                    f"frame announces {length} bytes, over the limit of {self.max_body}"
                )
                break
            known = _KINDS.get(kind)
            if known is None:
                self.error = InvokeLaneProtocolError(f"unknown frame kind {kind}")
                break
            stop = offset + size + length
            if stop > end:
                break
            frames.append((known, call_id, bytes(buffer[offset + size : stop])))
            offset = stop
        del buffer[: end if self.error is not None else offset]
        return frames


FrameHandler = Callable[[Kind, int, bytes], None]


class _LaneConnection(asyncio.Protocol):
    """One end of a lane connection: frames are parsed as the bytes arrive and handed to `on_frame`
    there and then (no reader task: an answer resolves its call in the same callback). A frame that
    breaks the format (or that `on_frame` refuses with `InvokeLaneProtocolError`) closes the
    connection: `on_malformed` says why (and logs it); `on_closed` is told once why it ended. It is
    also its `FrameWriter`'s sink."""

    def __init__(
        self,
        on_frame: FrameHandler,
        on_malformed: Callable[[InvokeLaneProtocolError], str],
        on_closed: Callable[[str], None],
        max_body: int = MAX_BODY,
    ) -> None:
        self._on_frame = on_frame
        self._on_malformed = on_malformed
        self._on_closed = on_closed
        self.reader = FrameReader(max_body)
        self._transport: asyncio.WriteTransport | None = None
        self._writable: asyncio.Future[None] | None = None  # while paused: resolved on resume
        self._closed = asyncio.get_running_loop().create_future()
        self._reason = "invoke lane closed"

    @property
    def transport(self) -> asyncio.WriteTransport:
        assert self._transport is not None, "not connected"
        return self._transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        try:
            for kind, call_id, body in reader.feed(data):
                self._on_frame(kind, call_id, body)
                if self.is_closing():
                    return  # refused: nothing more is read from it
        except InvokeLaneProtocolError as exc:
            self.malformed(exc)
            return
        if reader.error is not None:
            self.malformed(reader.error)

    def malformed(self, error: InvokeLaneProtocolError) -> None:
        """Close the connection because of `error`."""
        self._reason = self._on_malformed(error)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if not self._closed.done():
            self._closed.set_result(None)
        self._on_closed(self._reason)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # the sink of its FrameWriter
    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def drain(self) -> None:
        if self.is_closing():
            raise ConnectionResetError("invoke lane closed")
        if self._writable is not None:
            await self._writable

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


class InvokeLaneServer:
    """The worker's half: serves CALL frames with `handler(name, request_json) -> result_json`.

    Only connections that open with AUTH and `secret` are served. Each call is a task of its
    connection's owner, which `close` (or the connection's end) cancels and awaits.
    """

    def __init__(
        self, handler: InvokeHandler, encode_error: ErrorEncoder, *, secret: str, tasks: TaskOwner | None = None
    ) -> None:
        if not secret:
            raise ValueError("an invoke lane needs a secret")
        self._handler = handler
        self._encode_error = encode_error
        self._secret = secret.encode()
        self._server: asyncio.Server | None = None
        self._tasks = tasks if tasks is not None else TaskOwner("invoke lane server")
        self.path = Path("")
        self._connections: list[_HostConnection] = []
        self._links: list[_HostConnection] = []  # the authenticated ones, the newest last
        self._host_ids = itertools.count(1)

    async def host_operation(self, operation: str, params: Mapping[str, Any]) -> Any:
        """Run one of the host's services (`plughost.runtime.host_services`) and return its answer.

        Raises what the in-process API raises (`AccessDenied`, `NotJsonError`, `BusRequestError`),
        or `HostServiceError` when no host is connected or the link closes first.
        """
        if not self._links:
            raise HostServiceError(
                f"{operation}: the host is not connected yet (the bus and shared state are available once the "
                "plugin has loaded, not in its load hook)", code="unavailable",
            )  # fmt: skip
        link = self._links[-1]
        writer, waiting = link.writer, link.waiting
        action_id = next(self._host_ids)
        try:
            body = json.dumps({"id": action_id, "action": HOST_ACTION_PREFIX + operation, "params": dict(params)},
                              allow_nan=False).encode()  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise NotJsonError(f"{operation}: a value is not JSON ({exc}); pass dicts, lists, str, int, float, "
                               "bool or None") from None  # fmt: skip
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiting[(0, action_id)] = future
        timeout = HOST_OPERATION_TIMEOUT_S + float(params.get("timeout") or 0)
        try:
            writer.write(frame(Kind.ACTION, 0, body))
            async with asyncio.timeout(timeout):
                answer = await future
        except TimeoutError:
            raise HostServiceError(
                f"{operation}: the host did not answer within {timeout:g} s", code="timed_out"
            ) from None
        finally:
            waiting.pop((0, action_id), None)
        if "error" in answer:
            failure = answer.get("failure")
            raise_remote(failure if isinstance(failure, Mapping) else {"message": answer["error"]})
        return answer.get("data")

    async def start(self, path: Path) -> None:
        """Listen on the unix socket `path` (mode 0600)."""
        self.path = path
        self._server = await asyncio.get_running_loop().create_unix_server(self._connect, str(path))
        os.chmod(path, 0o600)

    def _connect(self) -> asyncio.Protocol:
        return _HostConnection(self).connection

    async def _call(self, writer: FrameWriter, call_id: int, name: str, request: bytes, bot: BotApi) -> None:
        try:
            reply = frame(Kind.RESULT, call_id, await self._handler(name, request, bot))
        except Exception as exc:
            reply = frame(Kind.ERROR, call_id, json.dumps(self._encode_error(exc)).encode())
        if not writer.is_closing():
            writer.write(reply)
            if writer.backed_up():
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    async def close(self) -> None:
        """Stop listening, end every connection (cancelling its calls) and remove the socket."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.connection.close()
            await connection.calls.aclose(timeout=5.0)
        await self._tasks.aclose(timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()


class _HostConnection:
    """A worker's end of one connection: served once its first frame is AUTH with the secret."""

    def __init__(self, server: InvokeLaneServer) -> None:
        self.server = server
        self.connection = _LaneConnection(self._frame, self._malformed, self._ended, MAX_AUTH_BODY)
        self.writer = FrameWriter(self.connection)
        self.calls = TaskOwner("invoke lane calls")
        self.inbox: deque[tuple[int, str, bytes, BotApi]] = deque()  # calls not started yet
        self.running: dict[int, asyncio.Task[Any]] = {}  # the calls that wait, each in its own task
        self.waiting: dict[tuple[int, int], asyncio.Future[dict[str, Any]]] = {}
        self.authenticated = False
        self._auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT_S, self._refuse)
        server._connections.append(self)

    def _frame(self, kind: Kind, call_id: int, body: bytes) -> None:
        if not self.authenticated:
            if kind == Kind.AUTH and hmac.compare_digest(body, self.server._secret):
                self.authenticated = True
                self._auth_timer.cancel()
                self.connection.reader.max_body = MAX_BODY
                self.server._links.append(self)
            else:
                self._refuse()
        elif kind == Kind.CALL:
            name, request = parse_call(body)
            inbox = self.inbox
            inbox.append((call_id, name, request, RemoteBot(self.writer, call_id, self.waiting)))
            if len(inbox) == 1:  # otherwise a runner is on its way to it
                self.calls.spawn(self._run_calls())
        elif kind == Kind.CANCEL:
            pending = self.running.get(call_id)
            if pending is not None:
                pending.cancel()
            else:  # not started yet: it never will
                for unstarted in [c for c in self.inbox if c[0] == call_id]:
                    self.inbox.remove(unstarted)
        elif kind == Kind.ACTION_RESULT:
            answer = _json_object(body, "ACTION_RESULT")
            future = self.waiting.get((call_id, _action_id(answer)))
            if future is not None and not future.done():
                future.set_result(answer)
        else:
            raise InvokeLaneProtocolError(f"a worker does not accept {kind.name} frames")

    async def _run_calls(self) -> None:
        """Start the calls in `inbox`, each one's first step here and now, in a context of its own.

        Most calls end without waiting: a batch of them costs one task instead of one each. The
        first call that waits keeps this task (its timeouts and its cancellation are its own); the
        calls after it go on in a new runner.
        """
        inbox = self.inbox
        while inbox:
            call_id, name, request, bot = inbox.popleft()
            call = self.server._call(self.writer, call_id, name, request, bot)
            context = contextvars.copy_context()
            try:
                yielded = context.run(call.send, None)
            except StopIteration:
                continue
            except BaseException:
                self._run_rest()
                raise
            self._run_rest()
            await self._finish(call_id, call, yielded, context)
            return

    def _run_rest(self) -> None:
        """The calls after one that waits (or that failed its runner) go on in a new runner."""
        if self.inbox:
            self.calls.spawn(self._run_calls())

    async def _finish(
        self, call_id: int, call: Coroutine[Any, Any, None], yielded: Any, context: contextvars.Context
    ) -> None:
        """The rest of a call that waits, in this task (which a CANCEL for it cancels)."""
        task = asyncio.current_task()
        if task is not None:
            self.running[call_id] = task
        try:
            await Resume(call, yielded, context)
        finally:
            self.running.pop(call_id, None)

    def _refuse(self) -> None:
        log.warning("invoke lane: closed a connection that did not authenticate (not the host)")
        self.connection.close()

    def _malformed(self, error: InvokeLaneProtocolError) -> str:
        if not self.authenticated:
            self._refuse()
        else:
            log.warning("invoke lane: closing a connection that sent a malformed frame: %s", error)
        return f"malformed frame from the host: {error}"

    def _ended(self, reason: str) -> None:
        self._auth_timer.cancel()
        self.inbox.clear()  # no one to answer them
        server = self.server
        server._connections.remove(self)
        if self in server._links:
            server._links.remove(self)
        for future in self.waiting.values():
            if not future.done():
                future.set_result({"error": "the host link closed", "failure": {"code": "unavailable",
                                   "message": "the host link closed before the host answered"}})  # fmt: skip
        with contextlib.suppress(RuntimeError):  # the server is closing: `close` ends the calls
            server._tasks.spawn(self.calls.aclose(), name="lane-connection-end")


class InvokeLaneClient:
    """The host's half: one connection, any number of concurrent calls.

    Construction does no I/O; `start()` (or `InvokeLaneClient.connect`) connects and authenticates
    with the worker's `secret`; answers are read as they arrive (`_LaneConnection`), and the bot
    actions the worker asks for run as tasks of the client's owner.
    """

    def __init__(
        self, path: str, name: str, *, secret: str, tasks: TaskOwner | None = None, services: HostLink | None = None
    ) -> None:
        self.path = path
        self._services = services
        self.name = name
        self._secret = secret.encode()
        self._writer: FrameWriter | None = None
        self._pending: dict[int, asyncio.Future[tuple[Kind, bytes]]] = {}
        self._bots: dict[int, BotApi | None] = {}
        self._clock: DeadlineClock | None = None  # the calls' deadlines, once connected
        self._tasks = tasks if tasks is not None else TaskOwner(f"{name}:lane")
        self._next_id = 0
        self._closed: InvokeLaneClosed | None = InvokeLaneClosed("invoke lane not connected")

    @classmethod
    async def connect(
        cls,
        path: str,
        name: str,
        timeout: float = 5.0,
        *,
        secret: str,
        tasks: TaskOwner | None = None,
        services: HostLink | None = None,
    ) -> InvokeLaneClient:
        """A started client connected to the lane socket at `path`; `services` runs `plughost.*` actions."""
        client = cls(path, name, secret=secret, tasks=tasks, services=services)
        await client.start(timeout)
        return client

    async def start(self, timeout: float = 5.0) -> None:
        """Connect, authenticate and start reading answers."""
        loop = asyncio.get_running_loop()
        connection = _LaneConnection(self._frame, _malformed_reply, self._lost)
        await asyncio.wait_for(loop.create_unix_connection(lambda: connection, self.path), timeout)
        writer = FrameWriter(connection)
        writer.write(frame(Kind.AUTH, 0, self._secret))
        self._writer, self._closed = writer, None
        self._clock = DeadlineClock(loop)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def call(self, name: str, request_json: bytes, timeout: float, *, actions: BotApi | None = None) -> bytes:
        """The result JSON of handler `name`; `InvokeLaneCallFailed` when the worker failed outside it.

        Bot actions the handler makes run on `actions`. `TimeoutError` after `timeout` seconds
        and on the caller's cancellation the worker is told to cancel the handler; `InvokeLaneClosed`
        when the connection ends first.
        """
        writer, clock = self._writer, self._clock
        if self._closed is not None or writer is None or clock is None:
            raise self._closed or InvokeLaneClosed("invoke lane not connected")
        self._next_id = call_id = (self._next_id + 1) & 0xFFFFFFFF or 1  # id 0: the worker's host operations
        future: asyncio.Future[tuple[Kind, bytes]] = clock.loop.create_future()
        deadline = _Deadline(clock, future, timeout)
        held = deadlines_of(actions) if actions is not None else None
        if held is not None:  # a prompt to the user stops this clock too
            held.add(deadline)
        self._pending[call_id] = future
        self._bots[call_id] = actions
        try:
            writer.write(frame(Kind.CALL, call_id, call_body(name, request_json)))
            if writer.backed_up():
                await writer.drain()
            kind, body = await future
        except (TimeoutError, asyncio.CancelledError):
            if self._pending.pop(call_id, None) is not None and self._closed is None:
                writer.write(frame(Kind.CANCEL, call_id))
            raise
        except ConnectionError as exc:
            self._pending.pop(call_id, None)
            raise self._closed or InvokeLaneClosed(f"invoke lane closed: {exc}") from None
        finally:
            clock.discard(deadline)
            if held is not None:
                held.remove(deadline)
            self._bots.pop(call_id, None)
        if kind == Kind.ERROR:
            try:
                error = json.loads(body)
            except (ValueError, RecursionError):
                error = {"code": "protocol_error", "message": "malformed error frame from the worker"}
            raise InvokeLaneCallFailed(error if isinstance(error, dict) else {"message": str(error)})
        return body

    def _frame(self, kind: Kind, call_id: int, body: bytes) -> None:
        """One frame from the worker: an answer resolves its call, an action runs on the call's bot."""
        if kind in (Kind.RESULT, Kind.ERROR):
            future = self._pending.pop(call_id, None)
            if future is not None and not future.done():
                future.set_result((kind, body))
        elif kind == Kind.ACTION and self._writer is not None:
            self._run_action(self._writer, call_id, _json_object(body, "ACTION"))
        else:
            raise InvokeLaneProtocolError(f"a host does not accept {kind.name} frames")

    def _lost(self, reason: str) -> None:
        self._fail_pending(InvokeLaneClosed(reason))
        if self._writer is not None:
            self._writer.close()

    def _run_action(self, writer: FrameWriter, call_id: int, request: dict[str, Any]) -> None:
        """Run a bot action of call `call_id` on that call's bot; the answer goes back as ACTION_RESULT."""
        action_id = _action_id(request)
        action, params = request.get("action"), request.get("params") or {}
        if not isinstance(action, str) or not isinstance(params, Mapping):
            raise InvokeLaneProtocolError("ACTION needs a string 'action' and an object 'params'")
        self._tasks.spawn(self._action(writer, call_id, action_id, action, params), name=f"{self.name}:action")

    async def _action(
        self, writer: FrameWriter, call_id: int, action_id: int, action: str, params: Mapping[str, Any]
    ) -> None:
        bot = self._bots.get(call_id)
        answer: dict[str, Any] = {"id": action_id}
        if action.startswith(HOST_ACTION_PREFIX):
            answer.update(await self._host_operation(action.removeprefix(HOST_ACTION_PREFIX), params))
        elif bot is None:
            answer["error"] = f"action '{action}' needs a bot connection, and this call came without one"
        else:
            try:
                answer["data"] = await bot.call_action(action, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                answer["error"] = str(exc) or type(exc).__name__
        if self._closed is None:
            body = json.dumps(answer, default=str).encode()
            writer.write(frame(Kind.ACTION_RESULT, call_id, body))

    async def _host_operation(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if self._services is None:
            failure = error_fields(HostServiceError(f"{operation}: this host offers the plugin no services",
                                                    code="unavailable"))  # fmt: skip
            return {"error": failure["message"], "failure": failure}
        try:
            return {"data": await self._services(operation, params)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = error_fields(exc)
            return {"error": failure["message"], "failure": failure}

    def _fail_pending(self, error: InvokeLaneClosed) -> None:
        self._closed = self._closed or error
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with `InvokeLaneClosed`."""
        self._fail_pending(InvokeLaneClosed("invoke lane closed by the host"))
        if self._clock is not None:
            self._clock.close()
        await self._tasks.aclose()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class _Deadline(FutureDeadline):
    """A lane call's deadline on its lane's `DeadlineClock`; it can pause (`Pausable`: a prompt to
    the user stops the clock of the call that asked)."""

    __slots__ = ("_clock", "_left")

    def __init__(self, clock: DeadlineClock, future: asyncio.Future[Any], timeout: float) -> None:
        super().__init__(future, clock.loop.time() + timeout)
        self._clock = clock
        self._left = 0.0
        clock.add(self)

    def pause(self) -> None:
        if self.due is not None:
            self._left = self.due - self._clock.loop.time()
            self.due = None

    def resume(self) -> None:
        if self.due is None:
            self.due = self._clock.loop.time() + max(self._left, 0.0)
            self._clock.watch(self.due)


def _malformed_reply(error: InvokeLaneProtocolError) -> str:
    reason = f"invoke lane closed after a malformed frame from the worker: {error}"
    log.warning("%s", reason)
    return reason


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvokeLaneProtocolError(f"{what} body is nested too deeply to read") from None
    except ValueError as exc:
        raise InvokeLaneProtocolError(f"{what} body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvokeLaneProtocolError(f"{what} body must be a JSON object")
    return value


def _action_id(body: Mapping[str, Any]) -> int:
    action_id = body.get("id")
    if not isinstance(action_id, int) or isinstance(action_id, bool):
        raise InvokeLaneProtocolError("an action frame needs an integer 'id'")
    return action_id
