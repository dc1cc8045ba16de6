"""Core host: guarded invoke vs direct call vs pluggy; execute_plugins fan-out; loading 500 plugins."""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
from common import Row, median

from plughost import PluginManager
from plughost.runtime import default_runtimes
from plughost.sdk.call import Call

TRIVIAL = """
import asyncio
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("noop")
async def noop() -> int:
    return 1

@plugin.method("yielding")
async def yielding() -> int:
    await asyncio.sleep(0)  # suspends once, as every call into a worker or a plugin thread does
    return 1
"""

SLEEPER = """
import asyncio
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.execute
async def run(context):
    await asyncio.sleep(0.05)
    return 1
"""

ROUND = 5_000
ROUNDS = 40


def _write(root: Path, plugin_id: str, code: str) -> None:
    directory = root / "plugins" / plugin_id
    directory.mkdir(parents=True)
    (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(code)


def _pluggy_hook() -> Callable[[], Any]:
    """pluggy's call of one hookimpl (the `noop` hook of a manager with one plugin registered)."""
    spec = pluggy.HookspecMarker("bench")
    impl = pluggy.HookimplMarker("bench")

    class Spec:
        @spec
        def noop(self) -> int: ...

    class Impl:
        @impl
        def noop(self) -> int:
            return 1

    manager = pluggy.PluginManager("bench")
    manager.add_hookspecs(Spec)
    manager.register(Impl())
    return manager.hook.noop  # type: ignore[no-any-return]


async def _invoke_figures(root: Path) -> dict[str, float]:
    """Per-call µs of each way to call, measured in turn in short rounds (this machine's speed
    drifts over seconds); each figure is the median over the rounds, and `ratio` is the median of
    the rounds' guarded/pluggy ratios."""
    _write(root, "trivial", TRIVIAL)
    async with PluginManager(root, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("trivial")
        assert instance is not None and instance.handle is not None
        func = instance.handle.plugin.handlers["noop"].func  # type: ignore[attr-defined]
        yielding = instance.handle.plugin.handlers["yielding"].func  # type: ignore[attr-defined]
        call, execute, hook = manager.call, manager.execute, _pluggy_hook()
        noop, suspending = Call("noop"), Call("yielding")  # calls are immutable values: build once, send many times

        async def direct() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                await func()
            return (time.perf_counter() - start) / ROUND * 1e6

        async def guarded() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                await call("trivial", noop)
            return (time.perf_counter() - start) / ROUND * 1e6

        async def guarded_result() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                await execute("trivial", "noop")
            return (time.perf_counter() - start) / ROUND * 1e6

        async def direct_yielding() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                await yielding()
            return (time.perf_counter() - start) / ROUND * 1e6

        async def under_asyncio_timeout() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                async with asyncio.timeout(30):
                    await yielding()
            return (time.perf_counter() - start) / ROUND * 1e6

        async def guarded_yielding() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                await call("trivial", suspending)
            return (time.perf_counter() - start) / ROUND * 1e6

        def plugged() -> float:
            start = time.perf_counter()
            for _ in range(ROUND):
                hook()
            return (time.perf_counter() - start) / ROUND * 1e6

        ways = ("direct", "guarded", "result", "pluggy", "ratio", "direct_yielding", "timeout", "guarded_yielding")
        figures: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(ROUNDS):
            figures["direct_yielding"].append(await direct_yielding())
            figures["timeout"].append(await under_asyncio_timeout())
            figures["guarded_yielding"].append(await guarded_yielding())
            figures["direct"].append(await direct())
            figures["guarded"].append(await guarded())
            figures["result"].append(await guarded_result())
            figures["pluggy"].append(plugged())
            figures["ratio"].append(figures["guarded"][-1] / figures["pluggy"][-1])
        return {k: median(v) for k, v in figures.items()}


async def _fan_out(root: Path) -> float:
    for i in range(100):
        _write(root, f"sleeper{i:03d}", SLEEPER)
    async with PluginManager(root, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            results = await manager.execute_plugins({})
            runs.append(time.perf_counter() - start)
            assert len(results) == 100 and all(r.success for r in results.values())
        return median(runs) * 1000


async def _load_many(root: Path) -> float:
    for i in range(500):
        _write(root, f"gen{i:03d}", TRIVIAL)
    start = time.perf_counter()
    async with PluginManager(root, runtimes=default_runtimes()) as manager:
        assert await manager.discover_and_load_all() == 500
        elapsed = time.perf_counter() - start
    return elapsed


async def _memory_per_plugin(root: Path) -> float:
    """Python memory held per loaded plugin (tracemalloc: exact, unlike RSS deltas)."""
    for i in range(200):
        _write(root, f"mem{i:03d}", TRIVIAL)
    gc.collect()
    tracemalloc.start()
    try:
        async with PluginManager(root, runtimes=default_runtimes()) as manager:
            before, _ = tracemalloc.get_traced_memory()
            assert await manager.discover_and_load_all() == 200
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (after - before) / 200 / 1024


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures = asyncio.run(_invoke_figures(root / "invoke"))
        fan_out_ms = asyncio.run(_fan_out(root / "fan-out"))
        load_s = asyncio.run(_load_many(root / "many"))
        per_plugin_kb = asyncio.run(_memory_per_plugin(root / "memory"))
    ratio = figures["ratio"]
    ratio_result = figures["result"] / figures["pluggy"]
    return [
        Row("direct await of the handler", figures["direct"], "µs", comparison="baseline"),
        Row("pluggy: one hookimpl", figures["pluggy"], "µs", comparison="baseline"),
        Row(
            "guarded call (manager.call)",
            figures["guarded"],
            "µs",
            "≤ 1.5× pluggy",
            f"{ratio:.2f}× pluggy, {figures['guarded'] / figures['direct']:.1f}× direct",
            ratio <= 1.5,
        ),
        Row(
            "guarded invoke → PluginExecutionResult",
            figures["result"],
            "µs",
            "",
            f"{ratio_result:.2f}× pluggy (adds the result model)",
        ),
        Row("direct await of a handler that suspends once", figures["direct_yielding"], "µs", comparison="baseline"),
        Row(
            "guarded call of it (its timeout armed as it suspends)",
            figures["guarded_yielding"],
            "µs",
            "report",
            f"+{figures['guarded_yielding'] - figures['direct_yielding']:.1f} µs; "
            f"`async with asyncio.timeout` alone: +{figures['timeout'] - figures['direct_yielding']:.1f} µs",
        ),
        Row(
            "execute_plugins: 100 plugins × 50 ms await",
            fan_out_ms,
            "ms",
            "≤ 80 ms",
            "sequential would be 5 000 ms",
            fan_out_ms <= 80,
        ),
        Row("discover + load 500 generated plugins", load_s, "s", "≤ 3 s", "", load_s <= 3),
        Row("Python memory per loaded trivial plugin", per_plugin_kb, "KiB", "report", "tracemalloc, 200 plugins"),
    ]
