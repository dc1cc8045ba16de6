"""Hot reload: a plugin file saved → the new code answering, while another plugin keeps being called.

    python benchmarks/bench_reload.py             # prints a table
    python benchmarks/run.py reload               # through the runner

1. `Host(workspace, hot_reload=True)` with the default debounce (300 ms) runs `edited` and `busy`
   (in-process Python plugins). A load generator calls `busy.echo` through the manager every 2 ms,
   as the dispatcher would, for the whole run. `EDITS` times: `edited/plugin.py` is saved with a new
   version, and `edited.version` is called every 2 ms until it answers the new one (the time from
   the save: median and p99). Every failed call of `busy` (and of `edited`: the old version answers
   until the new one takes over) is counted — target 0 — with `busy`'s worst call latency.
2. The same for a worker-hosted plugin (`isolation = "process"`): a new worker per reload.
3. The comparison, measured in the same run: restarting the whole host on a save, which is what
   `nb run --reload` does — (a) stop + start a `Host` on the same workspace in this process (the
   load generator's calls fail while it restarts), and (b) a `plughost run` subprocess: SIGTERM,
   start it again, until its management API answers the new version.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Row, print_rows  # benchmarks/common.py (this directory is on sys.path)

EDITS = int(os.environ.get("PLUGHOST_BENCH_RELOAD_EDITS", "20"))
WORKER_EDITS = max(3, EDITS // 2)
HOST_RESTARTS = EDITS
PROCESS_RESTARTS = 5
CALL_EVERY_S = 0.002
TIMEOUT_S = 60.0

EDITED = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def version() -> str:
    return "{version}"
"""

BUSY = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
async def echo(n: int) -> int:
    return n
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Load:
    """Calls `busy.echo` every 2 ms on whatever manager `target()` gives; counts failures."""

    target: Callable[[], Any]
    calls: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)  # when each successful call returned
    errors: dict[str, int] = field(default_factory=dict)

    def longest_gap_ms(self, since: float = 0.0) -> float:
        """The longest time between two answers (after `since`): how long the plugin was not served."""
        times = [t for t in self.answered if t >= since]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("nan")) * 1000

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            result = await self.target().execute("busy", "echo", {"n": n})
            finished = time.perf_counter()
            self.latencies.append(finished - started)
            self.calls += 1
            if result.success and result.result == n:
                self.answered.append(finished)
            else:
                self.failures += 1
                key = (result.error or "wrong answer")[:60]
                self.errors[key] = self.errors.get(key, 0) + 1
            await asyncio.sleep(CALL_EVERY_S)


def _workspace(root: Path) -> None:
    for plugin_id, code, extra in (
        ("edited", EDITED.format(version="v0"), ""),
        ("busy", BUSY, ""),
        ("isolated", EDITED.format(version="v0"), 'isolation = "process"\n'),
    ):
        directory = root / "plugins" / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{extra}')
        (directory / "plugin.py").write_text(code)
    (root / "plughost.toml").write_text('[host]\nentry_points = false\n[process]\nsocket_dir = "run"\n')


async def _until_answers(manager: Any, plugin_id: str, version: str) -> tuple[float, int]:
    """Call `plugin_id.version` every 2 ms until it says `version`; (when, failed calls meanwhile)."""
    failed = 0
    deadline = time.perf_counter() + TIMEOUT_S
    while time.perf_counter() < deadline:
        result = await manager.execute(plugin_id, "version")
        if result.success and result.result == version:
            return time.perf_counter(), failed
        failed += not result.success
        await asyncio.sleep(CALL_EVERY_S)
    raise RuntimeError(f"{plugin_id} did not answer {version} within {TIMEOUT_S:g} s")


async def _edits(manager: Any, root: Path, plugin_id: str, count: int) -> dict[str, Any]:
    code = root / "plugins" / plugin_id / "plugin.py"
    times: list[float] = []
    failed = 0
    for i in range(1, count + 1):
        version = f"{plugin_id}-{i}"
        saved = time.perf_counter()
        code.write_text(EDITED.format(version=version))
        answered, failures = await _until_answers(manager, plugin_id, version)
        times.append(answered - saved)
        failed += failures
        await manager.watcher.settled()
    return {"times": times, "failed": failed}


async def _direct_reloads(manager: Any, root: Path) -> list[float]:
    """`manager.reload_plugin` called right after each save: the reload itself, without the watcher."""
    code = root / "plugins" / "edited" / "plugin.py"
    times: list[float] = []
    for i in range(1, EDITS + 1):
        version = f"direct-{i}"
        code.write_text(EDITED.format(version=version))
        started = time.perf_counter()
        await manager.reload_plugin("edited")
        answered, _ = await _until_answers(manager, "edited", version)
        times.append(answered - started)
    await manager.watcher.settled()  # the watcher saw the saves too: let it finish
    return times


async def _hot_reload(root: Path) -> dict[str, Any]:
    from plughost.host import Host

    host = Host(root, hot_reload=True)
    stop = asyncio.Event()
    load = Load(lambda: host.manager)
    async with host, asyncio.TaskGroup() as group:
        if len(host.manager.enabled_plugins()) != 3:
            raise RuntimeError("not every plugin loaded")
        group.create_task(load.run(stop))
        await asyncio.sleep(0.5)  # the load generator's baseline
        baseline = percentile(load.latencies, 0.99)
        baseline_gap = load.longest_gap_ms()
        mark, since = len(load.latencies), time.perf_counter()
        in_process = await _edits(host.manager, root, "edited", EDITS)
        worker = await _edits(host.manager, root, "isolated", WORKER_EDITS)
        direct = await _direct_reloads(host.manager, root)
        stop.set()
    during = load.latencies[mark:]
    return {
        "in_process": in_process,
        "worker": worker,
        "direct": direct,
        "load": load,
        "baseline_p99_ms": baseline * 1000,
        "baseline_gap_ms": baseline_gap,
        "gap_ms": load.longest_gap_ms(since),
        "p99_ms": percentile(during, 0.99) * 1000,
        "max_ms": max(during) * 1000,
    }


