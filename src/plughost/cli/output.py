"""Rendering helpers shared by CLI commands: rich tables, JSON, one-line errors."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:  # rich is imported when something is printed (`plughost --help` prints without it)
    from rich.console import Console
    from rich.table import Table

STATE_STYLE = {
    "enabled": "green",
    "disabled": "yellow",
    "loaded": "cyan",
    "error": "red",
    "isolated": "magenta",
    "unloaded": "dim",
}


def stdout() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


class _RichLogHandler(logging.Handler):
    """rich's log handler, made (and `rich.logging` imported) at the first record that reaches it:
    most commands log nothing, and they need not pay for importing it."""

    def __init__(self) -> None:
        super().__init__()
        self._rich: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._rich is None:
            from rich.logging import RichHandler

            self._rich = RichHandler(console=stderr(), show_path=False, rich_tracebacks=False, markup=False)
            self._rich.setFormatter(self.formatter)
        self._rich.emit(record)


def setup_logging(level: str) -> None:
    """Install a rich handler on the root logger (the library itself never does this)."""
    handler = _RichLogHandler()
    handler.setLevel(level.upper())  # the terminal's level; other handlers (the management log ring) choose theirs
    logging.basicConfig(level=level.upper(), handlers=[handler], format="%(name)s: %(message)s", force=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line and exit non-zero (`message` is printed as it is, never read as markup)."""
    from rich.text import Text

    stderr().print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def note(message: str) -> None:
    """One dim line on stderr (where a command's answer came from…); stdout stays clean for --json.

    Written without rich: `plugins list --json` through a running host does not import it.
    """
    dim = sys.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    sys.stderr.write(f"\x1b[2m{message}\x1b[0m\n" if dim else f"{message}\n")
    sys.stderr.flush()


def print_json(data: Any) -> None:
    """Print `data` as JSON; a value JSON cannot express is a clear error, not a traceback."""
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        fail(f"the result cannot be printed as JSON: {exc} (drop --json to see it as text)")
    sys.stdout.write(text + "\n")


def render_value(value: Any) -> str:
    """A result as text: strings as they are, JSON-able values as JSON, anything else as repr."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def plugin_table(rows: Iterable[dict[str, Any]], title: str = "plugins") -> Table:
    """A table of `PluginInstance.summary()` rows; cells are plain `Text`, so plugin errors are never markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in ("id", "version", "runtime", "state", "priority", "offers", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        offers = [f"{len(row[k])} {k}" for k in ("methods", "commands") if row.get(k)]
        if "execute" in row.get("capabilities", ()):
            offers.append("execute")
        style = STATE_STYLE.get(str(row["state"]), "")
        table.add_row(
            Text(row["id"]),
            Text(row["version"]),
            Text(row["runtime"]),
            Text(str(row["state"]), style=style),
            Text(str(row["priority"])),
            Text(", ".join(offers)),
            Text(row.get("error") or ""),
        )
    return table
