#!/usr/bin/env python3
"""Run every benchmark (`benchmarks/bench_*.py`) and print one table.

    python benchmarks/run.py            # all
    python benchmarks/run.py core       # only modules whose name contains "core"
    python benchmarks/run.py --json     # rows as JSON as well

Each module exposes `run() -> list[Row]`. Comparisons are measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import Row  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these words")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    options = parser.parse_args()
    console = Console()
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if options.only:
        modules = [m for m in modules if any(word in m for word in options.only)]
    table = Table(title="plughost benchmarks", title_justify="left")
    for column in ("benchmark", "measured", "target", "compared with (same run)", "ok"):
        table.add_column(column, overflow="fold")
    rows: list[Row] = []
    failed = False
    for name in modules:
        started = time.perf_counter()
        console.print(f"running {name} …", style="dim")
        try:
            module_rows = importlib.import_module(name).run()
        except Exception as exc:  # one broken benchmark must not hide the others
            console.print(f"[red]{name} failed: {type(exc).__name__}: {exc}[/]")
            failed = True
            continue
        console.print(f"  {name} took {time.perf_counter() - started:.1f} s", style="dim")
        rows.extend(module_rows)
        table.add_section()
        for row in module_rows:
            verdict = "" if row.ok is None else ("[green]yes[/]" if row.ok else "[red]no[/]")
            table.add_row(row.name, row.formatted(), row.target, row.comparison, verdict)
    console.print(table)
    if options.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
