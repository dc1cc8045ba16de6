"""`plughost run`: load the workspace, serve the management API and the bots, open the console."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plughost.cli.common import global_options
from plughost.cli.console import ConsoleOption
from plughost.cli.logs import kept_off_the_terminal
from plughost.cli.output import fail, print_catalog, stdout
from plughost.errors import PlugHostError

MANAGER_LOGGER = "plughost.core.manager"  # logs load errors, which the plugin table shows


class NodeRole(StrEnum):
    """`plughost run --role` (`[cluster] role`)."""

    gateway = "gateway"
    worker = "worker"
    both = "both"


if TYPE_CHECKING:
    from plughost.adapters.onebot import OneBotAdapter
    from plughost.host import Host
    from plughost.manage.server import ManageServer


def run(
    console: ConsoleOption = True,
    manage_bind: Annotated[
        str | None,
        typer.Option(
            "--manage-bind",
            help="host:port of the management API and web console (default [manage] bind, 127.0.0.1:3210).",
            show_default=False,
        ),
    ] = None,
    manage: Annotated[
        bool, typer.Option("--manage/--no-manage", help="Serve the management API and web console.")
    ] = True,
    reload: Annotated[
        bool | None,
        typer.Option(
            "--reload/--no-reload",
            help="Reload a plugin when its files change (default [host] hot_reload, off).",
            show_default=False,
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            metavar="REDIS_URL",
            help="Share the plugins' message bus and state through this Redis (default [cluster] redis_url; "
            "none: in memory).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        NodeRole | None,
        typer.Option(
            "--role",
            help="This node's part in event distribution (default [cluster] role, both): gateway relays its bots' "
            "events to the workers through Redis, worker handles them, both handles its own.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Load the workspace and open the console; run until /stop, Ctrl-D, end of input or SIGTERM.

    The management API (and the web console) listens on 127.0.0.1:3210 unless told otherwise; its
    key is printed at start. `plughost plugins …`, `plughost exec` and `plughost status` run
    beside it talk to this host. Each bot of [[bots]] says where it listens or whom it connects to.

    With --reload the plugin directories are watched: saving a plugin's file reloads only that
    plugin, in its runtime and placement (workers too), after [host] reload_debounce_ms (300) of
    quiet; the old version keeps serving if the new one fails (the error is printed). A new plugin
    directory loads, a removed one unloads; config/plugins/<id>.toml runs its reconfigure hook.
    Enabled state and priority survive. Editor temp files, __pycache__, data/ and hidden files
    are ignored.
    """
    import asyncio
    import contextlib
    import signal

    from plughost.adapters.console import detect_mode, serve_console
    from plughost.host import Host
    from plughost.runtime.collector import young_threshold

    options = global_options()
    workspace = options.workspace
    _check_options(workspace, manage_bind, cluster, role)
    _refuse_a_second_host(workspace)

    async def main() -> None:
        host = Host(workspace, extra_plugin_dirs=options.plugin_dirs, hot_reload=reload, cluster_url=cluster,
                    cluster_role=role.value if role is not None else None)  # fmt: skip
        bots = _bot_adapter(host)
        server = _management_server(host, manage, manage_bind)
        if host.config.agent:  # [agent] with a model: "@bot …" and "/ask …" go to the agent
            from plughost.agent import attach_agent

            attach_agent(host)
        async with contextlib.AsyncExitStack() as stack:
            with kept_off_the_terminal(MANAGER_LOGGER):  # load errors: printed once, with the plugins
                await stack.enter_async_context(host)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, host.request_stop)
            _print_plugins(host)
            if host.hot_reload:
                _report_changes(host)
            if server is not None:
                assert server.key is not None
                stdout().print(
                    f"management API on {server.url} ({server.key.describe()})", style="dim", highlight=False
                )
            if bots is not None:
                for line in describe_bots(bots):
                    stdout().print(line, highlight=False, markup=False)
            if host.cluster_events is not None:
                for line in host.cluster_events.status_lines():
                    stdout().print(line, highlight=False, markup=False)
            mode = detect_mode() if console else "none"
            hint = "press Ctrl-C to stop" if mode == "none" else "type /help for commands, /stop or Ctrl-D to quit"
            stdout().print(f"running; {hint}", style="dim")
            await serve_console(host, mode)
            if not host.stop_requested.is_set():  # /stop has already said so
                stdout().print("stopping…", style="dim")

    try:
        with young_threshold():  # this process is the host: fewer, cheaper collections (`runtime/collector.py`)
            asyncio.run(main())
    except PlugHostError as exc:
        fail(str(exc))


def _check_options(workspace: Path, manage_bind: str | None, cluster: str | None, role: NodeRole | None) -> None:
    """`run`'s options that the settings check: a value they reject is a usage error naming the option."""
    if manage_bind is not None:
        from plughost.manage.settings import ManageSettings

        _check_option("--manage-bind", lambda: ManageSettings(bind=manage_bind))
    if cluster is not None:
        from plughost.cluster.settings import ClusterSettings

        _check_option("--cluster", lambda: ClusterSettings(redis_url=cluster))
    elif role not in (None, NodeRole.both) and not _configured_redis(workspace):
        fail(f"--role {role}: needs --cluster REDIS_URL or [cluster] redis_url (the Redis it shares)", 2)


