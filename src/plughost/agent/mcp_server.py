"""plughost's plugins for any MCP client, with the official `mcp` SDK (the `agent` extra).

- **tools**: the tool catalog (every enabled plugin's methods; commands of `[agent.tools] commands`),
  called through the guard with their arguments checked against the schema;
- **resources**: each enabled plugin's manifest (`plughost://plugins/<id>/manifest`), generated
  docs with its README (`plughost://plugins/<id>/docs`) and its HTTP resources
  (`plughost://plugins/<id>/resources/<path>`, what CLIProxyAPI-style plugins serve under
  `/v0/resource/plugins/<id>/<path>`), read with a GET `http` call through the guard;
- **list-changed notifications** when plugins load, unload, are enabled, disabled or reloaded:
  on the connection's own stream for clients of the handshake protocol versions, and on
  `subscriptions/listen` streams for 2026-07-28 clients.

Transports: `serve_stdio` (`plughost mcp`, for desktop agents and IDEs) and `McpHttpApp`, the
streamable-HTTP ASGI app the management server mounts at `/mcp` behind the management key.
An MCP client holds the operator's rights: every tool (the management key is the operator's).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Receive, Scope, Send

from plughost.agent.catalog import CHANGE_EVENTS, ToolSpec
from plughost.agent.settings import AgentSettings
from plughost.agent.tools import Caller, Toolbox
from plughost.sdk.call import Call
from plughost.sdk.http import HttpRequest, HttpResponse, resource_base
from plughost.sdk.models import PluginEvent
from plughost.sdk.permissions import PermitteeId
from plughost.sdk.senders import CommandSender
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.core.instance import PluginInstance
    from plughost.core.manager import PluginManager
    from plughost.host import Host

log = logging.getLogger("plughost.agent.mcp")
SERVER_NAME = "plughost"
URI_PREFIX = "plughost://plugins/"
README_NAMES = ("README.md", "README.rst", "README.txt", "README")
README_MAX_BYTES = 64 * 1024
INSTRUCTIONS = (
    "Tools are the methods of the plugins this plughost runs (named <plugin>__<method>); resources are "
    "each plugin's manifest, docs and pages. The lists change when plugins are loaded, enabled or disabled."
)
MCP_CALLER = Caller(PermitteeId.parse("console"), CommandSender.console(), unrestricted=True)


@dataclass(frozen=True, slots=True)
class PluginResource:
    """One resource of a plugin: its URI, what it is, and how to read it."""

    uri: str
    plugin_id: str
    kind: str  # manifest | docs | http
    name: str
    description: str
    mime_type: str | None = None
    handler: str = ""
    path: str = ""

    def listing(self) -> types.Resource:
        return types.Resource(
            uri=self.uri, name=self.name, title=self.name, description=self.description, mime_type=self.mime_type
        )


class McpService:
    """The MCP server for one plugin manager (one per transport; each owns its `Server`).

    `toolbox`'s catalog decides the tools (`close()` closes the toolbox too with `owns_toolbox`).
    Change notifications are sent by tasks of `tasks`. `close()` stops following the manager.
    """

    def __init__(
        self, manager: PluginManager, toolbox: Toolbox, tasks: TaskOwner, *, owns_toolbox: bool = False
    ) -> None:
        from plughost import __version__

        self.manager = manager
        self.toolbox = toolbox
        self._owns_toolbox = owns_toolbox
        self.tasks = tasks
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self.server: Server[Any] = _Server(
            SERVER_NAME,
            version=__version__,
            title="plughost",
            description="the plugins of a plughost workspace",
            instructions=INSTRUCTIONS,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
            on_subscriptions_listen=self.listen,
        )
        self.server.middleware.append(self._track_connection)
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._resources_fingerprint = self._resource_fingerprint()
        self._tools_version = toolbox.catalog.version
        self._closed = False
        manager.add_event_handler(self._on_event, CHANGE_EVENTS)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.manager.events.remove_handler(self._on_event)
            self.listen.close()
            if self._owns_toolbox:
                self.toolbox.close()

    # tools ----------------------------------------------------------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_tool(t) for t in self.toolbox.tools_for(MCP_CALLER)])

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self.toolbox.catalog.get(name)
        return dict(tool.parameters) if tool is not None else None

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        result = await self.toolbox.call_tool(params.name, params.arguments or {}, caller=MCP_CALLER)
        structured = result.value if result.ok and isinstance(result.value, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(text=result.text())], structured_content=structured, is_error=not result.ok
        )

    # resources --------------------------------------------------------------------------------------
    def resources(self) -> list[PluginResource]:
        """The resources of every enabled plugin, in priority order."""
        found: list[PluginResource] = []
        for instance in self.manager.enabled_plugins():
            found.extend(plugin_resources(instance))
        return found

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[r.listing() for r in self.resources()])

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        resource = next((r for r in self.resources() if r.uri == uri), None)
        if resource is None:
            raise MCPError(types.INVALID_PARAMS, f"there is no resource {uri} (see resources/list)")
        instance = self.manager.get_plugin(resource.plugin_id)
        if instance is None:
            raise MCPError(types.INVALID_PARAMS, f"plugin '{resource.plugin_id}' is gone")
        if resource.kind == "manifest":
            text = json.dumps(instance.manifest.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False)
            return _text(uri, text, resource.mime_type)
        if resource.kind == "docs":
            return _text(uri, plugin_docs(instance, self.toolbox.catalog.tools()), resource.mime_type)
        return await self._read_http(resource)

    async def _read_http(self, resource: PluginResource) -> types.ReadResourceResult:
        request = HttpRequest("GET", resource.path)
        outcome = await self.manager.call(resource.plugin_id, Call(resource.handler, request.to_payload(), "http"))
        if outcome.error is not None:
            raise MCPError(
                types.INTERNAL_ERROR, f"plugin '{resource.plugin_id}' failed serving {resource.path}: {outcome.error}"
            )
        try:
            response = HttpResponse.from_value(outcome.value)
        except ValueError as exc:
            raise MCPError(
                types.INTERNAL_ERROR, f"plugin '{resource.plugin_id}' answered malformed HTTP: {exc}"
            ) from exc
        if response.status >= 400:
            raise MCPError(
                types.INTERNAL_ERROR,
                f"plugin '{resource.plugin_id}' answered HTTP {response.status} for {resource.path}",
            )
        content_type = next(iter(_header(response, "content-type")), "application/octet-stream")
        mime = content_type.split(";")[0].strip() or None
        if _is_text(content_type):
            return _text(resource.uri, response.body.decode("utf-8", errors="replace"), mime)
        blob = types.BlobResourceContents(
            uri=resource.uri, mime_type=mime, blob=base64.b64encode(response.body).decode()
        )
        return types.ReadResourceResult(contents=[blob])

    def _resource_fingerprint(self) -> tuple[str, ...]:
        return tuple(r.uri for r in self.resources())

    # list-changed notifications -----------------------------------------------------------------------
    async def _track_connection(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        """Remember the connections of handshake-era clients: their list-changed notifications go on
        the connection's own stream (2026-07-28 clients listen with `subscriptions/listen`)."""
        connection = getattr(ctx.session, "_connection", None)
        if isinstance(connection, Connection) and connection.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            self._connections.add(connection)
        return await call_next(ctx)

    def _on_event(self, event: PluginEvent) -> None:
        if self._closed:
            return
        catalog = self.toolbox.catalog
        catalog.tools()  # brought up to date (it follows the same events)
        tools_changed = catalog.version != self._tools_version
        self._tools_version = catalog.version
        fingerprint = self._resource_fingerprint()
        resources_changed = fingerprint != self._resources_fingerprint
        self._resources_fingerprint = fingerprint
        if tools_changed or resources_changed:
            with contextlib.suppress(RuntimeError):  # RuntimeError: shutting down, nobody to tell
                self.tasks.spawn(self._notify(tools_changed, resources_changed), name="mcp list changed")

    async def _notify(self, tools: bool, resources: bool) -> None:
        if tools:
            await self.bus.publish(ToolsListChanged())
        if resources:
            await self.bus.publish(ResourcesListChanged())
        for connection in list(self._connections):
            if tools:
                await connection.send_tool_list_changed()
            if resources:
                await connection.send_resource_list_changed()

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options()


