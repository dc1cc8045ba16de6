"""What plugin authors import."""

from plughost.sdk.bot import Approve, Block, Bot, BotApi, Reject, Reply, ReplyBuilder, SendBuilder
from plughost.sdk.descriptor import (
    CommandOverload,
    CommandSpec,
    Descriptor,
    InterceptorSpec,
    MethodSpec,
    ParamSpec,
    RouteSpec,
)
from plughost.sdk.events import MessageEvent, MessageSentEvent, MetaEvent, NoticeEvent, RequestEvent
from plughost.sdk.handle import Health, PluginHandle
from plughost.sdk.manifest import PluginManifest, load_manifest
from plughost.sdk.message import Message, Segment
from plughost.sdk.models import (
    DiscoveryStatus,
    EventType,
    PluginEvent,
    PluginExecutionContext,
    PluginExecutionResult,
    PluginState,
)
from plughost.sdk.plugin import Plugin, PluginContext

__all__ = [
    "Approve",
    "Block",
    "Bot",
    "BotApi",
    "CommandOverload",
    "CommandSpec",
    "Descriptor",
    "DiscoveryStatus",
    "EventType",
    "Health",
    "InterceptorSpec",
    "Message",
    "MessageEvent",
    "MessageSentEvent",
    "MetaEvent",
    "MethodSpec",
    "NoticeEvent",
    "ParamSpec",
    "Plugin",
    "PluginContext",
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
    "load_manifest",
]
