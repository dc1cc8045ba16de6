"""`McpPluginHandle`: one MCP server as a plugin; its tools are the plugin's methods.

`McpRuntime.load()` makes these (and imports this module, with the `mcp` SDK, the first time).

- **Connect**: a stdio server is started (`plughost.runtime.mcp.stdio`), a server at a url is
  reached over streamable HTTP; then `initialize` and `tools/list` (every page) must finish
  within the start timeout (manifest `start_timeout` in ms, else `McpOptions.start_timeout_s`),
  or the load fails with the reason and the server's stderr tail.
- **Descriptor**: each tool is a `MethodSpec(name, description, input_schema)`; metadata
  `mcp` says which server, protocol version and transport. A `notifications/tools/list_changed`
  lists the tools again and replaces `handle.descriptor` (the manager, CLI and console read it
  from the handle, so they see the new tools); listeners get a `tools_changed` event.
- **Calls**: `Call(tool, arguments)` of kind `method`. An unknown tool is `unknown_handler`,
  arguments that are not an object or violate the tool's input schema are `invalid_request`
  (checked with jsonschema before anything is sent). The answer maps to an `Outcome` as
  `plughost.runtime.mcp.results` describes.
- **Supervision**: a stdio server that exits (or a connection that breaks) is a `crashed`
  `ProcessEvent`, the calls in flight fail (`crashed`, with exit code and stderr tail), and the
  server is started again (reconnected) with the process runtime's `RestartPolicy` backoff,
  emitting `restarted`, `restart_failed` and `gave_up` like process plugins. Calls made meanwhile
  wait for it, up to their deadline.
- **Ownership**: the session, the transport's pumps and the supervisor run in tasks of the
  handle's `TaskOwner`; `stop()` ends the server (stdin closed → grace → SIGTERM → SIGKILL to its
  process group, or the HTTP session deleted) and every task, process and socket with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types
from jsonschema.protocols import Validator
from mcp import ClientSession
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from plughost.errors import InvocationError, PluginLoadError
from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.logs import PluginLog
from plughost.runtime.goplugin.supervisor import ProcessEvent, RestartBudget
from plughost.runtime.mcp.results import argument_problems, compile_schema, method_spec, request_failure, tool_outcome
from plughost.runtime.mcp.runtime import HttpServer, McpOptions, ServerSpec, StdioServer
from plughost.runtime.mcp.stdio import StdioLink
from plughost.sdk.call import (
    CRASHED,
    INVALID_ANSWER,
    INVALID_REQUEST,
    PROTOCOL_ERROR,
    TIMED_OUT,
    UNAVAILABLE,
    UNKNOWN_HANDLER,
    Call,
    Outcome,
    PluginError,
)
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.handle import Health
from plughost.sdk.tasks import TaskOwner

McpStatus = Literal["starting", "running", "restarting", "stopped", "error"]
EventHook = Callable[[Any], None]
MAX_TOOL_PAGES = 100  # a paginator that never ends cannot hang a connection
HTTP_TIMEOUT_S = 30.0  # connect, write and pool timeouts of a server at a url
HTTP_READ_TIMEOUT_S = 300.0  # a response stream may stay open while a tool runs
STOP_SLACK_S = 8.0  # beyond `stop_grace_s`: SIGTERM's second, the kill, reaping, the last output
MCP_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}
log = logging.getLogger("plughost.runtime.mcp")


@dataclass(frozen=True)
class McpEvent:
    """A runtime event MCP plugins have beside the `ProcessEvent`s: `tools_changed` (`tools` are
    the names the server offers now)."""

    plugin_id: str
    kind: str
    message: str
    exit_code: int | None = None
    stderr_tail: str = ""
    pid: int | None = None
    tools: tuple[str, ...] = ()


class _ConnectFailed(Exception):
    """The server could not be started, reached or initialised; the message says why."""


class _Connection:
    """One session with the server (for a stdio server: one process) and the tasks that run it."""

    def __init__(self, number: int, tasks: TaskOwner) -> None:
        self.number = number
        self.tasks = tasks
        self.settled = asyncio.Event()  # ready (`session` set) or over
        self.stop = asyncio.Event()  # asks the session to end; a stdio link sets it when the server ends
        self.finished = asyncio.Event()  # the session task ended
        self.session: ClientSession | None = None
        self.link: StdioLink | None = None
        self.tools: dict[str, types.Tool] = {}
        self.server: types.Implementation | None = None
        self.protocol_version = ""
        self.instructions = ""
        self.failure = ""
        self.started_mono = time.monotonic()
        self.refreshing = False
        self.refresh_wanted = False

    @property
    def usable(self) -> bool:
        return self.session is not None and not self.stop.is_set() and not self.finished.is_set()

    @property
    def pid(self) -> int | None:
        return self.link.pid if self.link is not None else None

    @property
    def exit_code(self) -> int | None:
        return self.link.exit_code if self.link is not None else None


class McpPluginHandle:
    """An MCP server as a plugin. See the module docstring for the behaviour."""

    def __init__(
        self,
        request: LoadRequest,
        spec: ServerSpec,
        options: McpOptions,
        on_event: EventHook | None = None,
    ) -> None:
        manifest = request.manifest
        self.plugin_id = request.plugin_id
        self.request = request
        self.spec = spec
        self.options = options
        self.start_timeout_s = manifest.start_timeout / 1000 if manifest.start_timeout else options.start_timeout_s
        self.call_timeout_s = manifest.limits.timeout_s or options.call_timeout_s
        self.descriptor = Descriptor(id=request.plugin_id, version=manifest.version, priority=request.priority)
        self.status: McpStatus = "starting"
        self.last_error = ""
        self.restarts = 0
        self.config: dict[str, Any] = dict(request.config)
        self._listeners: list[EventHook] = [on_event] if on_event else []
        self._log = PluginLog(request.logger, request.plugin_id)
        self._conn: _Connection | None = None
        self._tools: dict[str, types.Tool] = {}
        self._validators: dict[str, Validator | None] = {}
        self._ready = asyncio.Event()
        self._stopping = False
        self._budget = RestartBudget(options.restart)
        self._generation = 0
        self._last_exit: int | None = None
        self.tasks = request.tasks if request.tasks is not None else TaskOwner(f"plugin:{request.plugin_id}")
        self._supervision = self.tasks.child(f"{request.plugin_id}:supervision")

    # lifecycle ----------------------------------------------------------------------------------
    def add_listener(self, hook: EventHook) -> None:
        """Receive every runtime event of this plugin (`ProcessEvent`s, and `McpEvent` `tools_changed`)."""
        self._listeners.append(hook)

    async def start(self) -> None:
        """Connect; raise `PluginLoadError` with the reason when the server does not become ready."""
        try:
            conn = await self._connect()
        except _ConnectFailed as exc:
            self.status = "error"
            self.last_error = str(exc)
            raise PluginLoadError(self.plugin_id, str(exc)) from None
        self._conn = conn
        self._adopt(conn)
        self._became_ready("started", f"MCP server '{self.plugin_id}' started", conn)
        self._supervision.spawn(self._supervise(), name=f"{self.plugin_id}:supervisor")

    async def stop(self) -> None:
        """End the session and the server, then every task of the handle."""
        if self._stopping:
            return
        self._stopping = True
        try:
            await self._supervision.aclose()
            conn, self._conn = self._conn, None
            if conn is not None:
                await self._close(conn)
                self._emit(
                    ProcessEvent(self.plugin_id, "stopped", f"MCP server '{self.plugin_id}' stopped", pid=conn.pid)
                )
        finally:
            await self.tasks.aclose()
            self.status = "stopped"
            self._ready.set()  # wake waiting callers; they see the stopped state

    async def reconfigure(self, config: Mapping[str, Any]) -> None:
        """MCP servers take no configuration after they started: kept, for `info()` only."""
        self.config = dict(config)

    async def set_enabled(self, enabled: bool) -> None:
        """Nothing to tell an MCP server: a disabled plugin is simply not called."""
        return None

    # connections --------------------------------------------------------------------------------
    async def _connect(self) -> _Connection:
        self._generation += 1
        conn = _Connection(self._generation, self.tasks.child(f"{self.plugin_id}:session {self._generation}"))
        conn.tasks.spawn(self._serve(conn), name=f"{self.plugin_id}:session")
        try:
            async with asyncio.timeout(self.start_timeout_s):
                await conn.settled.wait()
        except TimeoutError:
            await self._close(conn)
            raise _ConnectFailed(
                f"the MCP server did not finish initialising within {self.start_timeout_s:g} s (start_timeout); "
                f"it was stopped{self._tail()}"
            ) from None
        except BaseException:
            await self._close(conn)
            raise
        if conn.usable:
            return conn
        await self._close(conn)
        raise _ConnectFailed(f"the MCP server {conn.failure or 'ended before it was ready'}{self._tail()}")

    async def _close(self, conn: _Connection) -> None:
        """End a connection: a live session ends by itself (the server is told to stop); one
        still initialising is cancelled (its server is killed)."""
        conn.stop.set()
        if conn.session is not None and not conn.finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.finished.wait(), self.options.stop_grace_s + STOP_SLACK_S)
        await conn.tasks.aclose()

    async def _serve(self, conn: _Connection) -> None:
        """The session task: open the transport, initialise, list the tools, then hold the
        session until it is asked to stop or the server goes away (`conn.failure` says why)."""
        try:
            if isinstance(self.spec, StdioServer):
                await self._serve_stdio(conn, self.spec)
            else:
                await self._serve_http(conn, self.spec)
        except Exception as exc:  # the end of this connection, whatever ended it
            if not conn.failure:
                conn.failure = self._failure(conn, exc)
        finally:
            conn.session = None
            conn.finished.set()
            conn.settled.set()

    async def _serve_stdio(self, conn: _Connection, spec: StdioServer) -> None:
        tasks = conn.tasks.child(f"{self.plugin_id}:stdio")
        try:
            link = await StdioLink.start(
                spec, self._log, tasks, max_message_bytes=self.options.max_message_bytes, ended=conn.stop
            )
        except OSError as exc:
            conn.failure = f"could not be started ({spec.command[0]}): {exc.strerror or exc}"
            return
        conn.link = link
        graceful = True
        try:
            error: Exception | None = None
            try:
                await self._session(conn, link.read_stream, link.write_stream)
            except Exception as exc:
                error = exc
            if link.end_reason or _connection_closed(error):  # the server's end: its exit code says how
                await link.exit_code_soon(1.0)
            if link.end_reason or error is not None:
                conn.failure = self._failure(conn, error)
        except asyncio.CancelledError:
            graceful = False  # cancelled (a start timeout, a stuck stop): no time for a grace period
            raise
        finally:
            await link.aclose(self.options.stop_grace_s, graceful=graceful)

    async def _serve_http(self, conn: _Connection, spec: HttpServer) -> None:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx2.Timeout(HTTP_TIMEOUT_S, read=HTTP_READ_TIMEOUT_S)
        async with (
            httpx2.AsyncClient(headers=dict(spec.headers), timeout=timeout) as client,
            streamable_http_client(spec.url, http_client=client) as (read, write),
        ):
            await self._session(conn, read, write)

    async def _session(self, conn: _Connection, read: Any, write: Any) -> None:
        session = ClientSession(
            read,
            write,
            message_handler=functools.partial(self._on_message, conn),
            logging_callback=functools.partial(self._on_log, conn),
            client_info=_client_info(),
        )
        async with session:
            initialised = await session.initialize()
            conn.server = initialised.server_info
            conn.protocol_version = initialised.protocol_version
            conn.instructions = initialised.instructions or ""
            conn.tools = await _list_tools(session)
            conn.session = session
            conn.settled.set()
            await conn.stop.wait()

    def _failure(self, conn: _Connection, exc: BaseException | None) -> str:
        """Why a connection ended (as the end of "the MCP server …")."""
        when = "" if conn.server is not None else " before it finished initialising"
        link = conn.link
        if link is not None and link.exit_code is not None and (link.end_reason or _connection_closed(exc)):
            return f"exited (exit code {link.exit_code}){when}"
        if link is not None and link.end_reason:
            return link.end_reason + when
        if exc is None:
            return "ended" + when
        if conn.server is None:
            where = f" at {self.spec.url}" if isinstance(self.spec, HttpServer) else ""
            return f"could not be initialised{where}: {_describe(exc)}"
        return f"lost its connection: {_describe(exc)}"

    # supervision --------------------------------------------------------------------------------
    def _became_ready(self, kind: Literal["started", "restarted"], message: str, conn: _Connection) -> None:
        self.status = "running"
        self.last_error = ""
        self._ready.set()
        self._emit(ProcessEvent(self.plugin_id, kind, message, pid=conn.pid))

    async def _supervise(self) -> None:
        while True:
            conn = self._conn
            assert conn is not None
            await conn.finished.wait()
            if self._stopping:
                return
            self._ready.clear()
            self.status = "restarting"
            self._conn = None
            await self._close(conn)
            self._last_exit = conn.exit_code
            self.last_error = f"MCP server '{self.plugin_id}' {conn.failure or 'ended'}"
            tail = self._log.tail_text()
            self.request.logger.error("%s%s", self.last_error, self._tail())
            self._emit(
                ProcessEvent(
                    self.plugin_id, "crashed", self.last_error, exit_code=conn.exit_code, stderr_tail=tail, pid=conn.pid
                )
            )
            self._budget.crashed_after(time.monotonic() - conn.started_mono)
            if not await self._restart():
                return

    async def _restart(self) -> bool:
        def failed(exc: Exception) -> None:
            self.last_error = f"restart of MCP server '{self.plugin_id}' failed: {exc}"
            self._emit(
                ProcessEvent(self.plugin_id, "restart_failed", self.last_error, stderr_tail=self._log.tail_text())
            )

        conn = await self._budget.restart(self._connect, failed, lambda: self._stopping)
        if conn is None:
            if not self._stopping:
                self.status = "error"
                self.last_error = f"{self.last_error}; {self._budget.exhausted_reason}"
                tail = self._log.tail_text()
                self._emit(
                    ProcessEvent(
                        self.plugin_id, "gave_up", self.last_error, exit_code=self._last_exit, stderr_tail=tail
                    )
                )
                self._ready.set()  # wake waiting callers: they fail with the reason
            return False
        self._conn = conn
        self.restarts += 1
        self._adopt(conn)
        self._became_ready("restarted", f"MCP server '{self.plugin_id}' restarted (restart {self.restarts})", conn)
        return True

    def _emit(self, event: ProcessEvent | McpEvent) -> None:
        for hook in list(self._listeners):
            try:
                hook(event)
            except Exception:
                log.exception("runtime event hook failed for %s", self.plugin_id)

    def _mark_dead(self, conn: _Connection) -> None:
        """A call saw `conn` end: later calls wait for the restart instead of using it."""
        if self._conn is conn and not self._stopping and self.status == "running":
            self.status = "restarting"
            self._ready.clear()

    async def _running(self, timeout: float) -> _Connection:
        """The running connection; waits while the server restarts (up to `timeout`)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    conn = self._conn
                    if conn is not None and conn.usable and self.status == "running":
                        return conn
                    if self.status in ("stopped", "error") or self._stopping:
                        raise InvocationError(
                            f"MCP server '{self.plugin_id}' is {self.status}: {self.last_error or 'not running'}",
                            code=UNAVAILABLE,
                        )
                    if conn is not None:
                        self._mark_dead(conn)  # seen dead before the supervisor: wait for the restart
                    await self._ready.wait()
        except TimeoutError:
            raise InvocationError(
                f"MCP server '{self.plugin_id}' was not ready within {timeout:g} s ({self.status}: {self.last_error})",
                code=TIMED_OUT,
                retryable=True,
            ) from None

    # tools --------------------------------------------------------------------------------------
    def _adopt(self, conn: _Connection) -> bool:
        """Make `conn`'s tools the plugin's methods; True when the descriptor changed."""
        methods = tuple(method_spec(tool) for tool in conn.tools.values())
        changed = methods != self.descriptor.methods
        self._tools = dict(conn.tools)
        self._validators = {}
        server = conn.server
        metadata = {
            "mcp": {
                "transport": self.spec.transport,
                "server": {"name": server.name, "version": server.version} if server else {},
                "protocol_version": conn.protocol_version,
                "instructions": conn.instructions,
            }
        }
        self.descriptor = Descriptor(
            id=self.plugin_id,
            version=self.request.manifest.version,
            methods=methods,
            capabilities=frozenset({"mcp", "methods"} if methods else {"mcp"}),
            priority=self.request.priority,
            metadata=metadata,
        )
        return changed

    async def _on_message(self, conn: _Connection, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            self.request.logger.warning("[%s] MCP transport problem: %s", self.plugin_id, _describe(message))
        elif isinstance(message, types.ToolListChangedNotification):
            conn.refresh_wanted = True
            if not conn.refreshing and not conn.tasks.closed:
                conn.refreshing = True
                conn.tasks.spawn(self._refresh_tools(conn), name=f"{self.plugin_id}:tools")

    async def _on_log(self, conn: _Connection, params: types.LoggingMessageNotificationParams) -> None:
        level = MCP_LOG_LEVELS.get(str(params.level), logging.INFO)
        source = f" {params.logger}" if params.logger else ""
        self.request.logger.log(level, "[%s%s] %s", self.plugin_id, source, params.data)

    async def _refresh_tools(self, conn: _Connection) -> None:
        """List the tools again after `notifications/tools/list_changed` (once more if another
        arrives meanwhile) and adopt them when `conn` is the current connection."""
        try:
            await conn.settled.wait()
            while conn.refresh_wanted and conn.usable and conn.session is not None:
                conn.refresh_wanted = False
                try:
                    conn.tools = await asyncio.wait_for(_list_tools(conn.session), self.call_timeout_s)
                except Exception as exc:  # the old list stays; the next notification tries again
                    self.request.logger.warning(
                        "[%s] listing the tools after a change failed: %s", self.plugin_id, _describe(exc)
                    )
                    return
                if conn is self._conn and self._adopt(conn):
                    names = tuple(conn.tools)
                    message = f"MCP server '{self.plugin_id}' now offers {len(names)} tools"
                    self._emit(McpEvent(self.plugin_id, "tools_changed", message, pid=conn.pid, tools=names))
        finally:
            conn.refreshing = False

    def _validator(self, tool: types.Tool) -> Validator | None:
        if tool.name not in self._validators:
            self._validators[tool.name] = compile_schema(tool)
            if self._validators[tool.name] is None:
                self.request.logger.warning(
                    "[%s] tool '%s' has an input schema that is not valid JSON Schema; its arguments are not "
                    "checked before sending",
                    self.plugin_id,
                    tool.name,
                )
        return self._validators[tool.name]

    # calls --------------------------------------------------------------------------------------
    async def call(self, call: Call) -> Outcome:
        """Call the tool `call.handler` with the arguments `call.payload` (see the module docstring).

        Failures are outcome errors; only the caller's own cancellation propagates (the server
        is then told the request was cancelled)."""
        name = call.handler
        if call.kind != "method":
            return Outcome.failed(
                UNKNOWN_HANDLER,
                f"plugin '{self.plugin_id}' is an MCP server: it offers tools, called as methods, "
                f"not '{call.kind}' handlers",
            )
        tool = self._tools.get(name)
        if tool is None:
            if self.status in ("stopped", "error"):
                return Outcome.failed(UNAVAILABLE, f"MCP server '{self.plugin_id}' is {self.status}: {self.last_error}")
            known = ", ".join(sorted(self._tools)) or "none"
            return Outcome.failed(
                UNKNOWN_HANDLER, f"MCP server '{self.plugin_id}' has no tool '{name}' (its tools: {known})"
            )
        arguments = _arguments(call.payload)
        if arguments is None:
            return Outcome.failed(
                INVALID_REQUEST,
                f"the arguments of tool '{name}' must be a JSON object, not {type(call.payload).__name__}",
            )
        validator = self._validator(tool)
        if validator is not None and (problems := argument_problems(validator, name, arguments)) is not None:
            return problems
        started = time.monotonic()
        conn = self._conn
        try:
            if conn is None or not conn.usable or self.status != "running":
                conn = await self._running(self.call_timeout_s)
            session = conn.session
            assert session is not None
            remaining = max(0.001, self.call_timeout_s - (time.monotonic() - started))
            result = await session.call_tool(name, arguments, read_timeout_seconds=remaining)
        except InvocationError as exc:
            return Outcome(None, (), PluginError(exc.code, str(exc), retryable=exc.retryable))
        except MCPError as exc:
            if exc.error.code == types.CONNECTION_CLOSED and conn is not None:
                return await self._connection_lost(conn, name)
            return request_failure(exc, name, self.plugin_id)
        except ValidationError as exc:
            message = f"MCP server '{self.plugin_id}' answered tool '{name}' with a malformed result: {_describe(exc)}"
            return Outcome.failed(PROTOCOL_ERROR, message)
        except Exception as exc:
            if conn is not None and not conn.usable:
                return await self._connection_lost(conn, name)
            # the SDK checks structured content against the tool's output schema (RuntimeError)
            message = f"MCP server '{self.plugin_id}' answered tool '{name}' unusably: {_describe(exc)}"
            return Outcome(None, (), PluginError(INVALID_ANSWER, message, type(exc).__name__))
        return tool_outcome(result)

    async def _connection_lost(self, conn: _Connection, name: str) -> Outcome:
        """The outcome of a call whose connection ended under it: `crashed` when the server exited."""
        link = conn.link
        if self._stopping:
            return Outcome.failed(UNAVAILABLE, f"MCP server '{self.plugin_id}' is stopping")
        if link is not None:
            code = await link.exit_code_soon(1.0)
            self._mark_dead(conn)
            if code is not None:
                await link.last_words()
                message = (
                    f"MCP server '{self.plugin_id}' exited during the call to '{name}' (exit code {code}); "
                    f"it is being restarted{self._tail()}"
                )
                return Outcome(None, (), PluginError(CRASHED, message, retryable=True, detail={"exit_code": code}))
            reason = link.end_reason or "its link closed"
            message = f"MCP server '{self.plugin_id}' {reason} during the call to '{name}'; it is being restarted"
            return Outcome(None, (), PluginError(CRASHED, message, retryable=True))
        self._mark_dead(conn)
        where = f" at {self.spec.url}" if isinstance(self.spec, HttpServer) else ""
        message = (
            f"the connection to MCP server '{self.plugin_id}'{where} was lost during the call to '{name}'; "
            "it is being reconnected"
        )
        return Outcome(None, (), PluginError(UNAVAILABLE, message, retryable=True))

    def _tail(self) -> str:
        tail = self._log.tail_text()
        return f"; stderr tail:\n{tail}" if tail else ""

    # status -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Runtime status: status, transport, server, tools, restarts (+ pid or url, last error)."""
        conn = self._conn
        data: dict[str, Any] = {
            "status": self.status,
            "transport": self.spec.transport,
            "restarts": self.restarts,
            "tools": len(self._tools),
        }
        if isinstance(self.spec, StdioServer):
            data["command"] = list(self.spec.command)
            data["confined"] = self.spec.confined
        else:
            data["url"] = self.spec.url
        if conn is not None:
            if conn.pid is not None:
                data["pid"] = conn.pid
            if conn.server is not None:
                data["server"] = {"name": conn.server.name, "version": conn.server.version}
            data["protocol_version"] = conn.protocol_version
        if self.last_error:
            data["error"] = self.last_error
        if self._last_exit is not None:
            data["last_exit_code"] = self._last_exit
        return data

    async def health(self) -> Health:
        info = self.info()
        conn = self._conn
        if self.status in ("stopped", "error") or conn is None:
            return Health("down", self.last_error or self.status, info)
        if self.status != "running" or conn.session is None:
            return Health("degraded", self.status, info)
        try:
            async with asyncio.timeout(self.options.health_timeout_s):
                await conn.session.send_ping()
        except (MCPError, TimeoutError) as exc:
            return Health("degraded", f"ping failed: {_describe(exc)}", info)
        return Health("ok", "", info)


async def _list_tools(session: ClientSession) -> dict[str, types.Tool]:
    """Every tool the server offers (all pages; the first of a name wins); none when it has no tools."""
    capabilities = session.server_capabilities
    if capabilities is not None and capabilities.tools is None:
        return {}
    tools: dict[str, types.Tool] = {}
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        for tool in page.tools:
            tools.setdefault(tool.name, tool)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _connection_closed(exc: BaseException | None) -> bool:
    return isinstance(exc, MCPError) and exc.error.code == types.CONNECTION_CLOSED


def _arguments(payload: Any) -> dict[str, Any] | None:
    """A call's payload as tool arguments (None: not an object)."""
    if payload is None:
        return {}
    if hasattr(payload, "model_dump"):
        payload = payload.model_dump(mode="json")
    if isinstance(payload, Mapping):
        return dict(payload)
    return None


def _describe(exc: BaseException) -> str:
    """One line for an exception (an exception group: its leaves)."""
    if isinstance(exc, BaseExceptionGroup):
        parts = dict.fromkeys(_describe(e) for e in exc.exceptions)
        return "; ".join(parts)
    if isinstance(exc, MCPError):
        return f"{exc.error.message} (JSON-RPC error {exc.error.code})"
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if not errors:
            return str(exc)
        where = ".".join(str(p) for p in errors[0]["loc"])
        return f"{where + ': ' if where else ''}{errors[0]['msg']}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@functools.cache
def _client_info() -> types.Implementation:
    try:
        version = importlib.metadata.version("plughost")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return types.Implementation(name="plughost", version=version)


__all__ = ["McpEvent", "McpPluginHandle", "McpStatus"]