class _Server(Server[Any]):
    """The SDK's server, advertising list-changed notifications to handshake-era clients on every transport."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True, resources_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)


# transports -----------------------------------------------------------------------------------------
async def serve_stdio(make_host: Callable[[], Host], settings: AgentSettings | None = None) -> None:
    """Serve MCP over this process's stdin and stdout until the client closes stdin (or the host is
    asked to stop). Standard output is claimed first, so nothing a plugin prints — nor a worker
    process it starts — can corrupt the protocol (it goes to stderr); then the host starts."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        host = make_host()
        settings = settings if settings is not None else AgentSettings.from_host_config(host.config)
        async with host:
            toolbox = Toolbox(
                host.manager, command_plugins=settings.tools.commands, timeout_s=settings.tools.timeout_s, surface="mcp"
            )
            service = McpService(host.manager, toolbox, host.tasks.child("mcp"), owns_toolbox=True)
            try:
                async with asyncio.TaskGroup() as group:
                    served = group.create_task(
                        service.server.run(read_stream, write_stream, service.initialization_options()),
                        name="mcp-stdio",
                    )
                    stop = group.create_task(host.wait_until_stopped(), name="mcp-stdio-stop")
                    await asyncio.wait({served, stop}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (served, stop):
                        task.cancel()
            finally:
                service.close()


class McpHttpApp:
    """MCP over streamable HTTP as an ASGI app (the management server mounts it at `/mcp`).

    The first request makes the service (`make_service(tasks)`) and runs the SDK's session manager
    in a task of `tasks`, until `stop` returns (or `tasks` closes): then open streams end, so the
    server's shutdown is not held up, and the service is closed. Authentication is the mounting
    app's business.
    """

    def __init__(
        self,
        make_service: Callable[[TaskOwner], McpService],
        tasks: TaskOwner,
        *,
        stop: Callable[[], Awaitable[None]] | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.make_service = make_service
        self.tasks = tasks
        self._stop = stop
        self.max_body_bytes = max_body_bytes
        self.service: McpService | None = None
        self.sessions: StreamableHTTPSessionManager | None = None
        self._started: asyncio.Event | None = None
        self._ended = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._running():
            await _plain(send, 503, "the MCP endpoint is stopping")
            return
        assert self.sessions is not None
        await self.sessions.handle_request(scope, receive, send)

    async def _running(self) -> bool:
        if self._ended:
            return False
        if self._started is None:
            self._started = asyncio.Event()
            try:
                self.tasks.spawn(self._serve(self._started), name="mcp-http-sessions")
            except RuntimeError:
                self._ended = True
                return False
        await self._started.wait()
        return not self._ended

    async def _serve(self, started: asyncio.Event) -> None:
        service = None
        try:
            service = self.service = self.make_service(self.tasks)
            self.sessions = StreamableHTTPSessionManager(
                app=service.server,
                security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
                max_request_body_size=self.max_body_bytes,
            )
            async with self.sessions.run():
                started.set()
                if self._stop is not None:
                    await self._stop()
                else:
                    await asyncio.Event().wait()  # until the owner closes
        finally:
            self._ended = True
            started.set()
            if service is not None:
                service.close()


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# the resources of a plugin ------------------------------------------------------------------------------
def plugin_resources(instance: PluginInstance) -> list[PluginResource]:
    plugin_id = instance.id
    base = f"{URI_PREFIX}{plugin_id}"
    title = instance.manifest.name or plugin_id
    found = [
        PluginResource(
            f"{base}/manifest", plugin_id, "manifest", f"{plugin_id} manifest",
            f"The manifest of plugin '{title}' (id, version, runtime, permissions, limits, config schema …).",
            "application/json",
        ),
        PluginResource(
            f"{base}/docs", plugin_id, "docs", f"{plugin_id} docs",
            f"What plugin '{title}' offers (tools, commands) and its README.", "text/markdown",
        ),
    ]  # fmt: skip
    descriptor = instance.descriptor
    if descriptor is not None:
        prefix = resource_base(plugin_id)
        for spec in descriptor.http:
            if spec.kind != "resource" or spec.method != "GET":
                continue
            rest = spec.path.removeprefix(prefix)
            found.append(
                PluginResource(
                    f"{base}/resources{rest}", plugin_id, "http", spec.menu or f"{plugin_id} {rest}",
                    f"The page {spec.path} of plugin '{title}'" + (f" ({spec.menu})" if spec.menu else ""),
                    handler=spec.handler, path=spec.path,
                )
            )  # fmt: skip
    return found


def plugin_docs(instance: PluginInstance, tools: tuple[ToolSpec, ...]) -> str:
    """Markdown: the plugin's description, its tools with their parameters, its commands, its README."""
    manifest = instance.manifest
    lines = [f"# {manifest.name or instance.id} ({instance.id} {manifest.version})", ""]
    if manifest.description:
        lines += [manifest.description, ""]
    own = [t for t in tools if t.plugin_id == instance.id]
    if own:
        lines += ["## Tools", ""]
        for tool in own:
            schema = json.dumps(tool.parameters, indent=2, ensure_ascii=False, default=str)
            lines += [f"### {tool.name}", "", tool.description, "", "```json", schema, "```", ""]
    descriptor = instance.descriptor
    if descriptor is not None and descriptor.commands:
        lines += ["## Chat commands", ""]
        for command in descriptor.commands:
            usage = f" `{command.usage}`" if command.usage else ""
            lines.append(f"- `/{command.name}`{usage} — {command.description}".rstrip(" —"))
        lines.append("")
    readme = _readme(instance.path)
    if readme:
        lines += ["## README", "", readme.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _readme(path: Path) -> str | None:
    directory = path if path.is_dir() else path.parent
    if not path.is_dir():
        return None  # a single-file plugin shares its directory with others
    for name in README_NAMES:
        candidate = directory / name
        try:
            if candidate.is_file():
                return candidate.read_bytes()[:README_MAX_BYTES].decode("utf-8", errors="replace")
        except OSError:
            return None
    return None


def _tool(tool: ToolSpec) -> types.Tool:
    return types.Tool(
        name=tool.name, title=tool.label, description=tool.description, input_schema=dict(tool.parameters)
    )


def _text(uri: str, text: str, mime: str | None) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)])


def _header(response: HttpResponse, name: str) -> list[str]:
    return next((list(v) for k, v in response.headers.items() if k.lower() == name), [])


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    return (
        kind.startswith("text/")
        or kind in ("application/json", "application/xml", "image/svg+xml")
        or kind.endswith("+json")
    )
