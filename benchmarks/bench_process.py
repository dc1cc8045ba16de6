"""Process plugins: call round trip, start-to-ready, and 100 plugins started at once.

    python benchmarks/bench_process.py            # prints a table
    python benchmarks/run.py                      # all benchmarks (collects run())

Needs Go + golang-github-hashicorp-go-plugin-dev for the Go rows (skipped with a note otherwise).
Every figure is compared with the same handler loaded in-process, measured in the same run; the
Go plugin call also with a bare grpcio call to the same plugin (its floor), the two made in turn.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import Row, print_rows  # benchmarks/common.py

from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.values import pack_map
from plughost.runtime.placement import WorkerRuntime
from plughost.runtime.process import ProcessOptions, ProcessPluginHandle, ProcessRuntime
from plughost.runtime.proto.plugin import jank_pb2, jank_pb2_grpc
from plughost.runtime.python import PythonRuntime
from plughost.sdk.call import Call
from plughost.sdk.manifest import PluginManifest, find_manifest_file, load_manifest

ROOT = Path(__file__).resolve().parents[1]
CALLS = 2000
STARTS = 5
SCALE = 100
GO_OVER_BARE = 1.2  # the Go plugin call may take at most this much of a bare grpcio call to it


ECHO_PLUGIN = """
from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("echo")
def echo(text: str) -> dict:
    return {"text": text}


@plugin.method("aecho")
async def aecho(text: str) -> dict:
    return {"text": text}
"""


def _python_plugin(root: Path) -> Path:
    directory = root / "echo"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "echo"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(ECHO_PLUGIN)
    return directory


def _go_plugin(root: Path) -> Path | None:
    if shutil.which("go") is None or not Path("/usr/share/gocode/src/github.com/hashicorp/go-plugin").is_dir():
        return None
    target = root / "jank-echo"
    shutil.copytree(ROOT / "examples" / "go" / "jank-echo", target, ignore=shutil.ignore_patterns("bin"))
    env = {**os.environ, "GOPATH": str(root / "gopath")}
    subprocess.run(["sh", "scripts/build.sh"], cwd=target, env=env, check=True, capture_output=True, timeout=600)
    return target


def _request(directory: Path, isolation: str = "none", index: int = 0) -> LoadRequest:
    manifest_file = find_manifest_file(directory)
    assert manifest_file is not None
    manifest = load_manifest(manifest_file)
    if isolation != "none":
        manifest = PluginManifest.model_validate({**manifest.model_dump(), "isolation": isolation})
    return LoadRequest(
        plugin_id=manifest.id,
        path=directory,
        manifest=manifest,
        data_dir=directory / f".data{index}",
        logger=logging.getLogger(f"bench.{manifest.id}"),
    )


async def _round_trip(call: Callable[[], Awaitable[Any]], n: int = CALLS) -> tuple[float, float]:
    for _ in range(50):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


async def _side_by_side(
    first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]], n: int = CALLS
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(median, p99) in µs of each of two calls made in turn, so that load on the machine falls on both alike."""
    for _ in range(50):
        await first()
        await second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for call, kept in ((first, samples[0]), (second, samples[1])):
            started = time.perf_counter()
            await call()
            kept.append(time.perf_counter() - started)
    figures = []
    for kept in samples:
        kept.sort()
        figures.append((statistics.median(kept) * 1e6, kept[int(len(kept) * 0.99)] * 1e6))
    return figures[0], figures[1]


