"""The `plughost` command line.

Start-up matters here: `plughost --help` and `plughost plugins list` must not pay for what only
other commands use. The command modules import the host, the adapters, the console and the
runtimes inside the commands that need them; `tests/test_cli_imports.py` keeps it that way.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plughost.cli import agent as agent_cli
from plughost.cli import console as console_cli
from plughost.cli import market as market_cli
from plughost.cli import plugins, status, worker
from plughost.cli.common import PluginDirOption, WorkspaceOption
from plughost.cli.console import ConsoleOption
from plughost.cli.output import fail, plugin_table, setup_logging, stdout
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.host import Host
    from plughost.manage.server import ManageServer

app = typer.Typer(
    name="plughost",
    help="A polyglot plugin host for Python bots and AI agents.\n\n"
    "`plugins …`, `exec` and `status` talk to the host serving the workspace (`plughost run`) through its "
    "management API when one runs, and otherwise load the workspace themselves (a dim line on stderr says "
    "which). --remote URL names a host, --key its key; --local always loads the workspace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
app.add_typer(plugins.app, name="plugins")
app.command("exec")(console_cli.exec_command)
app.command("status")(status.status)
app.command("worker")(worker.worker)
agent_cli.register(app)  # plughost mcp, plughost agent …
app.add_typer(market_cli.app, name="market")
app.command("pack")(market_cli.pack)


@app.callback()
def configure(
    log_level: Annotated[str, typer.Option("--log-level", "-l", help="debug, info, warning or error.")] = "warning",
) -> None:
    """plughost: load Python, native and go-plugin plugins under one lifecycle and guard."""
    setup_logging(log_level)


@app.command()
def run(
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
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
) -> None:
    """Load the workspace and open the console; run until /stop, Ctrl-D, end of input or SIGTERM.

    The management API (and the web console) listens on 127.0.0.1:3210 unless told otherwise; its
    key is printed at start. `plughost plugins …`, `plughost exec` and `plughost status` run
    beside it talk to this host.

    With --reload the plugin directories are watched: saving a plugin's file reloads only that
    plugin, in its runtime and placement (workers too), after [host] reload_debounce_ms (300) of
    quiet; the old version keeps serving if the new one fails (the error is printed). A new plugin
    directory loads, a removed one unloads; config/plugins/<id>.toml runs its reconfigure hook.
    Enabled state and priority survive. Editor temp files, __pycache__, data/ and hidden files
    are ignored.
    """
    import asyncio
    import signal

    from plughost.adapters.console import detect_mode, serve_console
    from plughost.host import Host

    async def main() -> None:
        host = Host(workspace, extra_plugin_dirs=plugin_dir or (), hot_reload=reload)
        if any(bot.enabled for bot in host.bot_settings.bots):  # [[bots]] in plughost.toml
            from plughost.adapters.onebot import OneBotAdapter

            host.add_adapter(OneBotAdapter(host.bot_settings.bots, host.dispatcher))
        server = _management_server(host, manage, manage_bind)
        if host.config.agent:  # [agent] with a model: "@bot …" and "/ask …" go to the agent
            from plughost.agent import attach_agent

            attach_agent(host)
        async with host:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, host.request_stop)
            stdout().print(
                plugin_table([i.summary() for i in host.manager.list_plugins()], title=f"plughost — {host.workspace}")
            )
            if host.hot_reload:
                _report_changes(host)
            if server is not None:
                assert server.key is not None
                stdout().print(
                    f"management API on {server.url} ({server.key.describe()})", style="dim", highlight=False
                )
            mode = detect_mode() if console else "none"
            hint = "press Ctrl-C to stop" if mode == "none" else "type /help for commands, /stop or Ctrl-D to quit"
            stdout().print(f"running; {hint}", style="dim")
            await serve_console(host, mode)
            if not host.stop_requested.is_set():  # /stop has already said so
                stdout().print("stopping…", style="dim")

    try:
        asyncio.run(main())
    except PlugHostError as exc:
        fail(str(exc))


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
    if bind is not None:
        try:
            settings = ManageSettings.model_validate(settings.model_dump() | {"bind": bind})
        except ValueError as exc:
            fail(f"--manage-bind: {exc}")
    return host.add_adapter(ManageServer(host, settings))


@app.command()
def new(
    plugin_id: Annotated[str, typer.Argument(help="Id of the new plugin.", show_default=False)],
    directory: Annotated[
        Path, typer.Option("--dir", "-d", help="Where to create it.", file_okay=False, resolve_path=True)
    ] = Path("plugins"),
) -> None:
    """Scaffold a Python plugin (manifest, code, a passing test)."""
    from plughost.cli.scaffold import scaffold

    try:
        target = scaffold(plugin_id, directory)
    except PlugHostError as exc:
        fail(str(exc))
    stdout().print(f"created {target}; run its test with: pytest {target / 'tests'}", highlight=False)


def main() -> None:
    try:
        app()
    finally:
        # the process is exiting: spare the interpreter's last full collection a walk over every
        # object the imports made (a fifth of `plughost plugins list`); the memory goes back to
        # the system with the process (Python never promised finalizers at exit)
        gc.freeze()
