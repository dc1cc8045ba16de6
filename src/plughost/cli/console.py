"""`plughost exec "/cmd args"`: run one console command and exit with its result."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plughost.cli.common import (
    KeyOption,
    LocalOption,
    RemoteOption,
    Where,
    through_host,
)
from plughost.cli.output import fail

if TYPE_CHECKING:
    from plughost.cli.remote import RemoteHost
    from plughost.host import Host

ConsoleOption = Annotated[
    bool,
    typer.Option(
        "--console/--no-console",
        help="Read commands from stdin (a prompt on a terminal; one per line from a pipe).",
    ),
]


# exit codes by result kind (`plughost.bot.commands.ResultKind` values): 2 for what the user typed
# (an unknown command, arguments that fit no signature or do not parse); any other kind exits 1
EXIT_CODES = {"success": 0, "unknown_command": 2, "too_long": 2, "signature_mismatch": 2, "parse_error": 2}


def exec_command(
    command: Annotated[str, typer.Argument(help='The command line, e.g. "/plugins enable notes".', show_default=False)],
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
) -> None:
    """Run one command as the console, print its replies, and exit.

    Beside a running host the command runs in it (through its management API); otherwise the
    workspace is loaded for it. --local always loads the workspace, and is refused while a host
    runs (a command may change state the host would write back over).

    Exit code: 0 success, 2 unknown command or wrong arguments, 1 any other failure.
    """
    if not command.strip():
        fail("the command is empty: give one, e.g. plughost exec '/help'", 2)

    async def here(host: Host) -> dict[str, Any]:
        from plughost.bot.commands import CommandSender

        result = await host.commands.execute_command(CommandSender.console(), command)
        return {"ok": result.ok, "kind": str(result.kind.value), "text": result.text, "error": result.error}

    def there(host: RemoteHost) -> dict[str, Any]:
        return host.console(command)

    result = through_host(Where.given(remote, key, local), there, here, changes_state=True)
    text = result.get("text") or result.get("error")
    if text:
        stream = sys.stdout if result["ok"] else sys.stderr
        stream.write(text + "\n")
        stream.flush()
    raise typer.Exit(EXIT_CODES.get(str(result["kind"]), 1))