def _bare_execute(handle: ProcessPluginHandle, method: str, args: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """A raw `PluginService.Execute` stub call on the plugin's own channel, request built once:
    what grpcio alone costs for the call the host makes."""
    stub = jank_pb2_grpc.PluginServiceStub(handle.channel())
    request = jank_pb2.ExecuteRequest(method=method, args=pack_map(args))
    return lambda: stub.Execute(request, timeout=30)


async def _start_time(start: Callable[[], Awaitable[Any]], n: int = STARTS) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        handle = await start()
        times.append(time.perf_counter() - started)
        await handle.stop()
    return statistics.median(times) * 1e3


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


async def _bench(root: Path) -> list[Row]:
    rows: list[Row] = []
    python_dir = _python_plugin(root)
    go_dir = _go_plugin(root)
    options = ProcessOptions(health_interval_s=0)
    process = ProcessRuntime(options)
    worker = WorkerRuntime(ProcessOptions(health_interval_s=0, kill_on_timeout=True))  # forked from its template
    plain_worker = WorkerRuntime(ProcessOptions(health_interval_s=0, kill_on_timeout=True, prefork=False))
    grpc_worker = WorkerRuntime(ProcessOptions(health_interval_s=0, kill_on_timeout=True, invoke_lane=False))
    in_process = PythonRuntime()

    local = await in_process.load(_request(python_dir))
    local_median, local_p99 = await _round_trip(lambda: local.call(Call("echo", {"text": "hi"})))
    async_median, async_p99 = await _round_trip(lambda: local.call(Call("aecho", {"text": "hi"})))
    local_start = await _start_time(lambda: in_process.load(_request(python_dir)))
    await local.stop()
    base = f"in-process: median {local_median:.0f} µs, p99 {local_p99:.0f} µs"
    async_base = f"in-process: median {async_median:.0f} µs, p99 {async_p99:.0f} µs"
    rows.append(Row("in-process Python, sync handler (thread pool): call median", local_median, "µs", "—", "baseline"))
    rows.append(Row("in-process Python, async handler: call median", async_median, "µs", "—", "baseline"))

    grpc_only = await grpc_worker.load(_request(python_dir, "process"))
    grpc_median, _grpc_p99 = await _round_trip(lambda: grpc_only.call(Call("aecho", {"text": "hi"})))
    await grpc_only.stop()
    rows.append(Row("Python worker over gRPC only, async handler: call median", grpc_median, "µs", "—", async_base))

    remote = await worker.load(_request(python_dir, "process"))
    median, p99 = await _round_trip(lambda: remote.call(Call("echo", {"text": "hi"})))
    a_median, a_p99 = await _round_trip(lambda: remote.call(Call("aecho", {"text": "hi"})))
    await remote.stop()
    lane_base = f"{async_base}; over gRPC only: {grpc_median:.0f} µs"
    rows.append(Row("Python worker, async handler: call median", a_median, "µs", "≤ 500", lane_base, a_median <= 500))
    rows.append(Row("Python worker, async handler: call p99", a_p99, "µs", "—", async_base))
    rows.append(Row("Python worker, sync handler: call median", median, "µs", "≤ 500", base, median <= 500))
    rows.append(Row("Python worker, sync handler: call p99", p99, "µs", "—", base))
    worker_start = await _start_time(lambda: worker.load(_request(python_dir, "process")))
    plain_start = await _start_time(lambda: plain_worker.load(_request(python_dir, "process")))
    rows.append(
        Row(
            "Python worker (forked from the template): start to ready",
            worker_start,
            "ms",
            "≤ 1500",
            f"as a new program (prefork = false) {plain_start:.0f} ms; in-process load {local_start:.1f} ms",
            worker_start <= 1500,
        )
    )

    if go_dir is not None:
        go = await process.load(_request(go_dir))
        (median, p99), (bare_median, bare_p99) = await _side_by_side(
            lambda: go.call(Call("echo", {"text": "hi"})), _bare_execute(go, "echo", {"text": "hi"})
        )
        await go.stop()
        floor = f"bare grpcio Execute on its channel: median {bare_median:.0f} µs, p99 {bare_p99:.0f} µs"
        ok = median <= GO_OVER_BARE * bare_median
        rows.append(Row("Go plugin: bare grpcio Execute call median", bare_median, "µs", "—", "baseline (same run)"))
        rows.append(
            Row("Go plugin: call median", median, "µs", f"≤ {GO_OVER_BARE:g}× bare call", f"{floor}; {base}", ok)
        )
        rows.append(Row("Go plugin: call p99", p99, "µs", "—", floor))
        go_start = await _start_time(lambda: process.load(_request(go_dir)))
        rows.append(
            Row(
                "Go plugin: start to ready",
                go_start,
                "ms",
                "≤ 300",
                f"in-process load {local_start:.1f} ms",
                go_start <= 300,
            )
        )
    else:
        rows.append(Row("Go plugin rows", float("nan"), "", "", "skipped: go / go-plugin dev package missing", False))

    rows.extend(await _prefork_rows(python_dir, go_dir, process, worker, plain_worker))
    return rows


async def _prefork_rows(
    python_dir: Path, go_dir: Path | None, process: ProcessRuntime, worker: WorkerRuntime, plain: WorkerRuntime
) -> list[Row]:
    """100 plugins started at once with workers started as new programs, then forked from the template."""
    plain_rows, plain_pss, _ = await _scale(python_dir, go_dir, process, plain, "")
    rows, pss, template_pss = await _scale(
        python_dir, go_dir, process, worker, f"prefork = false: {plain_rows[0].value:.1f} s"
    )
    rows.append(
        Row(
            "memory per Python worker (forked), PSS",
            pss,
            "MiB",
            "≤ 25",
            f"prefork = false: {plain_pss:.1f} MiB; the template itself: {template_pss:.1f} MiB",
            pss <= 25,
        )
    )
    await worker.aclose()
    return rows


async def _scale(
    python_dir: Path, go_dir: Path | None, process: ProcessRuntime, worker: WorkerRuntime, compared: str
) -> tuple[list[Row], float, float]:
    """The rows of 100 plugins started at once, the mean PSS of a Python worker and the template's (MiB)."""
    go_count = SCALE // 2 if go_dir is not None else 0
    py_count = SCALE - go_count
    starts: list[Awaitable[Any]] = [worker.load(_request(python_dir, "process", i)) for i in range(py_count)]
    if go_dir is not None:
        starts += [process.load(_request(go_dir)) for _ in range(go_count)]
    started = time.perf_counter()
    handles = await asyncio.gather(*starts)
    total_start = time.perf_counter() - started
    try:
        healthy = sum([(await h.health()).ok for h in handles])
        answers = await asyncio.gather(*(h.call(Call("echo", {"text": "x"})) for h in handles))
        answered = sum(1 for a in answers if a.value == {"text": "x"})
        go_mem = [_memory_kib(h.info()["pid"]) for h in handles[py_count:]]
        py_mem = [_memory_kib(h.info()["pid"]) for h in handles[:py_count]]
        template = worker.template.pid if worker.template is not None else None
        template_pss = _memory_kib(template)[1] / 1024 if template is not None else float("nan")
    finally:
        await asyncio.gather(*(h.stop() for h in handles))
    mix = f"{go_count} Go + {py_count} Python workers"
    rows = [
        Row(
            f"{SCALE} plugins: total start (concurrent)",
            total_start,
            "s",
            "≤ 5",
            f"{mix}; {compared}",
            total_start <= 5,
        ),
        Row(
            f"{SCALE} plugins: healthy / answered",
            float(min(healthy, answered)),
            "plugins",
            f"= {SCALE}",
            mix,
            min(healthy, answered) == SCALE,
        ),
        Row(
            "memory per Python worker (RSS / PSS)",
            statistics.mean(r for r, _ in py_mem) / 1024,
            "MiB",
            "—",
            f"PSS {statistics.mean(p for _, p in py_mem) / 1024:.1f} MiB",
        ),
    ]
    if go_mem:
        rows.append(
            Row(
                "memory per Go plugin (RSS / PSS)",
                statistics.mean(r for r, _ in go_mem) / 1024,
                "MiB",
                "—",
                f"PSS {statistics.mean(p for _, p in go_mem) / 1024:.1f} MiB",
            )
        )
    return rows, statistics.mean(p for _, p in py_mem) / 1024, template_pss


def run() -> list[Row]:
    """Measure everything; each row is (name, value, unit, target, comparison)."""
    with tempfile.TemporaryDirectory(prefix="plughost-bench-process-") as tmp:
        return asyncio.run(_bench(Path(tmp)))


if __name__ == "__main__":
    print_rows("process plugins", run())