async def _host_restarts(root: Path) -> dict[str, Any]:
    """The comparison: on each save, stop the whole host and start a new one on the workspace."""
    from plughost.host import Host

    host = Host(root)
    await host.start()
    stop = asyncio.Event()
    load = Load(lambda: host.manager)
    code = root / "plugins" / "edited" / "plugin.py"
    times: list[float] = []
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(load.run(stop))
            for i in range(1, HOST_RESTARTS + 1):
                version = f"restart-{i}"
                saved = time.perf_counter()
                code.write_text(EDITED.format(version=version))
                await host.stop()
                host = Host(root)
                await host.start()
                answered, _ = await _until_answers(host.manager, "edited", version)
                times.append(answered - saved)
            stop.set()
    finally:
        await host.stop()
    return {"times": times, "load": load, "gap_ms": load.longest_gap_ms()}


async def _process_restarts(root: Path) -> dict[str, Any]:
    """The comparison as `nb run --reload` does it: a new `plughost run` process per save."""
    import httpx

    code = root / "plugins" / "edited" / "plugin.py"
    times: list[float] = []
    async with asyncio.TaskGroup() as drains:  # each host's stdout is read to the end
        process, url = await _start_process(root, drains)
        try:
            for i in range(1, PROCESS_RESTARTS + 1):
                version = f"process-{i}"
                saved = time.perf_counter()
                code.write_text(EDITED.format(version=version))
                process.send_signal(signal.SIGTERM)
                await process.wait()
                process, url = await _start_process(root, drains)
                key = (root / ".plughost" / "manage.key").read_text().strip()
                async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as api:
                    body = {"method": "version", "args": {}}
                    answer = await api.post("/api/v1/plugins/edited/execute", json=body)
                    if answer.json().get("result") != version:
                        raise RuntimeError(f"the restarted host answered {answer.text}")
                times.append(time.perf_counter() - saved)
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    return {"times": times}


async def _start_process(root: Path, drains: asyncio.TaskGroup) -> tuple[asyncio.subprocess.Process, str]:
    """`plughost run` on a free port; its URL once it serves. `drains` reads the rest of its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plughost", "run", "--no-console", "--manage-bind", "127.0.0.1:0", "-w", str(root),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    stdout = process.stdout
    assert stdout is not None
    while line := await asyncio.wait_for(stdout.readline(), TIMEOUT_S):
        found = re.search(rb"management API on (http://\S+)", line)
        if found:
            drains.create_task(stdout.read())  # the host must never block on a full pipe
            return process, found.group(1).decode()
    raise RuntimeError("plughost run exited before serving its management API")


async def _bench() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="plughost-bench-reload-") as tmp:
        root = Path(tmp)
        _workspace(root)
        figures["hot"] = await _hot_reload(root)
        figures["host"] = await _host_restarts(root)
        figures["process"] = await _process_restarts(root)
    return figures


def _ms(values: list[float], q: float | None = None) -> float:
    return (statistics.median(values) if q is None else percentile(values, q)) * 1000


def run() -> list[Row]:
    f = asyncio.run(_bench())
    hot, host, process = f["hot"], f["host"], f["process"]
    edits, worker, load = hot["in_process"], hot["worker"], hot["load"]
    restart_ms, process_ms = _ms(host["times"]), _ms(process["times"])
    median, p99 = _ms(edits["times"]), _ms(edits["times"], 0.99)
    failed = load.failures + edits["failed"] + worker["failed"]
    host_load = host["load"]
    return [
        Row(
            f"reload: saved → new code answering, in-process Python, median of {EDITS} edits",
            median, "ms", "≤ 1 000 ms",
            f"restarting the Host in-process: median {restart_ms:,.0f} ms; a new `plughost run` process "
            f"(nb run --reload): median {process_ms:,.0f} ms ({process_ms / median:.1f}×)",
            median <= 1000,
        ),
        Row(
            f"reload: saved → new code answering, in-process Python, p99 of {EDITS} edits",
            p99, "ms", "≤ 1 000 ms",
            f"debounce 300 ms included; manager.reload_plugin() itself: median {_ms(hot['direct']):.1f} ms; "
            f"Host restart p99 {_ms(host['times'], 0.99):,.0f} ms",
            p99 <= 1000,
        ),
        Row(
            f"reload: saved → new code answering, worker plugin (new worker), median of {WORKER_EDITS} edits",
            _ms(worker["times"]), "ms", "report", f"p99 {_ms(worker['times'], 0.99):,.0f} ms",
        ),
        Row(
            "reload: failed calls of the plugin called throughout (and of the edited ones)",
            failed, "calls", "0",
            f"{load.calls:,} calls of busy every 2 ms during {EDITS + WORKER_EDITS} reloads; its p99 "
            f"{hot['p99_ms']:.1f} ms (before the edits {hot['baseline_p99_ms']:.1f} ms), worst {hot['max_ms']:.0f} ms; "
            f"with Host restarts: {host_load.failures:,} of {host_load.calls:,} failed",
            failed == 0,
        ),
        Row(
            "reload: longest time the other plugin went unanswered during the reloads",
            hot["gap_ms"], "ms", "report",
            f"before the edits {hot['baseline_gap_ms']:.1f} ms (its call every 2 ms); restarting the Host: "
            f"{host['gap_ms']:,.0f} ms (its plugins go away and come back within one turn of the event loop)",
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    print_rows("Hot reload", run())
