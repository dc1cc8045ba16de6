"""What plugin authors import."""

from plughost.sdk.descriptor import (
    CommandOverload,
    CommandSpec,
    Descriptor,
    InterceptorSpec,
    MethodSpec,
    ParamSpec,
    RouteSpec,
)
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
    "CommandOverload",
    "CommandSpec",
    "Descriptor",
    "DiscoveryStatus",
    "EventType",
    "Health",
    "InterceptorSpec",
    "Message",
    "MethodSpec",
    "ParamSpec",
    "Plugin",
    "PluginContext",
    "PluginEvent",
    "PluginExecutionContext",
    "PluginExecutionResult",
    "PluginHandle",
    "PluginManifest",
    "PluginState",
    "RouteSpec",
    "Segment",
    "load_manifest",
]
