#!/usr/bin/env python3
"""Run every benchmark (`benchmarks/bench_*.py`) and print one table.

    python benchmarks/run.py              # all, as a compact table (fits 80 columns)
    python benchmarks/run.py core         # only modules whose name contains "core"
    python benchmarks/run.py --json       # the rows as JSON on stdout (progress on stderr)
    python benchmarks/run.py --markdown   # the rows as a Markdown table (for the README)

Each module exposes `run() -> list[Row]`. Comparisons are measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from report import WIDTH, Result, markdown, table, to_json  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these words")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    output.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    options = parser.parse_args()
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if options.only:
        modules = [m for m in modules if any(word in m for word in options.only)]
    results: list[Result] = []
    failed = False
    for name in modules:
        started = time.perf_counter()
        progress(f"running {name} …")
        try:
            module_rows = importlib.import_module(name).run()
        except Exception as exc:  # one broken benchmark must not hide the others
            progress(f"{name} failed: {type(exc).__name__}: {exc}")
            failed = True
            continue
        progress(f"  {name} took {time.perf_counter() - started:.1f} s")
        area = name.removeprefix("bench_")
        results.extend(Result(area, row) for row in module_rows)
    if options.json:
        print(to_json(results))
    elif options.markdown:
        print(markdown(results))
    else:
        print(table(results, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)))
    return 1 if failed else 0


def progress(text: str) -> None:
    """Progress goes to stderr: stdout carries only the result (table, JSON or Markdown)."""
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
