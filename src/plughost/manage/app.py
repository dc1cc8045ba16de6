"""The management server's ASGI app: plughost's API, the CLIProxyAPI and Jank routes, plugin routes."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from plughost.manage.console import mount_console
from plughost.manage.context import ManageContext
from plughost.manage.errors import install_error_handlers
from plughost.manage.routes import (
    cliproxy,
    jank,
    market,
    mcp,
    metrics,
    operate,
    plugin_http,
    plugins,
    sandbox,
    schedules,
    streams,
)
from plughost.manage.security import BodyLimit, require_key
from plughost.market.market import Market

DESCRIPTION = """Operate a running plughost: plugins, configuration, calls, events, logs, metrics.

Every route except `/v0/resource/...` (plugin resources, public by design), `/openapi.json` and
`/docs` needs `Authorization: Bearer <key>`; the key is printed by `plughost run` (by default
it is generated into `.plughost/manage.key`). Errors have one shape:
`{"error": {"code", "message", "detail"}}`.
"""


def build_app(ctx: ManageContext) -> FastAPI:
    """The app for one host; `ctx` carries everything the routes use."""
    from plughost import __version__

    app = FastAPI(title="plughost management API", version=__version__, description=DESCRIPTION)
    app.state.manage = ctx
    app.state.market = Market.for_manager(ctx.host.manager)  # validates [market]: a bad table stops the start
    install_error_handlers(app, invalid_request_styles=[jank.invalid_request])
    authenticated = [Depends(require_key)]
    for router in (
        plugins.router,
        schedules.router,
        streams.router,
        operate.router,
        sandbox.router,
        market.router,
        metrics.router,
        jank.router,
        cliproxy.router,
    ):
        app.include_router(router, dependencies=authenticated)
    app.include_router(plugin_http.management)  # after the built-in routes: they win
    app.include_router(plugin_http.resources)
    mcp.mount(app, ctx)  # MCP over streamable HTTP at /mcp (the agent extra), behind the key
    mount_console(app)
    if ctx.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=ctx.settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(BodyLimit, limit=ctx.settings.max_body_bytes)
    return app
