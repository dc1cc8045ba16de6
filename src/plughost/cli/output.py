"""Rendering helpers shared by CLI commands: rich tables, JSON, one-line errors."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:  # rich is imported when something is printed (`plughost --help` prints without it)
    from rich.console import Console
    from rich.table import Table

ISO_8601 = "%Y-%m-%dT%H:%M:%S"  # log lines' time stamps (local time)
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

            self._rich = RichHandler(
                console=stderr(),
                show_path=False,
                rich_tracebacks=False,
                markup=False,
                omit_repeated_times=False,
                log_time_format=ISO_8601,
            )
            self._rich.setFormatter(self.formatter)
        self._rich.emit(record)


def setup_logging(level: str) -> None:
    """Install a rich handler on the root logger (the library itself never does this)."""
    handler = _RichLogHandler()
    handler.setLevel(level.upper())  # the terminal's level; other handlers (the management log ring) choose theirs
    logging.basicConfig(level=level.upper(), handlers=[handler], format="%(name)s: %(message)s", force=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line and exit non-zero (`message` is printed as it is, never read as markup).

    Exit status 2 is for a bad command line or argument (what the user typed), 1 for anything else.
    """
    error_line(message)
    raise typer.Exit(code)


def error_line(message: str) -> None:
    """`error: message` on stderr, the message printed as it is (never read as markup)."""
    from rich.text import Text

    stderr().print(Text.assemble(("error:", "bold red"), " ", message))


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 command`, `2 commands` (`nouns`: an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


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


def print_catalog(rows: list[dict[str, Any]], conflicts: Iterable[str] = (), title: str = "plugins") -> None:
    """`PluginManager.catalog()` rows: the table of plugins, then a line per invalid plugin and id conflict."""
    from rich.text import Text

    out = stdout()
    out.print(plugin_table((r for r in rows if r.get("state") is not None), title=title))
    for row in rows:
        if row.get("status") == "invalid":
            out.print(Text.assemble(("invalid", "red"), f" {row['path']}: {'; '.join(row.get('errors') or [])}"))
    for conflict in conflicts:
        out.print(Text.assemble(("conflict", "yellow"), f" {conflict}"))


@contextmanager
def kept_off_the_terminal(logger_name: str) -> Iterator[None]:
    """While inside, records of `logger_name` do not reach the terminal (other handlers still get them):
    for what the command prints itself, so it is not said twice."""

    def keep(record: logging.LogRecord) -> bool:
        return record.name != logger_name

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, _RichLogHandler)]
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def plugin_table(rows: Iterable[dict[str, Any]], title: str = "plugins") -> Table:
    """A table of `PluginInstance.summary()` rows; cells are plain `Text`, so plugin errors are never markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in ("id", "version", "runtime", "state", "priority", "offers", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        offers = [plural(len(row[k]), k.removesuffix("s")) for k in ("methods", "commands") if row.get(k)]
        if "execute" in row.get("capabilities", ()):
            offers.append("execute")
        style = STATE_STYLE.get(str(row["state"]), "")
        state = str(row["state"])
        if row.get("runtime_status") not in (None, "running", "stopped"):  # a process restarting, a remote gone
            state, style = f"{state} ({row['runtime_status']})", "yellow"
        table.add_row(
            Text(row["id"]),
            Text(row["version"]),
            Text(row["runtime"]),
            Text(state, style=style),
            Text(str(row["priority"])),
            Text(", ".join(offers)),
            Text(row.get("error") or ""),
        )
    return table
