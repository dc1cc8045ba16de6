"""The management API's request and response models (they are its OpenAPI documentation)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PluginSummary(BaseModel):
    """A plugin as the list shows it: loaded ones with their state, others with their discovery status."""

    model_config = ConfigDict(extra="allow")

    id: str
    state: str | None = Field(description="Lifecycle state; null for plugins discovered but not loaded.")
    status: str = Field(description="Discovery status: available, source_only or invalid.")
    runtime: str | None = None
    path: str
    name: str | None = None
    version: str | None = None
    isolation: str | None = None
    priority: int | None = None
    error: str | None = None
    runtime_status: str | None = Field(
        default=None,
        description="A process, remote or MCP plugin's runtime status: running, restarting, disconnected, "
        "reconnecting, stopped, error.",
    )
    errors: list[str] = Field(default_factory=list, description="Why an invalid plugin cannot load.")
    offers: list[str] = Field(
        default_factory=list, description='What a loaded plugin offers, counted: "2 commands", "1 matcher", "execute" …'
    )
    breaker: str | None = Field(default=None, description="closed, open or half_open.")
    calls: int = 0
    failures: int = 0
    p99_ms: float | None = None


class PluginList(BaseModel):
    plugins: list[PluginSummary]
    total: int


class PluginDetail(BaseModel):
    """One plugin: its summary, manifest, descriptor, configuration and guard metrics; for one that
    was discovered but is not loaded, its discovery status and errors (state null, no descriptor)."""

    model_config = ConfigDict(extra="allow")

    id: str
    state: str | None = Field(description="Lifecycle state; null when the plugin is discovered but not loaded.")
    status: str = Field(default="available", description="Discovery status: available, source_only or invalid.")
    errors: list[str] = Field(default_factory=list, description="Why an invalid plugin cannot be loaded.")
    summary: dict[str, Any]
    manifest: dict[str, Any]
    descriptor: dict[str, Any] | None
    config: dict[str, Any]
    config_schema: dict[str, Any] | None
    guard: dict[str, Any]
    chats_off: list[str] = Field(
        default_factory=list, description="Chats where the plugin is switched off (PUT /plugins/{id}/chats/{chat})."
    )


class ActionResult(BaseModel):
    """The answer of a lifecycle action."""

    id: str
    action: str
    changed: bool = Field(description="False when the plugin already was in the asked state.")
    state: str
    version: str | None = None


class LoadRequest(BaseModel):
    path: str = Field(description="Plugin directory or file to load (absolute, or relative to the workspace).")


class ExecuteRequest(BaseModel):
    method: str | None = Field(default=None, description="Method to call; null runs the plugin's execute().")
    args: Any = Field(default=None, description="A JSON object of named arguments (or execute()'s input).")
    timeout_s: float | None = Field(default=None, gt=0, le=3600)


class ExecuteResult(BaseModel):
    """LurkBot's PluginExecutionResult."""

    model_config = ConfigDict(extra="allow")

    success: bool
    result: Any = None
    error: str | None = None
    execution_time: float
    metadata: dict[str, Any] = Field(default_factory=dict)


class ConfigResult(BaseModel):
    id: str
    config: dict[str, Any]
    applied: bool = Field(
        description="True when the plugin is loaded and runs with this configuration (its reconfigure hook took "
        "it); false when it is saved only (the plugin is not loaded: it gets it when it loads)."
    )


class EventRecord(BaseModel):
    id: int
    plugin_id: str
    type: str
    timestamp: float
    success: bool
    message: str
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EventPage(BaseModel):
    events: list[EventRecord]
    last_id: int
    missed: int = Field(0, description="Events that aged out of the history before this request.")


class LogRecordModel(BaseModel):
    id: int
    timestamp: float
    level: str
    logger: str
    plugin_id: str | None
    message: str
    exception: str | None = None


class LogPage(BaseModel):
    records: list[LogRecordModel]
    last_id: int


class BreakerInfo(BaseModel):
    plugin_id: str
    state: str
    consecutive_failures: int
    isolated_for_s: float
    isolations: int
    recent_errors: list[dict[str, Any]]


class BreakerList(BaseModel):
    breakers: list[BreakerInfo]


class ClearResult(BaseModel):
    cleared: list[str]


class CommandInfo(BaseModel):
    name: str
    names: list[str]
    plugin_id: str
    priority: int
    description: str
    usage: list[str]


class CommandRegistryModel(BaseModel):
    commands: list[CommandInfo]
    conflicts: list[dict[str, str]]
    problems: list[str]


