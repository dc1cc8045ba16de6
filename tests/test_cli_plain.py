"""`plughost.cli.plain` prints tables as rich does, or declines: compared with rich itself, character for character."""

from __future__ import annotations

import io
import os
import random
import string
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from plughost.cli.listing import catalog_text
from plughost.cli.output import plugin_table, print_catalog
from plughost.cli.plain import plain_table, plain_width


def rich_table(title: str, headers: list[str], rows: list[list[str]], width: int) -> str:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out = io.StringIO()
    Console(file=out, width=width, soft_wrap=True).print(table)
    return out.getvalue()


def test_plain_tables_are_rich_tables() -> None:
    chance = random.Random(20261202)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    plain = 0
    for _ in range(1500):
        headers = ["".join(chance.choices(string.ascii_lowercase, k=chance.randint(1, 9))) for _ in range(7)]
        headers = headers[: chance.randint(1, 7)]
        rows = [
            ["".join(chance.choices(alphabet, k=chance.randint(0, 14))) for _ in headers]
            for _ in range(chance.randint(0, 6))
        ]
        width = chance.randint(12, 100)
        text = plain_table("plugins", headers, rows, width)
        if text is not None:
            plain += 1
            assert text == rich_table("plugins", headers, rows, width), (headers, rows, width)
    assert plain > 500  # most of them fit: the comparison is not vacuous


def test_one_column_too_wide_and_text_rich_measures_differently_are_left_to_rich() -> None:
    headers, rows = ["id", "state"], [["calculator", "enabled"]]
    exact = len(rich_table("plugins", headers, rows, 200).splitlines()[1])  # the table's own width
    assert plain_table("plugins", headers, rows, exact) == rich_table("plugins", headers, rows, exact)
    assert plain_table("plugins", headers, rows, exact - 1) is None  # rich folds a column here
    for cell in ("é", "日本", "a\tb", "two\nlines", "\x1b[31mred"):
        assert plain_table("plugins", headers, [["x", cell]], 200) is None


ROWS: list[dict[str, Any]] = [
    {
        "id": "calculator",
        "version": "1.0.0",
        "runtime": "python",
        "state": "enabled",
        "priority": 0,
        "methods": ["add", "divide"],
        "commands": [],
        "capabilities": ["execute"],
        "error": None,
    },
    {"id": "broken", "version": "0.1.0", "runtime": "native", "state": "error", "priority": 5, "error": "no [x]"},
    {"id": "proc", "version": "2.0.0", "runtime": "process", "state": "enabled", "priority": 1}
    | {"runtime_status": "restarting"},
    {"id": "typo", "state": None, "status": "invalid", "runtime": "unknown", "path": "/p/typo", "errors": ["bad"]},
]
INSTALLED: list[dict[str, Any]] = [
    {"id": "a", "version": None, "runtime": "python", "state": "enabled", "priority": 0, "loaded": False},
    {"id": "b", "version": "1.2.3", "runtime": "process", "state": "disabled", "priority": 3, "loaded": False}
    | {"status": "source_only"},
    {"id": "typo", "state": None, "status": "invalid", "runtime": "unknown", "path": "/p/t", "errors": ["x"]}
    | {"loaded": False},
]


@pytest.mark.parametrize("rows", [ROWS, INSTALLED, []], ids=["loaded", "from files", "none"])
def test_the_catalog_as_plain_text_is_what_rich_prints(rows: list[dict[str, Any]], monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    text = catalog_text(rows, ["plugin id 'x' is used by /a and /b; using /a"])
    assert text is not None
    out = io.StringIO()
    console = Console(file=out, width=120, soft_wrap=True)
    console.print(plugin_table([r for r in rows if r.get("state") is not None]))
    for row in rows:
        if row.get("status") == "invalid":
            console.print(Text(f"invalid {row['path']}: {'; '.join(row['errors'])}"))
    console.print(Text("conflict plugin id 'x' is used by /a and /b; using /a"))
    assert text == out.getvalue()


def test_columns_follow_what_is_known(monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    loaded = catalog_text(ROWS[:1]) or ""
    installed = catalog_text(INSTALLED) or ""
    assert [c.strip() for c in loaded.splitlines()[2].split("┃")[1:-1]] == [
        "id",
        "version",
        "runtime",
        "state",
        "priority",
        "offers",
        "error",
    ]
    assert [c.strip() for c in installed.splitlines()[2].split("┃")[1:-1]] == [
        "id",
        "version",
        "runtime",
        "state",
        "priority",
    ]
    assert "│ ?  " in installed and "disabled (to build)" in installed


def test_a_terminal_gets_rich(monkeypatch: Any) -> None:
    """Where rich would colour (FORCE_COLOR, a tty) or measure otherwise, the plain renderer declines."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plain_width() is None and catalog_text(ROWS) is None
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("COLUMNS", "0")
    assert plain_width() is None
    monkeypatch.setenv("COLUMNS", "77")
    assert plain_width() == 77


def test_print_catalog_in_a_pseudo_terminal_is_rich_with_colour() -> None:
    """On a terminal print_catalog goes to rich, which colours the state."""
    code = (
        "from plughost.cli.output import print_catalog\n"
        "print_catalog([{'id': 'a', 'version': '1', 'runtime': 'python', 'state': 'enabled', 'priority': 0}])\n"
    )
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=secondary, stderr=subprocess.PIPE, env={**env, "TERM": "xterm"}
    ) as child:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=30) == 0
    os.close(primary)
    assert b"\x1b[32menabled" in b"".join(chunks)  # green: rich's colour, not the plain renderer


def test_print_catalog_writes_the_plain_text(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    print_catalog(ROWS)
    assert capsys.readouterr().out == catalog_text(ROWS)
