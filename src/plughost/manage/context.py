"""What every management route works with: the host, the settings, the key check, the feeds."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from plughost.host import Host
from plughost.manage.auth import KeyCheck
from plughost.manage.feeds import Feed
from plughost.manage.plugin_routes import RouteIndex
from plughost.manage.settings import ManageSettings


@dataclass
class ManageContext:
    """State of one management server (one per host; tests build their own)."""

    host: Host
    settings: ManageSettings
    keys: KeyCheck
    events: Feed
    logs: Feed
    plugin_routes: RouteIndex = field(default_factory=RouteIndex)


async def context(request: Request) -> ManageContext:
    """FastAPI dependency: the server's context."""
    ctx: ManageContext = request.app.state.manage
    return ctx
