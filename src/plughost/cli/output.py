"""Rendering helpers shared by CLI commands: rich tables, JSON, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from plughost.cli.listing import (
    catalog_text,
    columns_for,
    invalid_lines,
    json_text,
    listed,
    row_cells,
)
from plughost.cli.plain import note

__all__ = [
    "error_line",
    "fail",
    "note",
    "plugin_table",
    "print_catalog",
    "print_json",
    "render_value",
    "stderr",
    "stdout",
    "warning_line",
]

if TYPE_CHECKING:  # rich is imported when something is printed (`plughost --help` prints without it)
    from rich.console import Console
    from rich.table import Table


def stdout() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line and exit non-zero (`message` is printed as it is, never read as markup).

    Exit status 2 is for a bad command line or argument (what the user typed), 1 for anything else.
    """
    import typer

    error_line(message)
    raise typer.Exit(code)


def error_line(message: str) -> None:
    """`error: message` on stderr, the message printed as it is (never read as markup)."""
    from rich.text import Text

    stderr().print(Text.assemble(("error:", "bold red"), " ", message))


def warning_line(message: str) -> None:
    """`warning: message` on stderr, the message printed as it is (never read as markup)."""
    from rich.text import Text

    stderr().print(Text.assemble(("warning:", "yellow"), " ", message))


def print_json(data: Any) -> None:
    """Print `data` as JSON; a value JSON cannot express is a clear error, not a traceback."""
    try:
        text = json_text(data)
    except (TypeError, ValueError) as exc:
        fail(f"the result cannot be printed as JSON: {exc} (drop --json to see it as text)")
    sys.stdout.write(text)


def render_value(value: Any) -> str:
    """A result as text: strings as they are, JSON-able values as JSON, anything else as repr."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def print_catalog(rows: list[dict[str, Any]], conflicts: Iterable[str] = (), title: str = "plugins") -> None:
    """`PluginManager.catalog()` rows (or `plughost.cli.inventory`'s): the table of plugins, then a line per
    invalid plugin and id conflict; plain text where rich would print no colour (`listing.catalog_text`)."""
    conflicts = list(conflicts)
    text = catalog_text(rows, conflicts, title)
    if text is not None:
        sys.stdout.write(text)
        return
    from rich.text import Text

    out = stdout()
    out.print(plugin_table(listed(rows), title=title))
    for word, rest in invalid_lines(rows):
        out.print(Text.assemble((word, "red"), rest))
    for conflict in conflicts:
        out.print(Text.assemble(("conflict", "yellow"), f" {conflict}"))


def plugin_table(rows: Iterable[dict[str, Any]], title: str = "plugins") -> Table:
    """A table of `PluginInstance.summary()` rows; cells are plain `Text`, so plugin errors are never markup."""
    from rich.table import Table
    from rich.text import Text

    rows = list(rows)
    columns = columns_for(rows)
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    state_at = columns.index("state")
    for row in rows:
        cells, style = row_cells(row, columns)
        table.add_row(*(Text(c, style=style if i == state_at else "") for i, c in enumerate(cells)))
    return table
