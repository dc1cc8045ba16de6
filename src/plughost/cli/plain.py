"""Output without rich: the dim note line, and tables exactly as rich prints them where it prints no colour.

Importing rich and rendering one table costs a CLI command about as much as importing typer, which
`plughost plugins list` cannot afford (see `benchmarks/bench_cli.py`). `plain_table` gives the
same characters rich gives a `Table(title=…, title_justify="left")` of one-line cells; it answers
None whenever it could differ (a terminal, where rich adds colour; a cell that is not printable
ASCII or a table wider than the console, which rich wraps): the caller prints with rich then.
`tests/test_cli_plain.py` compares the two.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

# rich's box.HEAVY_HEAD: a heavy head, a light body
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_HEAD_RULE = ("┡", "━", "╇", "┩")
_BODY = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")
# variables with which rich treats a pipe as a terminal (colour, escape codes)
_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def plain_width(environ: Mapping[str, str] | None = None) -> int | None:
    """The width rich's Console would use for stdout, or None when rich would not print plain text there."""
    env = os.environ if environ is None else environ
    stream = sys.stdout
    if any(name in env for name in _TERMINAL_VARIABLES) or not (stream.encoding or "").lower().startswith("utf"):
        return None
    try:
        if stream.isatty():
            return None
    except ValueError:  # closed
        return None
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns) or None  # 0: rich's own corner case
    for descriptor in (0, 1, 2):  # rich asks stdin, stdout, then stderr
        try:
            return os.get_terminal_size(descriptor).columns or 80
        except (OSError, ValueError):
            continue
    return 80


def note(message: str) -> None:
    """One dim line on stderr (where a command's answer came from…); stdout stays clean for --json.

    Written without rich: `plugins list --json` through a running host does not import it.
    """
    dim = sys.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    sys.stderr.write(f"\x1b[2m{message}\x1b[0m\n" if dim else f"{message}\n")
    sys.stderr.flush()


def is_plain(text: str) -> bool:
    """Printable ASCII on one line: what rich prints unchanged and measures as one column per character."""
    return text.isascii() and text.isprintable()


def plain_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str | None:
    """The table rich prints in `width` columns, with a newline after each line; None if rich would wrap
    or measure something differently."""
    cells = [list(headers), *(list(row) for row in rows)]
    if not all(is_plain(cell) for row in cells for cell in row) or not is_plain(title):
        return None
    widths = [max(len(row[i]) for row in cells) + 2 for i in range(len(headers))]
    if sum(widths) + len(widths) + 1 > width or len(title) > sum(widths) + len(widths) + 1:
        return None
    lines = [title] if title else []
    lines.append(_rule(_TOP, widths))
    lines.append(_line(_HEAD, headers, widths))
    lines.append(_rule(_HEAD_RULE, widths))
    lines.extend(_line(_BODY, row, widths) for row in rows)
    lines.append(_rule(_BOTTOM, widths))
    return "".join(line + "\n" for line in lines)


def _rule(parts: tuple[str, str, str, str], widths: list[int]) -> str:
    left, fill, cross, right = parts
    return left + cross.join(fill * w for w in widths) + right


def _line(parts: tuple[str, str, str], cells: Sequence[str], widths: list[int]) -> str:
    left, between, right = parts
    return left + between.join(f" {cell}".ljust(w) for cell, w in zip(cells, widths, strict=True)) + right
