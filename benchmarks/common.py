"""What every benchmark module shares: result rows and timing helpers."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One measured figure: what, how much, the target, what it was compared with, verdict."""

    name: str
    value: float
    unit: str
    target: str = ""
    comparison: str = ""
    ok: bool | None = None

    def formatted(self) -> str:
        if self.unit in {"µs", "ms", "s", "×"}:
            return f"{self.value:,.2f} {self.unit}"
        return f"{self.value:,.0f} {self.unit}" if self.value >= 100 else f"{self.value:,.2f} {self.unit}"


def best_of(repeats: int, func: Callable[[], float]) -> float:
    """The lowest of several measurements (least disturbed by other work on the machine)."""
    return min(func() for _ in range(repeats))


def median(values: list[float]) -> float:
    return statistics.median(values)


def per_call_us(loops: int, func: Callable[[], None]) -> float:
    """Average µs per call of `func` run `loops` times."""
    start = time.perf_counter()
    for _ in range(loops):
        func()
    return (time.perf_counter() - start) / loops * 1e6


def print_rows(title: str, rows: list[Row]) -> None:
    """Print one module's rows as the compact table (when a benchmark module is run on its own)."""
    from report import Result, table

    print(title)
    print(table([Result(title, row) for row in rows]))


LOADGEN_CPU_ENV = "PLUGHOST_BENCH_LOADGEN_CPU"
"""The core a load generator subprocess moves to: a child inherits the affinity of the host that
spawned it (already pinned to one core), so the host names the free core in the environment."""


def pin_load_generator() -> None:
    """In a load generator subprocess: move to the core the host left free (see LOADGEN_CPU_ENV)."""
    cpu = os.environ.get(LOADGEN_CPU_ENV)
    if cpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu)})
