"""`plughost exec "/cmd args"`: run one console command and exit with its result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plughost.cli.common import PluginDirOption, WorkspaceOption
from plughost.cli.output import fail
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.bot.commands import CommandResult

ConsoleOption = Annotated[
    bool,
    typer.Option(
        "--console/--no-console",
        help="Read commands from stdin (a prompt on a terminal; one per line from a pipe).",
    ),
]


def exec_command(
    command: Annotated[str, typer.Argument(help='The command line, e.g. "/plugins enable notes".', show_default=False)],
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
) -> None:
    """Load the workspace, run one command as the console, print its replies, and exit.

    Exit code: 0 success, 2 unknown command or wrong arguments, 1 any other failure.
    """
    import asyncio

    from plughost.bot.commands import CommandSender, ResultKind
    from plughost.host import Host

    exit_codes = {
        ResultKind.SUCCESS: 0,
        ResultKind.UNKNOWN_COMMAND: 2,
        ResultKind.TOO_LONG: 2,
        ResultKind.SIGNATURE_MISMATCH: 2,
    }

    async def main() -> CommandResult:
        async with Host(workspace, extra_plugin_dirs=plugin_dir or ()) as host:
            return await host.commands.execute_command(CommandSender.console(), command)

    try:
        result = asyncio.run(main())
    except PlugHostError as exc:
        fail(str(exc))
    text = result.text or result.error
    if text:
        stream = sys.stdout if result.ok else sys.stderr
        stream.write(text + "\n")
        stream.flush()
    raise typer.Exit(exit_codes.get(result.kind, 1))
