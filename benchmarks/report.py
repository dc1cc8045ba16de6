"""Benchmark results as text: a compact table that fits a terminal, Markdown, JSON.

The table gives each figure one line — benchmark, measured, target, verdict — and puts what it
was compared with (measured in the same run) on an indented line below, so nothing wraps at 80
columns. Long names and comparisons are wrapped onto further lines; a missed target says NO.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, fields

from common import Row

WIDTH = 80
MEASURED, TARGET, VERDICT = 15, 16, 3  # column widths; the name takes what is left


@dataclass(frozen=True)
class Result:
    """A row and the benchmark module (area) that measured it."""

    area: str
    row: Row


def verdict(row: Row) -> str:
    return "" if row.ok is None else ("yes" if row.ok else "NO")


def table(results: list[Result], width: int = WIDTH) -> str:
    """The compact table: no line longer than `width` (at least 60)."""
    width = max(width, 60)
    name_width = width - MEASURED - TARGET - VERDICT - 3
    lines = [_cells("benchmark", "measured", "target", "ok", name_width), "─" * width]
    area = None
    for result in results:
        row = result.row
        if result.area != area:
            if area is not None:
                lines.append("")
            area = result.area
            lines.append(f"[{area}]")
        names = textwrap.wrap(row.name, name_width) or [""]
        targets = textwrap.wrap(row.target, TARGET) or [""]
        measured = row.formatted()
        lines.append(_cells(names[0], measured, targets[0], verdict(row), name_width))
        for extra in range(1, max(len(names), len(targets))):
            name = names[extra] if extra < len(names) else ""
            target = targets[extra] if extra < len(targets) else ""
            lines.append(_cells(name, "", target, "", name_width))
        if row.comparison:
            lines.extend(textwrap.wrap(row.comparison, width, initial_indent="    ", subsequent_indent="      "))
    return "\n".join(line.rstrip() for line in lines)


def _cells(name: str, measured: str, target: str, ok: str, name_width: int) -> str:
    measured = measured if len(measured) <= MEASURED else measured[: MEASURED - 1] + "…"
    return f"{name:<{name_width}} {measured:>{MEASURED}} {target:<{TARGET}} {ok:<{VERDICT}}"


def markdown(results: list[Result]) -> str:
    """A Markdown table (for the README): area, benchmark, measured, target, compared with, ok."""
    lines = ["| area | benchmark | measured | target | compared with (same run) | ok |", "|---|---|---|---|---|---|"]
    for result in results:
        row = result.row
        cells = (result.area, row.name, row.formatted(), row.target, row.comparison, verdict(row))
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return "\n".join(lines)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def to_json(results: list[Result]) -> str:
    """The results as a JSON list of objects: `area` plus every field of `Row`."""
    return json.dumps([{"area": r.area, **asdict(r.row)} for r in results], indent=2, ensure_ascii=False)


def from_json(text: str) -> list[Result]:
    """Results read back from `to_json`'s output."""
    names = {f.name for f in fields(Row)}
    return [
        Result(str(item["area"]), Row(**{k: v for k, v in item.items() if k in names})) for item in json.loads(text)
    ]
