"""The `plughost` command tree (typer): every command and the root's options.

`plughost.cli.app.main` runs it, after the fast path of `plugins list` (`plughost.cli.quick`) declined.
The command modules import the host, the adapters, the console and the runtimes inside the commands
that need them; `tests/test_cli_imports.py` keeps it that way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plughost.cli import agent as agent_cli
from plughost.cli import console as console_cli
from plughost.cli import init as init_cli
from plughost.cli import market as market_cli
from plughost.cli import plugins, run, status, worker
from plughost.cli.common import global_options
from plughost.cli.output import fail
from plughost.errors import PlugHostError

app = typer.Typer(
    name="plughost",
    help="A polyglot plugin host for Python bots and AI agents.\n\n"
    "`plugins …`, `exec` and `status` talk to the host serving the workspace (`plughost run`) through its "
    "management API when one runs, and otherwise load the workspace themselves (`plugins list` reads the "
    "plugins' files instead, unless --load); a dim line on stderr says which. --remote URL names a host, "
    "--key its key; --local always loads the workspace.\n\n"
    "-w, -p and -l are global: they go before or after the command (`plughost run -l info`). "
    "Exit status: 0 success, 2 a bad command line or argument (unknown option, missing workspace, "
    "wrong argument type), 1 any other failure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
app.add_typer(plugins.app, name="plugins")
app.command("init")(init_cli.init)
app.command("run")(run.run)
app.command("exec")(console_cli.exec_command)
app.command("status")(status.status)
app.command("worker")(worker.worker)
agent_cli.register(app)  # plughost mcp, plughost agent …
app.add_typer(market_cli.app, name="market")
app.command("pack")(market_cli.pack)


def _print_version(value: bool) -> None:
    if value:
        from plughost import __version__

        sys.stdout.write(f"plughost {__version__}\n")
        raise typer.Exit()


@app.callback()
def configure(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """plughost: load Python, native and go-plugin plugins under one lifecycle and guard."""


@app.command()
def new(
    plugin_id: Annotated[str, typer.Argument(help="Id of the new plugin.", show_default=False)],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "-d",
            help="Where to create it (default: the workspace's first plugin directory, [host] plugin_dirs).",
            file_okay=False,
            resolve_path=True,
            show_default=False,
        ),
    ] = None,
    language: Annotated[
        str,
        typer.Option(
            "--lang",
            metavar="<python|c|rust|go>",
            help="The plugin's language: python (in-process or in a worker), c or rust (a native library), "
            "go (a go-plugin executable).",
        ),
    ] = "python",
) -> None:
    """Scaffold a plugin: manifest, a command, a method and a passing test (in Python also a route).

    `--lang c` writes plugin.c, a Makefile and the SDK header, `--lang rust` a cdylib crate without
    dependencies: the command printed builds the library the host loads (its test builds it too).
    `--lang go` writes a go-plugin executable (methods only) that the host builds when it loads it."""
    import shlex

    from plughost.cli.output import warning_line
    from plughost.cli.scaffold import LANGUAGES, enclosing_workspace, invalid_id, plugin_dirs, scaffold
    from plughost.runtime.builds import build_hint
    from plughost.sdk.manifest import is_valid_plugin_id

    options = global_options()
    options.refuse_plugin_dirs("new")
    if language not in LANGUAGES:
        fail(f"--lang: '{language}' is not one of {', '.join(LANGUAGES)}", code=2)
    if not is_valid_plugin_id(plugin_id):
        fail(invalid_id(plugin_id), 2)
    try:
        workspace = enclosing_workspace(options.workspace)
        searched = plugin_dirs(workspace)
        parent = directory or (searched[0] if searched else workspace / "plugins")
        target = scaffold(plugin_id, parent, language)
    except PlugHostError as exc:
        fail(str(exc))
    if parent not in searched:
        looks = ", ".join(str(d) for d in searched) or "no directory ([host] plugin_dirs is empty)"
        warning_line(f"the host of {workspace} does not load plugins from {parent}: it looks in {looks}")
    test = shlex.join([sys.executable, "-m", "pytest", str(target / "tests")])  # this plughost's interpreter
    lines = [f"created {target}"]
    build = build_hint(target)
    if build is not None:
        host_builds = " (the host also runs it when it loads the plugin)" if language == "go" else ""
        lines.append(f"build it with: {build}{host_builds}")
    lines.append(f"run its test with: {test}")
    typer.echo("\n".join(lines))
