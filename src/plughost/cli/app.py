"""The `plughost` command line.

Start-up matters here: `plughost --help` and `plughost plugins list` must not pay for what only
other commands use. `plughost plugins list` is answered before typer is imported when it can be
(`plughost.cli.quick`); every other command line runs the typer tree of `plughost.cli.program`.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer._click.core import Context


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer application, imported on first use
        from plughost.cli.program import app

        return app
    raise AttributeError(f"module 'plughost.cli.app' has no attribute '{name}'")


def main(argv: list[str] | None = None) -> None:
    """The `plughost` program: exit status 0 success, 2 a bad command line, 1 any other failure.

    Click's errors (unknown option, bad value, missing argument) are printed as one line, like
    plughost's own.
    """
    from plughost.cli.quick import answer

    if answer(sys.argv[1:] if argv is None else argv):
        gc.freeze()  # see below
        sys.exit(0)

    import typer
    from typer._click import exceptions as click  # typer's own copy of click

    from plughost.cli.common import add_global_options
    from plughost.cli.output import error_line
    from plughost.cli.program import app

    command = typer.main.get_command(app)
    add_global_options(command)
    try:
        result = command.main(args=argv, prog_name="plughost", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.NoArgsIsHelpError as exc:
        exc.show()  # the help, on stderr: no command was given
        code = exc.exit_code
    except click.UsageError as exc:
        code = exc.exit_code
        error_line(f"{_sentence(exc.format_message())} (see `{_command_path(exc.ctx)} --help`)")
    except click.ClickException as exc:
        code = exc.exit_code
        error_line(_sentence(exc.format_message()))
    except typer.Abort:
        code = 1
        error_line("aborted")
    finally:
        # the process is exiting: spare the interpreter's last full collection a walk over every
        # object the imports made (a fifth of `plughost plugins list`); the memory goes back to
        # the system with the process (Python never promised finalizers at exit)
        gc.freeze()
    sys.exit(code)


def _sentence(message: str) -> str:
    """Click's "Invalid value for …." as plughost says errors: lower case, no full stop, one line."""
    text = " ".join(message.split())
    return (text[:1].lower() + text[1:]).removesuffix(".")


def _command_path(ctx: Context | None) -> str:
    return ctx.command_path if ctx is not None else "plughost"
