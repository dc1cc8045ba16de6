"""What plugin authors import: `from plughost.sdk import Plugin, CommandContext, Reply, …`.

Everything a plugin needs is here — the `Plugin` and its decorators, the context objects handlers
receive, commands (context, argument types, the user-facing error), bot answers, the action
client and message builders, events, messages, the call contract (`Call` → `Outcome`), HTTP
requests and responses of `@plugin.http_route`, and the data models. The submodules are the
SDK's internals; their names may move.
"""

from collections.abc import Mapping
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.sdk.bot import Approve, Block, Bot, BotApi, Reject, Reply, ReplyBuilder, SendBuilder
    from plughost.sdk.call import Action, Call, Outcome, PluginError
    from plughost.sdk.commands import CommandArgumentError, CommandContext, GroupId, UserId
    from plughost.sdk.descriptor import (
        CommandOverload,
        CommandSpec,
        Descriptor,
        InterceptorSpec,
        MethodSpec,
        ParamSpec,
        RouteSpec,
    )
    from plughost.sdk.events import Event, MessageEvent, MessageSentEvent, MetaEvent, NoticeEvent, RequestEvent
    from plughost.sdk.handle import Health, PluginHandle
    from plughost.sdk.http import BadRequest, HttpRequest, HttpResponse, HttpRouteSpec
    from plughost.sdk.manifest import PluginManifest, load_manifest
    from plughost.sdk.message import Message, MessageBuilder, Segment
    from plughost.sdk.models import (
        DiscoveryStatus,
        EventType,
        PluginEvent,
        PluginExecutionContext,
        PluginExecutionResult,
        PluginState,
    )
    from plughost.sdk.permissions import PermissionId, PermitteeId
    from plughost.sdk.plugin import Plugin, PluginContext
    from plughost.sdk.senders import CommandSender
    from plughost.sdk.shared import AccessDenied, BusApi, BusRequestError, NotJsonError, StateApi

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
    "Health",
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
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginEvent",
    "PluginExecutionContext",
    "PluginExecutionResult",
    "PluginHandle",
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
    "load_manifest",
]

# each name is imported from its submodule on first use: a program that needs one part of the SDK
# (the manifest, the models) does not pay for all of it
_SUBMODULES: Mapping[str, str] = MappingProxyType(
    {
        "AccessDenied": "shared",
        "Action": "call",
        "Approve": "bot",
        "Block": "bot",
        "Bot": "bot",
        "BotApi": "bot",
        "BusApi": "shared",
        "BusRequestError": "shared",
        "Call": "call",
        "CommandArgumentError": "commands",
        "CommandContext": "commands",
        "CommandOverload": "descriptor",
        "CommandSender": "senders",
        "CommandSpec": "descriptor",
        "Descriptor": "descriptor",
        "DiscoveryStatus": "models",
        "Event": "events",
        "EventType": "models",
        "GroupId": "commands",
        "Health": "handle",
        "BadRequest": "http",
        "HttpRequest": "http",
        "HttpResponse": "http",
        "HttpRouteSpec": "http",
        "InterceptorSpec": "descriptor",
        "Message": "message",
        "MessageBuilder": "message",
        "MessageEvent": "events",
        "MessageSentEvent": "events",
        "MetaEvent": "events",
        "MethodSpec": "descriptor",
        "NotJsonError": "shared",
        "NoticeEvent": "events",
        "Outcome": "call",
        "ParamSpec": "descriptor",
        "PermissionId": "permissions",
        "PermitteeId": "permissions",
        "Plugin": "plugin",
        "PluginContext": "plugin",
        "PluginError": "call",
        "PluginEvent": "models",
        "PluginExecutionContext": "models",
        "PluginExecutionResult": "models",
        "PluginHandle": "handle",
        "PluginManifest": "manifest",
        "PluginState": "models",
        "Reject": "bot",
        "Reply": "bot",
        "ReplyBuilder": "bot",
        "RequestEvent": "events",
        "RouteSpec": "descriptor",
        "Segment": "message",
        "SendBuilder": "bot",
        "StateApi": "shared",
        "UserId": "commands",
        "load_manifest": "manifest",
    }
)


def __getattr__(name: str) -> Any:
    module = _SUBMODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'plughost.sdk' has no attribute '{name}'")
    return getattr(import_module(f"plughost.sdk.{module}"), name)
