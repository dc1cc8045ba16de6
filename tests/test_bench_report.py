"""The benchmark report's formats (made-up rows: the benchmarks themselves never run in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

LONG = (
    "`plughost run --reload`: file saved → new code answering, 20 edits, default 300 ms debounce, "
    "with a name long enough to need three lines"
)


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import report as module  # benchmarks/report.py

    return module


def made_up(report: ModuleType) -> list[object]:
    from common import Row

    return [
        report.Result(
            "core", Row("guarded call of a trivial handler", 1.234, "µs", "≤ 1.5× pluggy", "pluggy 0.9 µs", True)
        ),
        report.Result("core", Row("discover + load 500 plugins", 412_345.0, "ms", "≤ 3 s", "", False)),
        report.Result("reload", Row(LONG, 401.0, "ms", "≤ 1 s, p99 ≤ 1.5 s and a long target", "x " * 120, None)),
        report.Result("bot", Row("events | pipes", 6_555.25, "events/s", "≥ 5,000/s", "a | b", True)),
    ]


def test_the_table_fits_80_columns_and_keeps_every_figure(report: ModuleType) -> None:
    results = made_up(report)
    text = report.table(results)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert lines[0].split() == ["benchmark", "measured", "target", "ok"]
    assert [line for line in lines if line.startswith("[")] == ["[core]", "[reload]", "[bot]"]
    first = next(line for line in lines if line.startswith("guarded call"))
    assert "1.23 µs" in first and "≤ 1.5× pluggy" in first and first.endswith("yes")
    assert next(line for line in lines if line.startswith("discover")).endswith("NO")
    assert "    pluggy 0.9 µs" in lines  # the comparison: indented below its figure
    start = lines.index("[reload]") + 1
    reload_block = lines[start : next(i for i in range(start, len(lines)) if lines[i].startswith("    x x"))]
    name_column = " ".join(line[: 80 - 15 - 16 - 3 - 3].strip() for line in reload_block)
    assert name_column == LONG  # wrapped onto several lines, nothing cut
    narrow = report.table(results, width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_json_round_trips_and_markdown_has_one_line_per_row(report: ModuleType) -> None:
    results = made_up(report)
    assert report.from_json(report.to_json(results)) == results
    lines = report.markdown(results).splitlines()
    assert len(lines) == 2 + len(results)
    assert lines[-1] == "| bot | events \\| pipes | 6,555 events/s | ≥ 5,000/s | a \\| b | yes |"


def test_the_runner_prints_only_the_chosen_format_on_stdout() -> None:
    runner = [sys.executable, str(BENCHMARKS / "run.py"), "no-such-benchmark"]
    as_json = subprocess.run([*runner, "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert (as_json.returncode, as_json.stdout.strip()) == (0, "[]")
    both = subprocess.run([*runner, "--json", "--markdown"], capture_output=True, text=True, timeout=60, check=False)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
