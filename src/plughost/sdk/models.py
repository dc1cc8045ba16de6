"""Data that crosses the API boundary: execution context/result, events, lifecycle states."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PluginState(StrEnum):
    """Lifecycle states (DESIGN.md)."""

    DISCOVERED = "discovered"
    LOADED = "loaded"
    ENABLED = "enabled"
    DISABLED = "disabled"
    UNLOADED = "unloaded"
    ERROR = "error"
    ISOLATED = "isolated"


class DiscoveryStatus(StrEnum):
    """What discovery found for a plugin that is not loaded yet."""

    AVAILABLE = "available"
    SOURCE_ONLY = "source_only"
    INVALID = "invalid"


class EventType(StrEnum):
    LOAD = "load"
    UNLOAD = "unload"
    ENABLE = "enable"
    DISABLE = "disable"
    RELOAD = "reload"
    EXECUTE = "execute"
    ERROR = "error"
    ISOLATE = "isolate"
    RECOVER = "recover"
    RECONFIGURE = "reconfigure"


class PluginExecutionContext(BaseModel):
    """Input to a plugin's `execute` handler (LurkBot's context)."""

    model_config = ConfigDict(extra="allow")

    user_id: str | None = None
    channel_id: str | None = None
    session_id: str | None = None
    input_data: Any = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class PluginExecutionResult(BaseModel):
    """Outcome of one guarded call; exceptions never escape, they land in `error`."""

    success: bool
    result: Any = None
    error: str | None = None
    execution_time: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)


class PluginEvent(BaseModel):
    """One lifecycle transition or execution, as recorded in the event history.

    `plugin_name` is LurkBot's field name; it holds the plugin's id (also offered as `plugin_id`).
    """

    plugin_name: str
    event_type: EventType
    timestamp: float = Field(default_factory=time.time)
    success: bool = True
    message: str = ""
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def plugin_id(self) -> str:
        """The id of the plugin the event is about: the same value as `plugin_name`."""
        return self.plugin_name