class Grant(BaseModel):
    permittee: str = Field(description="e.g. m123.456 (member 456 of group 123), u456, console, *")
    permission: str = Field(description="e.g. plughost:*, dice:roll")


class PermissionList(BaseModel):
    permissions: dict[str, str] = Field(description="Registered permission ids and their descriptions.")
    grants: dict[str, list[str]]


class GrantResult(BaseModel):
    changed: int


class BotStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    bot: str
    attached: bool


class BotConnectionInfo(BaseModel):
    """A configured bot's connection to its OneBot implementation."""

    bot: str
    transport: str
    where: str = Field(description="Whom it connects to (ws-forward) or where it listens.")
    state: Literal["connecting", "connected", "disconnected", "listening"]
    since: float | None = Field(description="When the state began (Unix time).")
    connections: int
    reconnect_attempts: int = Field(description="Connections tried or accepted after the first.")
    last_error: str | None
    last_error_at: float | None
    summary: str = Field(description="One line, as `/status` shows it.")


class BotList(BaseModel):
    bots: list[BotStatus]
    connections: list[BotConnectionInfo] = Field(default_factory=list, description="One per configured bot.")


class BusSubscription(BaseModel):
    """One `@plugin.subscribe` subscription: its queue and what it delivered."""

    plugin: str
    pattern: str
    handler: str
    queued: int = Field(description="Messages waiting in its bounded queue.")
    delivered: int
    failed: int
    overflowed: int = Field(description="Messages dropped for it because its queue was full.")


class BusStats(BaseModel):
    """The message bus between plugins: counters since the host started (docs/python-api.md)."""

    backend: str = Field(description='"memory" or "redis".')
    published: int
    requests: int
    delivered: int
    failed: int
    overflowed: int = Field(description="Messages dropped for slow subscribers (their queue was full).")
    subscriptions: list[BusSubscription] = Field(default_factory=list)


class HostStatus(BaseModel):
    version: str
    workspace: str
    pid: int
    uptime_s: float
    memory_rss_bytes: int | None
    plugins: dict[str, int] = Field(description="Plugin counts by state.")
    runtimes: dict[str, int] = Field(description="Loaded plugin counts by runtime.")
    open_breakers: list[str]
    bots: int
    bot_connections: list[BotConnectionInfo] = Field(default_factory=list, description="One per configured bot.")
    events_last_id: int
    bus: BusStats | None = Field(default=None, description="The message bus (subscriptions: GET /api/v1/bus).")
    schedules: list[ScheduleInfo] = Field(default_factory=list, description="Every plugin schedule.")


class ConsoleRequest(BaseModel):
    command: str = Field(min_length=1, max_length=4000, description='A console command line, e.g. "/plugins".')


class ConsoleResult(BaseModel):
    ok: bool
    kind: str
    text: str
    error: str
    usage: list[str]


class ScheduleInfo(BaseModel):
    """One `@plugin.schedule` job: its trigger, when it runs next, how its last run went."""

    plugin: str
    handler: str
    trigger: str = Field(description='How it is shown: "cron 0 8 * * * (Asia/Shanghai)" or "every 300s".')
    cron: str | None = None
    every_s: float | None = None
    tz: str | None = None
    chat: str | None = Field(default=None, description="The chat it posts to (group:<id> / private:<id>).")
    overlap: bool
    missed: str = Field(description="What happens to runs missed while the host was down: skip or run_once.")
    active: bool = Field(description="False while the plugin is disabled or unloaded.")
    next_run: str | None = Field(description="ISO 8601; null when inactive.")
    last_run: str | None
    last_outcome: str | None = Field(description='"ok", "failed" or "off in <chat>"; null before the first run.')
    last_error: str | None
    runs: int
    failures: int
    skipped: int = Field(description="Ticks skipped because the previous run was still going.")
    switched_off: int = Field(description="Runs not made because the plugin is switched off in the chat.")
    running: int


class ScheduleList(BaseModel):
    schedules: list[ScheduleInfo]


class ChatSwitches(BaseModel):
    """Where an enabled plugin is switched off (per-chat switches, kept in plugin-state.toml)."""

    id: str
    off: list[str] = Field(description="Chats (group:<id>, private:<id>) where the plugin is off.")


class ChatSwitchRequest(BaseModel):
    enabled: bool = Field(description="true: on in this chat (the default); false: off in this chat.")


class ChatSwitchResult(BaseModel):
    id: str
    chat: str
    enabled: bool
    changed: bool = Field(description="False when the plugin already was so in this chat.")
    off: list[str]


HostStatus.model_rebuild()  # `schedules` names ScheduleInfo, defined after it
