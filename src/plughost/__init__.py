"""plughost: a polyglot plugin host for Python bots and AI agents."""

from plughost.core.config import HostConfig
from plughost.core.manager import PluginManager
from plughost.errors import PlugHostError
from plughost.guard import Guard
from plughost.host import Host
from plughost.sdk import (
    Descriptor,
    Health,
    Message,
    Plugin,
    PluginContext,
    PluginEvent,
    PluginExecutionContext,
    PluginExecutionResult,
    PluginHandle,
    PluginManifest,
    PluginState,
    Segment,
)

__version__ = "0.1.0"

__all__ = [
    "Descriptor",
    "Guard",
    "Health",
    "Host",
    "HostConfig",
    "Message",
    "PlugHostError",
    "Plugin",
    "PluginContext",
    "PluginEvent",
    "PluginExecutionContext",
    "PluginExecutionResult",
    "PluginHandle",
    "PluginManager",
    "PluginManifest",
    "PluginState",
    "Segment",
]
