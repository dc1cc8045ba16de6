"""Message bus: publish → deliver, in memory and over Redis, each against its bare floor.

- memory: `manager.bus.publish` to one subscribed in-process plugin vs a bare `asyncio.Queue`
  fan-out to one consumer task — throughput (bursts of 200, below the queue bound) and the p99
  latency of one message at a time (stamp at publish, read in the handler).
- redis: the same on the Redis backend vs a bare redis-py PUBLISH → pub/sub reader round trip, on
  one redis-server (started here on a free port), one message at a time; target p99 ≤ 1.3×.

    python benchmarks/run.py bus
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from common import Row, print_rows

from plughost import PluginManager
from plughost.runtime import default_runtimes

SUBSCRIBER = """
import time
from plughost.sdk import Plugin
plugin = Plugin()
latencies: list = []

@plugin.subscribe("bench.*")
async def on_message(data) -> None:
    latencies.append(time.perf_counter() - data)

@plugin.method("latencies")
def get_latencies() -> list:
    return latencies
"""
GRANTS = '[permissions]\ntopics = ["bench.*"]\n'
BURST = 200
THROUGHPUT_MESSAGES = 20_000
LATENCY_MESSAGES = 5_000
WARMUP = 200
REDIS_TARGET = 1.3
T = TypeVar("T")


def p99_us(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1e6


async def until(count: Callable[[], int], wanted: int) -> None:
    """Yield to the loop until `count()` reaches `wanted`: both sides of a comparison wait alike."""
    while count() < wanted:  # noqa: ASYNC110 - an Event would add a wake-up the bare floors do not have
        await asyncio.sleep(0)


def _workspace(root: Path, redis_url: str | None) -> Path:
    for plugin_id, code in (("sub", SUBSCRIBER), ("pub", "from plughost.sdk import Plugin\nplugin = Plugin()\n")):
        directory = root / "plugins" / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{GRANTS}')
        (directory / "plugin.py").write_text(code)
    if redis_url is not None:
        (root / "plughost.toml").write_text(f'[cluster]\nredis_url = "{redis_url}"\n')
    return root


def _subscription(bus: Any) -> Any:
    """The one subscription: its `delivered` counter is cheap to poll (`stats()` is not, and polling
    runs on the loop that delivers)."""
    return bus._subs[0]


async def _bus_rate(bus: Any) -> float:
    """messages/s of the bus in bursts below its queue bound."""
    sub = _subscription(bus)
    base = sub.delivered
    start = time.perf_counter()
    for burst in range(THROUGHPUT_MESSAGES // BURST):
        for _ in range(BURST):
            await bus.publish("pub", "bench.x", time.perf_counter())
        await until(lambda: sub.delivered, base + (burst + 1) * BURST)
    return THROUGHPUT_MESSAGES / (time.perf_counter() - start)


async def _bus_one_at_a_time(bus: Any, count: int) -> None:
    """Publish `count` messages, each once the one before was delivered (the handler keeps latencies)."""
    sub = _subscription(bus)
    base = sub.delivered
    for n in range(count):
        await bus.publish("pub", "bench.x", time.perf_counter())
        await until(lambda: sub.delivered, base + n + 1)


async def _memory_bus(root: Path) -> tuple[float, float]:
    """(messages/s, p99 µs one message at a time) of the in-memory bus."""
    async with PluginManager(_workspace(root, None), runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        rate = await _bus_rate(manager.bus)
        await _bus_one_at_a_time(manager.bus, WARMUP + LATENCY_MESSAGES)
        latencies = (await manager.execute("sub", "latencies")).result
        return rate, p99_us(latencies[-LATENCY_MESSAGES:])


async def _queue_floor() -> tuple[float, float]:
    """The same with a bare asyncio.Queue and one consumer task."""
    queue: asyncio.Queue[float] = asyncio.Queue(256)
    latencies: list[float] = []

    async def consume() -> None:
        while True:
            stamp = await queue.get()
            latencies.append(time.perf_counter() - stamp)

    consumer = asyncio.get_running_loop().create_task(consume())  # a benchmark's own scope
    try:
        start = time.perf_counter()
        for burst in range(THROUGHPUT_MESSAGES // BURST):
            for _ in range(BURST):
                queue.put_nowait(time.perf_counter())
            await until(lambda: len(latencies), (burst + 1) * BURST)
        rate = THROUGHPUT_MESSAGES / (time.perf_counter() - start)
        base = len(latencies)
        for n in range(WARMUP + LATENCY_MESSAGES):
            queue.put_nowait(time.perf_counter())
            await until(lambda: len(latencies), base + n + 1)
        return rate, p99_us(latencies[-LATENCY_MESSAGES:])
    finally:
        consumer.cancel()


async def _redis_pair(url: str) -> tuple[list[float], list[float]]:
    """Latencies (s) of the Redis bus and of a bare redis-py PUBLISH → pub/sub reader round trip,
    one message at a time, the two in turn so both see the same machine."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe("floor")
    await pubsub.get_message(timeout=None)  # the subscribe confirmation
    floor: list[float] = []

    async def read() -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None and message["type"] == "message":
                floor.append(time.perf_counter() - float(message["data"]))

    reader = asyncio.get_running_loop().create_task(read())  # a benchmark's own scope
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with PluginManager(_workspace(Path(tmp), url), runtimes=default_runtimes()) as manager:
                await manager.discover_and_load_all()
                await _bus_one_at_a_time(manager.bus, WARMUP)
                for _ in range(LATENCY_MESSAGES):  # in turn: this machine's stalls last milliseconds
                    wanted = len(floor) + 1
                    await client.publish("floor", repr(time.perf_counter()))
                    await until(lambda: len(floor), wanted)
                    await _bus_one_at_a_time(manager.bus, 1)
                bus = (await manager.execute("sub", "latencies")).result[WARMUP:]
        return bus, floor
    finally:
        reader.cancel()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


def _with_redis(work: Callable[[str], Coroutine[Any, Any, T]]) -> T | None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.redis_server import RedisServer

    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        try:
            return asyncio.run(work(server.url))
        finally:
            server.stop()


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        bus_rate, bus_p99 = asyncio.run(_memory_bus(Path(tmp)))
    queue_rate, queue_p99 = asyncio.run(_queue_floor())
    rows = [
        Row(
            "memory bus publish→deliver throughput",
            bus_rate,
            "msg/s",
            comparison=f"bare asyncio.Queue fan-out: {queue_rate:,.0f} msg/s",
        ),
        Row("memory bus publish→deliver p99", bus_p99, "µs", comparison=f"bare asyncio.Queue: {queue_p99:.1f} µs"),
    ]
    measured = _with_redis(_redis_pair)
    if measured is None:
        rows.append(Row("redis bus p99 (redis-server not installed: not measured)", 0, "µs"))
        return rows
    bus, floor = measured
    bus_p50, floor_p50 = statistics.median(bus) * 1e6, statistics.median(floor) * 1e6
    ratio = p99_us(bus) / p99_us(floor)
    rows += [
        Row("redis bus publish→deliver p50", bus_p50, "µs", comparison=f"bare redis-py round trip: {floor_p50:.1f} µs"),
        Row("redis bus publish→deliver p99", p99_us(bus), "µs", comparison=f"bare redis-py: {p99_us(floor):.1f} µs"),
        Row("redis bus p99 / bare redis-py p99", ratio, "×", target=f"≤ {REDIS_TARGET}×", ok=ratio <= REDIS_TARGET),
    ]
    return rows


if __name__ == "__main__":
    print_rows("message bus", run())
