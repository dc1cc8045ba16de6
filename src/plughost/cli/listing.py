"""What `plughost plugins list` shows of each plugin, and the listing as plain text or JSON.

The table (`output.print_catalog` with rich, `catalog_text` without it) and the fast path of
`plughost plugins list` (`plughost.cli.quick`) share these, so they print the same characters.
Standard library only: the fast path imports this before anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from plughost.cli.plain import is_plain, plain_table, plain_width

STATE_STYLE = {
    "enabled": "green",
    "disabled": "yellow",
    "loaded": "cyan",
    "error": "red",
    "isolated": "magenta",
    "unloaded": "dim",
}
LOADED_COLUMNS = ("id", "version", "runtime", "state", "priority", "offers", "error")
# rows of plugins that were not loaded (`plughost.cli.inventory`): what they offer and their errors are not known
INSTALLED_COLUMNS = ("id", "version", "runtime", "state", "priority")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 command`, `2 commands` (`nouns`: an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def columns_for(rows: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """The loaded plugins' columns, or fewer when the plugins were only read from their files (`loaded: false`)."""
    return INSTALLED_COLUMNS if any(row.get("loaded") is False for row in rows) else LOADED_COLUMNS


def row_cells(row: dict[str, Any], columns: tuple[str, ...]) -> tuple[list[str], str]:
    """The texts of one table row (one per column), and the style of its state."""
    offers = row.get("offers")
    if offers is None:  # a host from before plugins said what they offer
        offers = [plural(len(row[k]), k.removesuffix("s")) for k in ("commands", "methods") if row.get(k)]
        offers += ["execute"] if "execute" in (row.get("capabilities") or ()) else []
    state, style = str(row["state"]), STATE_STYLE.get(str(row["state"]), "")
    if row.get("runtime_status") not in (None, "running", "stopped"):  # a process restarting, a remote gone
        state, style = f"{state} ({row['runtime_status']})", "yellow"
    elif row.get("status") == "source_only":  # not loaded yet: it is built when it loads
        state = f"{state} (to build)"
    texts = {
        "id": str(row["id"]),
        "version": "?" if row.get("version") is None else str(row["version"]),  # not known before loading
        "runtime": str(row["runtime"]),
        "state": state,
        "priority": str(row["priority"]),
        "offers": ", ".join(offers),
        "error": str(row.get("error") or ""),
    }
    return [texts[c] for c in columns], style


def listed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that go in the table: plugins with a state (invalid ones get a line each instead)."""
    return [r for r in rows if r.get("state") is not None]


def invalid_lines(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(word, rest) of the line said for each invalid plugin: `invalid <path>: <errors>`."""
    invalid = [r for r in rows if r.get("status") == "invalid"]
    return [("invalid", f" {r['path']}: {'; '.join(r.get('errors') or [])}") for r in invalid]


def catalog_text(rows: list[dict[str, Any]], conflicts: Iterable[str] = (), title: str = "plugins") -> str | None:
    """The table and lines `output.print_catalog` prints, as plain text; None where rich must print them."""
    width = plain_width()
    if width is None:
        return None
    columns = columns_for(rows)
    table = plain_table(title, columns, [row_cells(r, columns)[0] for r in listed(rows)], width)
    lines = [word + rest for word, rest in invalid_lines(rows)] + [f"conflict {c}" for c in conflicts]
    if table is None or not all(is_plain(line) for line in lines):
        return None
    return table + "".join(line + "\n" for line in lines)


def json_text(data: Any) -> str:
    """`data` as `--json` prints it (TypeError/ValueError when JSON cannot express it)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
