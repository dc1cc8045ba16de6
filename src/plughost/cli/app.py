"""The `plughost` command line.

Start-up matters here: `plughost --help` and `plughost plugins list` must not pay for what only
other commands use. The command modules import the host, the adapters, the console and the
runtimes inside the commands that need them; `tests/test_cli_imports.py` keeps it that way.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from plughost.cli import console as console_cli
from plughost.cli import plugins, worker
from plughost.cli.common import PluginDirOption, WorkspaceOption
from plughost.cli.console import ConsoleOption
from plughost.cli.output import fail, plugin_table, setup_logging, stdout
from plughost.errors import PlugHostError

app = typer.Typer(
    name="plughost",
    help="A polyglot plugin host for Python bots and AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
app.add_typer(plugins.app, name="plugins")
app.command("exec")(console_cli.exec_command)
app.command("worker")(worker.worker)


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
) -> None:
    """Load the workspace and open the console; run until /stop, Ctrl-D, end of input or SIGTERM."""
    import asyncio
    import signal

    from plughost.adapters.console import detect_mode, serve_console
    from plughost.host import Host

    async def main() -> None:
        host = Host(workspace, extra_plugin_dirs=plugin_dir or ())
        if any(bot.enabled for bot in host.bot_settings.bots):  # [[bots]] in plughost.toml
            from plughost.adapters.onebot import OneBotAdapter

            host.add_adapter(OneBotAdapter(host.bot_settings.bots, host.dispatcher))
        async with host:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, host.request_stop)
            stdout().print(
                plugin_table([i.summary() for i in host.manager.list_plugins()], title=f"plughost — {host.workspace}")
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
