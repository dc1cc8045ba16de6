"""What plugin authors import: `from plughost.sdk import Plugin, CommandContext, Reply, …`.

Everything a plugin needs is here — the `Plugin` and its decorators, the context objects handlers
receive, commands (context, argument types, the user-facing error), bot answers, the action
client and message builders, events, messages, the call contract (`Call` → `Outcome`), HTTP
requests and responses of `@plugin.http_route`, and the data models. The submodules are the
SDK's internals; their names may move.
"""

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
from plughost.sdk.http import HttpRequest, HttpResponse, HttpRouteSpec
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
