"""plughost: a polyglot plugin host for Python bots and AI agents.

`plughost` offers the host API (`Host`, `PluginManager`, `default_runtimes`, `HostConfig`,
`Guard` …) and, for convenience, every name of `plughost.sdk` (what plugin authors import; plugin
code imports it from `plughost.sdk`). The names are imported on first use, so a plugin (or a
worker process) that only needs the SDK does not pay for importing the whole host.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.core.config import HostConfig
    from plughost.errors import PlugHostError
    from plughost.guard import Guard
    from plughost.host import Host, PluginManager
    from plughost.runtime import default_runtimes
    from plughost.sdk import (
        AccessDenied,
        Action,
        Approve,
        BadRequest,
        Block,
        Bot,
        BotApi,
        BusApi,
        BusRequestError,
        Call,
        CommandArgumentError,
        CommandContext,
        CommandOverload,
        CommandSender,
        CommandSpec,
        Descriptor,
        DiscoveryStatus,
        Event,
        EventType,
        GroupId,
        Health,
        HttpRequest,
        HttpResponse,
        HttpRouteSpec,
        InterceptorSpec,
        Message,
        MessageBuilder,
        MessageEvent,
        MessageSentEvent,
        MetaEvent,
        MethodSpec,
        NoticeEvent,
        NotJsonError,
        Outcome,
        ParamSpec,
        PermissionId,
        PermitteeId,
        Plugin,
        PluginContext,
        PluginError,
        PluginEvent,
        PluginExecutionContext,
        PluginExecutionResult,
        PluginHandle,
        PluginManifest,
        PluginState,
        Reject,
        Reply,
        ReplyBuilder,
        RequestEvent,
        RouteSpec,
        Segment,
        SendBuilder,
        StateApi,
        UserId,
        load_manifest,
    )

__version__ = "0.1.0"

# Where the host API lives; every other exported name comes from `plughost.sdk`.
_HOST_HOMES = {
    "Guard": "plughost.guard",
    "Host": "plughost.host",
    "HostConfig": "plughost.core.config",
    "PlugHostError": "plughost.errors",
    "PluginManager": "plughost.host",
    "default_runtimes": "plughost.runtime",
}

# the host API above, and `plughost.sdk.__all__` (tests/test_public_api.py keeps them in step)
__all__ = [
    "AccessDenied",
    "Action",
    "Approve",
    "BadRequest",
    "Block",
    "Bot",
    "BotApi",
    "BusApi",
    "BusRequestError",
    "Call",
    "CommandArgumentError",
    "CommandContext",
    "CommandOverload",
    "CommandSender",
    "CommandSpec",
    "Descriptor",
    "DiscoveryStatus",
    "Event",
    "EventType",
    "GroupId",
    "Guard",
    "Health",
    "Host",
    "HostConfig",
    "HttpRequest",
    "HttpResponse",
    "HttpRouteSpec",
    "InterceptorSpec",
    "Message",
    "MessageBuilder",
    "MessageEvent",
    "MessageSentEvent",
    "MetaEvent",
    "MethodSpec",
    "NotJsonError",
    "NoticeEvent",
    "Outcome",
    "ParamSpec",
    "PermissionId",
    "PermitteeId",
    "PlugHostError",
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginEvent",
    "PluginExecutionContext",
    "PluginExecutionResult",
    "PluginHandle",
    "PluginManager",
    "PluginManifest",
    "PluginState",
    "Reject",
    "Reply",
    "ReplyBuilder",
    "RequestEvent",
    "RouteSpec",
    "Segment",
    "SendBuilder",
    "StateApi",
    "UserId",
    "default_runtimes",
    "load_manifest",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'plughost' has no attribute '{name}'")
    return getattr(importlib.import_module(_HOST_HOMES.get(name, "plughost.sdk")), name)


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
