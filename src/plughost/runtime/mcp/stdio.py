"""A stdio MCP server's process and the link between its pipes and a `ClientSession`.

Newline-delimited JSON-RPC on stdin/stdout; stderr lines go to the plugin's logger (and the tail
kept for error reports). The process is started like a process plugin's (its own process group,
`PR_SET_PDEATHSIG = SIGKILL`, rlimits through util-linux `setpriv`/`prlimit`), so it dies with
the host, and stopping it kills its whole group.

A line that is not a JSON-RPC message is a protocol error with a clear answer, not a silent
hang: when it is JSON that names a request in flight, that request fails with `PARSE_ERROR`
(the handle reports `protocol_error`); any other line fails every request in flight that way
(the server broke the framing; which answer it garbled cannot be told), and is logged.

Every task (stdout, stdin, stderr pumps and the exit watch) belongs to the link's `TaskOwner`;
`aclose` ends the process and them: stdin closed → `grace` seconds → SIGTERM to the group →
1 s → SIGKILL to the group, as the MCP specification's shutdown sequence asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from plughost.runtime.goplugin.launch import kill_group, spawn_plan
from plughost.runtime.goplugin.logs import LineSplitter, PluginLog
from plughost.runtime.mcp.runtime import StdioServer
from plughost.sdk.tasks import TaskOwner

READ_CHUNK = 65536
EXCERPT_CHARS = 200


class StdioLink:
    """One started server process and the streams a `ClientSession` reads and writes.

    `ended` (the caller's event, if given) is set when the process exited or closed its stdout
    (the session is over); `end_reason` then says which.
    """

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        spec: StdioServer,
        log: PluginLog,
        tasks: TaskOwner,
        max_message_bytes: int,
        ended: asyncio.Event | None = None,
    ) -> None:
        self.process = process
        self.spec = spec
        self.log = log
        self.tasks = tasks
        self.max_message_bytes = max_message_bytes
        self.ended = ended if ended is not None else asyncio.Event()
        self.end_reason = ""
        self.malformed = 0  # lines that were not JSON-RPC messages
        self._outstanding: dict[Any, None] = {}  # ids of our requests not answered yet
        self._to_session: MemoryObjectSendStream[SessionMessage | Exception]
        self.read_stream: MemoryObjectReceiveStream[SessionMessage | Exception]
        self._to_session, self.read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        self.write_stream: MemoryObjectSendStream[SessionMessage]
        self._from_session: MemoryObjectReceiveStream[SessionMessage]
        self.write_stream, self._from_session = anyio.create_memory_object_stream[SessionMessage](0)
        self._stderr_done = asyncio.Event()
        self._closed = False

    @classmethod
    async def start(
        cls,
        spec: StdioServer,
        log: PluginLog,
        tasks: TaskOwner,
        *,
        max_message_bytes: int,
        ended: asyncio.Event | None = None,
    ) -> StdioLink:
        """Start the server; `OSError` when it cannot be started (its tasks are then closed)."""
        command, preexec = spawn_plan(list(spec.argv), spec.memory_mb, spec.cpu_seconds)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=str(spec.cwd),
                env=dict(spec.env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                process_group=0 if preexec is None else None,
                preexec_fn=preexec,
            )
        except BaseException:
            await tasks.aclose()
            raise
        link = cls(process, spec, log, tasks, max_message_bytes, ended)
        name = log.plugin_id
        try:
            tasks.spawn(link._pump_stderr(), name=f"{name}:stderr")
            tasks.spawn(link._pump_stdout(), name=f"{name}:stdout")
            tasks.spawn(link._pump_stdin(), name=f"{name}:stdin")
            tasks.spawn(link._watch_exit(), name=f"{name}:exit")
        except BaseException:  # the owner closed meanwhile (the plugin is stopping)
            await link.aclose(0, graceful=False)
            raise
        return link

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exit_code(self) -> int | None:
        return self.process.returncode

    async def exit_code_soon(self, timeout: float) -> int | None:
        """The exit code, waiting up to `timeout` for the process to end (None if it runs on)."""
        if self.process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), timeout)
        return self.process.returncode

    async def last_words(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until the process's stderr is read to its end."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stderr_done.wait(), timeout)

    def _end(self, reason: str) -> None:
        """The server ended on its own (not while the link is being closed)."""
        if not self._closed and not self.end_reason:
            self.end_reason = reason
            self.ended.set()

    # pumps --------------------------------------------------------------------------------------
    async def _watch_exit(self) -> None:
        code = await self.process.wait()
        self._end(f"exited (exit code {code})")

    async def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        splitter = LineSplitter()
        try:
            while chunk := await self.process.stderr.read(READ_CHUNK):
                for line in splitter.feed(chunk):
                    self.log.stderr_line(line)
            for line in splitter.flush():
                self.log.stderr_line(line)
        finally:
            self._stderr_done.set()

    async def _pump_stdout(self) -> None:
        assert self.process.stdout is not None
        buffer = bytearray()
        overlong = False
        try:
            async with self._to_session:
                while chunk := await self.process.stdout.read(READ_CHUNK):
                    buffer += chunk
                    while (cut := buffer.find(b"\n")) >= 0:
                        line, buffer = bytes(buffer[:cut]), buffer[cut + 1 :]
                        if overlong:  # the rest of a line already refused
                            overlong = False
                            continue
                        await self._deliver(line)
                    if len(buffer) > self.max_message_bytes:
                        await self._malformed(
                            bytes(buffer[:EXCERPT_CHARS]), f"a message longer than {self.max_message_bytes} bytes"
                        )
                        buffer.clear()
                        overlong = True
                if buffer.strip() and not overlong:
                    await self._deliver(bytes(buffer))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the session is gone
        finally:
            self._end("closed its stdout")

    async def _deliver(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValidationError as exc:
            await self._malformed(line, _problem(line, exc))
            return
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._outstanding.pop(message.id, None)
        await self._to_session.send(SessionMessage(message))

    async def _malformed(self, line: bytes, problem: str) -> None:
        """A line that is not a JSON-RPC message: fail the request it answers (or all in flight)."""
        self.malformed += 1
        excerpt = line[:EXCERPT_CHARS].decode("utf-8", "replace") + ("…" if len(line) > EXCERPT_CHARS else "")
        request_id = _request_id(line)
        if request_id is not None and request_id in self._outstanding:
            del self._outstanding[request_id]
            await self._fail(request_id, f"the server answered with a malformed message ({problem}): {excerpt}")
            return
        self.log.logger.warning(
            "[%s] the MCP server wrote something that is not a JSON-RPC message to stdout (%s): %s",
            self.log.plugin_id,
            problem,
            excerpt,
        )
        pending, self._outstanding = list(self._outstanding), {}
        for pending_id in pending:
            await self._fail(
                pending_id,
                f"the server wrote something that is not a JSON-RPC message ({problem}) while this request "
                f"was in flight: {excerpt!r}; MCP servers must write only JSON-RPC messages to stdout "
                "(logs belong on stderr)",
            )

    async def _fail(self, request_id: Any, message: str) -> None:
        error = types.ErrorData(code=types.PARSE_ERROR, message=message)
        await self._to_session.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)))

    async def _pump_stdin(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            async with self._from_session:
                async for outgoing in self._from_session:
                    message = outgoing.message
                    if isinstance(message, types.JSONRPCRequest):
                        self._outstanding[message.id] = None
                    elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
                        self._outstanding.pop((message.params or {}).get("requestId"), None)
                    data = message.model_dump_json(by_alias=True, exclude_unset=True)
                    stdin.write(data.encode() + b"\n")
                    await stdin.drain()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        except (BrokenPipeError, ConnectionResetError) as exc:  # the server closed its stdin (or died)
            self._end(f"stopped reading its stdin ({exc.strerror or type(exc).__name__})")
            await self._to_session.aclose()  # the session sees the link end instead of waiting forever

    # shutdown -----------------------------------------------------------------------------------
    async def aclose(self, grace: float, *, graceful: bool = True) -> None:
        """End the server (see the module docstring) and every task of the link."""
        if self._closed:
            return
        self._closed = True
        process = self.process
        try:
            self.write_stream.close()
            self.read_stream.close()
            if graceful and process.returncode is None:
                if process.stdin is not None:
                    with contextlib.suppress(OSError):
                        process.stdin.close()
                await _wait_exit(process, grace)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
                await _wait_exit(process, min(1.0, grace) if graceful else 0.05)
        finally:
            kill_group(process)  # the server's children too, and whatever ignored SIGTERM
            try:
                await _wait_exit(process, 5.0)
            finally:
                await self.tasks.aclose(grace=1.0)  # the pumps read the last output first


async def _wait_exit(process: asyncio.subprocess.Process, timeout: float) -> None:
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout)


def _request_id(line: bytes) -> Any:
    """The `id` of a JSON object line (a malformed answer still names its request), else None."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return None


def _problem(line: bytes, exc: ValidationError) -> str:
    """What is wrong with a line that is not a JSON-RPC message, in a few words."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("jsonrpc") != "2.0":
        return 'no "jsonrpc": "2.0"'
    if not {"method", "result", "error"} & set(data):
        return "neither a method, a result nor an error"
    errors = exc.errors()
    if not errors:
        return "not a JSON-RPC message"
    where = ".".join(str(p) for p in errors[0]["loc"] if not isinstance(p, int))
    return f"{where + ': ' if where else ''}{errors[0]['msg']}"


__all__ = ["StdioLink"]
