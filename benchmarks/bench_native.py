"""Native plugins: round trip of a trivial method with a 100-byte JSON request.

Compared in the same run with the same trivial handler as an in-process Python plugin
(async handler: runs inline; sync handler: runs on the plugin's thread pool), and with the
raw ABI call on the calling thread. 8 threads calling concurrently show how calls scale
(ctypes releases the GIL around the C call; JSON work on both sides holds it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import Row, median

from plughost.guard import Guard
from plughost.runtime.base import LoadRequest
from plughost.runtime.native import NativePluginHandle, NativeRuntime, NativeSettings
from plughost.runtime.python import PythonRuntime
from plughost.sdk.call import Call
from plughost.sdk.manifest import PluginManifest

ROOT = Path(__file__).resolve().parents[1]
TRIVIAL_C = r"""
#include "plughost_plugin.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
static const char OK[] = "{\"ok\":true,\"result\":1}";
static const char META[] = "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"bench\","
    "\"Version\":\"1.0.0\",\"Author\":\"bench\",\"GitHubRepository\":\"-\"},\"capabilities\":{\"executor\":true}}}";
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int call(const char *m, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    (void)req; (void)len;
    if (strcmp(m, "spin") == 0) { double end = now() + 200e-6; while (now() < end) {} }
    const char *body = strncmp(m, "plugin.", 7) == 0 ? META : OK;
    size_t n = strlen(body);
    resp->ptr = malloc(n);
    memcpy(resp->ptr, body, n);
    resp->len = n;
    return 0;
}
static void release(void *p, size_t n) { (void)n; free(p); }
CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *h, cliproxy_plugin_api *p) {
    (void)h;
    p->abi_version = 1; p->call = call; p->free_buffer = release; p->shutdown = 0;
    return 0;
}
"""
TRIVIAL_PY = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("noop")
async def noop(payload: str = "") -> int:
    return 1

@plugin.method("noop_sync")
def noop_sync(payload: str = "") -> int:
    return 1
"""
REQUEST = {"payload": "x" * 86}  # 100 bytes of JSON
SEQUENTIAL = 5_000
PER_THREAD = 5_000
THREADS = 8


def _build(directory: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc is not installed; the native benchmark compiles a trivial plugin")
    source = directory / "bench.c"
    source.write_text(TRIVIAL_C)
    target = directory / "bench.so"
    subprocess.run(
        [gcc, "-O2", "-shared", "-fPIC", f"-I{ROOT / 'sdk' / 'c'}", "-o", str(target), str(source)], check=True
    )
    return target


async def _per_call_us(call, loops: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops // 5):
            await call()
        samples.append((time.perf_counter() - start) / (loops // 5) * 1e6)
    return median(samples)


def _threads_per_call_us(func, threads: int, per_thread: int = PER_THREAD) -> float:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            func()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return (time.perf_counter() - start) / (per_thread * threads) * 1e6


async def _measure(directory: Path) -> list[Row]:
    assert len(json.dumps(REQUEST, separators=(",", ":"))) == 100
    library = _build(directory)
    (directory / "py").mkdir()
    (directory / "py" / "plugin.py").write_text(TRIVIAL_PY)
    (directory / "py" / "plugin.toml").write_text('id = "bench-py"\nversion = "1.0.0"\n')
    logger = logging.getLogger("bench")
    native = await NativeRuntime().load(
        LoadRequest("bench", library, PluginManifest(id="bench", runtime="native"), directory, logger=logger)
    )
    python = await PythonRuntime().load(
        LoadRequest("bench-py", directory / "py", PluginManifest(id="bench-py"), directory, logger=logger)
    )
    inline = await NativeRuntime(NativeSettings(inline_budget_us=50)).load(
        LoadRequest("bench-inline", library, PluginManifest(id="bench-inline", runtime="native"), directory)
    )
    assert isinstance(native, NativePluginHandle)
    guard = Guard()
    try:
        raw_us = _threads_per_call_us(lambda: native.call_blocking("noop", REQUEST), 1)
        guarded_native = await _per_call_us(lambda: guard.call("bench", native, Call("noop", REQUEST)), SEQUENTIAL)
        for _ in range(inline.inline.warmup * 2):
            await inline.call(Call("noop", REQUEST))
        guarded_inline = await _per_call_us(
            lambda: guard.call("bench-inline", inline, Call("noop", REQUEST)), SEQUENTIAL
        )
        guarded_py = await _per_call_us(lambda: guard.call("bench-py", python, Call("noop", REQUEST)), SEQUENTIAL)
        guarded_py_sync = await _per_call_us(
            lambda: guard.call("bench-py", python, Call("noop_sync", REQUEST)), SEQUENTIAL
        )

        async def burst() -> None:
            await asyncio.gather(*(guard.call("bench", native, Call("noop", REQUEST)) for _ in range(THREADS)))

        concurrent_native = await _per_call_us(burst, SEQUENTIAL // THREADS) / THREADS
        one_thread = _threads_per_call_us(lambda: native.call_blocking("noop", REQUEST), 1)
        eight_threads = _threads_per_call_us(lambda: native.call_blocking("noop", REQUEST), THREADS)
        spin_one = _threads_per_call_us(lambda: native.call_blocking("spin", REQUEST), 1, 400)
        spin_eight = _threads_per_call_us(lambda: native.call_blocking("spin", REQUEST), THREADS, 100)
    finally:
        await native.stop()
        await inline.stop()
        await python.stop()
    return [
        Row("native: raw ABI call (calling thread, JSON both ways)", raw_us, "µs", "baseline", "", None),
        Row(
            "native: guarded call, 100-byte request, default (plugin thread)",
            guarded_native,
            "µs",
            "≤ 3× a sync Python handler's thread hop",
            f"{guarded_native / guarded_py_sync:.2f}× the Python sync handler ({guarded_py_sync:.1f} µs, same "
            f"thread hop); python async in-process {guarded_py:.1f} µs",
            guarded_native <= 3 * guarded_py_sync,
        ),
        Row(
            "native: guarded call, learned-inline method (inline_budget_us=50)",
            guarded_inline,
            "µs",
            "≤ 1.5× the raw ABI call",
            f"{guarded_inline / raw_us:.2f}× raw ({raw_us:.1f} µs); plugin-thread default {guarded_native:.1f} µs",
            guarded_inline <= 1.5 * raw_us,
        ),
        Row(
            f"native: guarded invoke, {THREADS} concurrent tasks (per call)",
            concurrent_native,
            "µs",
            "",
            f"sequential {guarded_native:.1f} µs",
            None,
        ),
        Row(
            f"native: raw calls from {THREADS} threads (per call, wall)",
            eight_threads,
            "µs",
            "",
            f"1 thread {one_thread:.2f} µs → scaling ×{one_thread / eight_threads:.2f}",
            None,
        ),
        Row(
            f"native: calls doing 200 µs of C work, {THREADS} threads (per call, wall)",
            spin_eight,
            "µs",
            "",
            f"1 thread {spin_one:.1f} µs → scaling ×{spin_one / spin_eight:.2f} (GIL released in C)",
            None,
        ),
    ]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="plughost-bench-native-") as tmp:
        return asyncio.run(_measure(Path(tmp)))


if __name__ == "__main__":
    for row in run():
        print(f"{row.name}: {row.formatted()}  target {row.target}  {row.comparison}")