def _check_option(option: str, settings: Callable[[], object]) -> None:
    """Build `settings` from an option's value: a value they reject is a usage error naming the option."""
    from pydantic import ValidationError

    try:
        settings()
    except ValidationError as exc:
        reasons = (str(e.get("ctx", {}).get("error") or e["msg"]) for e in exc.errors())
        fail(f"{option}: {'; '.join(reasons)}", 2)


def _refuse_a_second_host(workspace: Path) -> None:
    """One host per workspace: a second would take `.plughost/manage.json` over and write the plugin state
    behind the first. A stale file (its process gone, or nothing answering at its address) is replaced."""
    from plughost.cli.remote import HostUnreachable, RemoteHost, read_server_file, resolve_key

    record, _ = read_server_file(workspace)
    if record is None:
        return
    try:
        with RemoteHost(record.url, resolve_key(workspace, None, record), record=record) as host:
            host.serves("/api/v1/status")
    except HostUnreachable:
        return
    fail(f"a host already runs for {workspace} (pid {record.pid}, {record.url}): stop it first, or talk to it "
         "with `plughost plugins …`, `plughost exec` and `plughost status`")  # fmt: skip


def _configured_redis(workspace: Path) -> bool:
    """Does plughost.toml name a Redis (an unreadable file: yes, the host says what is wrong with it)?"""
    from plughost.core.config import HostConfig

    try:
        return bool(HostConfig.load(workspace).cluster.get("redis_url"))
    except PlugHostError:
        return True


def _print_plugins(host: Host) -> None:
    """The plugins with their errors (each said once); an empty workspace is said plainly, with what to do."""
    rows = host.manager.catalog()
    conflicts = [str(c) for c in host.manager.last_discovery.conflicts]
    if rows:
        print_catalog(rows, conflicts, title=f"plughost — {host.workspace}")
    if not host.manager.list_plugins():
        searched = ", ".join(str(p) for p in host.manager.plugin_dirs)
        stdout().print(
            f"no plugin loaded from {searched}: `plughost new ID` adds one, `plughost init` makes a workspace "
            "with an example",
            style="yellow",
            highlight=False,
            markup=False,
        )


def _bot_adapter(host: Host) -> OneBotAdapter | None:
    """The OneBot adapter for [[bots]] (None when no bot is enabled)."""
    if not any(bot.enabled for bot in host.bot_settings.bots):
        return None
    if host.cluster_events is not None and not host.cluster_events.holds_connections:
        return None  # a worker node: the gateway holds the connections ([[bots]] give the settings)
    from plughost.adapters.onebot import OneBotAdapter

    return host.add_adapter(OneBotAdapter(host.bot_settings.bots, host.dispatcher))


def describe_bots(adapter: OneBotAdapter) -> list[str]:
    """One line per bot: where it listens (with the port it got) or whom it connects to."""
    lines = []
    for config in adapter.configs:
        host, _, _ = (config.bind or "").rpartition(":")
        port = adapter.ports.get(config.id)
        listen = f"{host}:{port}{config.path or ''}"
        if config.transport == "ws-forward":
            lines.append(f"bot '{config.id}': connecting to {config.endpoint} (OneBot v11, forward WebSocket)")
        elif config.transport == "ws-reverse":
            lines.append(f"bot '{config.id}': listening on ws://{listen} (OneBot v11, reverse WebSocket)")
        else:
            lines.append(
                f"bot '{config.id}': listening on http://{listen} for events, actions to {config.endpoint} "
                "(OneBot v11, HTTP)"
            )
    return lines


def _report_changes(host: Host) -> None:
    """Print what hot reload does (its failures are logged as errors, so they show anyway)."""
    from plughost.sdk.models import EventType, PluginEvent

    watched = ", ".join(str(p.relative_to(host.workspace)) if p.is_relative_to(host.workspace) else str(p)
                        for p in host.manager.watcher.paths)  # fmt: skip
    delay = host.config.host.reload_debounce_ms
    stdout().print(f"reloading on changes in {watched} ({delay} ms debounce)", style="dim", highlight=False)
    says = {EventType.RELOAD: "reloaded", EventType.LOAD: "loaded", EventType.UNLOAD: "unloaded"}

    def report(event: PluginEvent) -> None:
        if event.success and event.event_type in says:
            stdout().print(f"{says[event.event_type]} '{event.plugin_id}': {event.message}", highlight=False)
        elif event.event_type is EventType.RECONFIGURE and event.success:
            stdout().print(f"reconfigured '{event.plugin_id}'", highlight=False)

    host.manager.add_event_handler(report, [*says, EventType.RECONFIGURE])


def _management_server(host: Host, enabled: bool, bind: str | None) -> ManageServer | None:
    """The management server `plughost run` adds to `host` (None when switched off or not installed)."""
    if not enabled:
        return None
    try:
        from plughost.manage.server import ManageServer
        from plughost.manage.settings import ManageSettings
    except ImportError as exc:
        stdout().print(
            f"the management API is off: {exc.name} is not installed (pip install 'plughost[manage]')",
            style="yellow",
            highlight=False,
        )
        return None
    settings = ManageSettings.from_host_config(host.config)
    if not settings.enabled:
        return None
    if bind is not None:  # checked by `run`
        settings = ManageSettings.model_validate(settings.model_dump() | {"bind": bind})
    return host.add_adapter(ManageServer(host, settings))
