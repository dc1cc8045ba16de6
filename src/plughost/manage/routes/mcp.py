"""MCP over streamable HTTP at `/mcp`: the host's plugins as tools and resources for any MCP client.

Behind the management key like every route (`Authorization: Bearer <key>`), answered in the one
error shape when it is missing or wrong. Needs the `agent` extra (the `mcp` SDK); without it, or
with `[agent.mcp] http = false`, there is no `/mcp`. See docs/agent.md.
"""

from __future__ import annotations

import importlib.util
import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from plughost.agent.settings import AgentSettings
from plughost.manage.context import ManageContext
from plughost.manage.errors import ApiError, error_response
from plughost.manage.feeds import Feed
from plughost.manage.security import require_key
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.manage")
MCP_PATH = "/mcp"


def mount(app: FastAPI, ctx: ManageContext) -> None:
    """Serve MCP at `/mcp` on `app` when the `mcp` SDK is installed and `[agent.mcp] http` is on."""
    settings = AgentSettings.from_host_config(ctx.host.config)
    if not settings.mcp.http:
        return
    if importlib.util.find_spec("mcp") is None:
        log.info("MCP over HTTP is off: the mcp SDK is not installed (pip install 'plughost[agent]')")
        return
    from plughost.agent.mcp_server import McpHttpApp, McpService
    from plughost.agent.tools import Toolbox

    manager = ctx.host.manager

    def make_service(tasks: TaskOwner) -> McpService:
        tools = settings.tools
        toolbox = Toolbox(manager, command_plugins=tools.commands, timeout_s=tools.timeout_s, surface="mcp")
        return McpService(manager, toolbox, tasks, owns_toolbox=True)

    async def stopping() -> None:  # the server closes its feeds when it stops: the MCP sessions end then
        await _closed(ctx.events)

    tasks = ctx.host.tasks.child("mcp over http")
    endpoint = McpHttpApp(make_service, tasks, stop=stopping, max_body_bytes=ctx.settings.max_body_bytes)
    app.router.routes.append(Route(MCP_PATH, endpoint=_KeyRequired(endpoint, ctx), include_in_schema=False))


class _KeyRequired:
    """The management key check of every route, in front of an ASGI app."""

    def __init__(self, app: ASGIApp, ctx: ManageContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await require_key(request, self.ctx, request.headers.get("authorization"))
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _closed(feed: Feed) -> None:
    while not feed.closed:
        await feed.wait(feed.last_id, 3600)
