"""Cluster event distribution: a single `plughost run` node vs a gateway node relaying its bot's
events through Redis to one and to two worker nodes (all real processes, one redis-server and an
in-process OneBot peer on loopback).

- throughput: events answered per second, the peer keeping at most `WINDOW` events unanswered;
- latency: one event at a time, event sent → reply received at the peer (p50/p99); the stream hop
  is the gateway + one worker's latency minus the single node's.

Every node is a Python process sharing this machine's cores with the others, redis-server and the
peer: the figures say what the hop costs here, not what separate machines would give.

    python benchmarks/run.py cluster
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import Row, print_rows

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_EVENTS = 3000
WINDOW = 300
LATENCY_EVENTS = 300
WARMUP = 30
RUN = [sys.executable, "-m", "plughost", "run", "--no-console", "--no-manage"]
ECHO = """
from plughost.sdk import MessageEvent, Plugin
plugin = Plugin()

@plugin.on_message(startswith="ping")
async def pong(ev: MessageEvent) -> str:
    return f"pong {ev.message_id}"
"""


def _node(root: Path, name: str, toml: str) -> subprocess.Popen[bytes]:
    workspace = root / name
    plugin = workspace / "plugins" / "echo"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text('id = "echo"\nversion = "1.0.0"\n')
    (plugin / "plugin.py").write_text(textwrap.dedent(ECHO))
    (workspace / "plughost.toml").write_text(toml)
    log = (root / f"{name}.log").open("wb")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen([*RUN, "-w", str(workspace)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)  # fmt: skip


async def _measure(root: Path, redis_url: str, workers: int) -> tuple[float, list[float]]:
    """(events/s, latencies in s) of one setup: a single node (workers = 0) or a gateway + workers."""
    from tests.bot.onebot_impl import OneBotImpl, group_message

    peer = OneBotImpl()
    port = await peer.serve_forward()
    bot = f'[[bots]]\nid = "main"\ntransport = "ws-forward"\nendpoint = "ws://127.0.0.1:{port}/"\nqueue_size = 1000\n'
    prefix = f"bench{workers}"
    cluster = f'[cluster]\nredis_url = "{redis_url}"\nprefix = "{prefix}"\n'
    nodes = [_node(root, f"{prefix}-gw", cluster + ('role = "gateway"\n' if workers else "") + bot)]
    nodes += [_node(root, f"{prefix}-w{n}", cluster + 'role = "worker"\n') for n in range(workers)]
    try:
        await peer.wait_for(lambda: bool(peer.connections), timeout=60)
        for n in range(workers):
            log = root / f"{prefix}-w{n}.log"
            while b"running;" not in log.read_bytes():  # noqa: ASYNC110 - a file has no event to wait on
                await asyncio.sleep(0.05)
        sent = 0

        async def answered(count: int) -> None:
            await peer.wait_for(lambda: len(peer.actions) >= count, timeout=60)

        latencies: list[float] = []
        for _ in range(LATENCY_EVENTS + WARMUP):
            sent += 1
            started = time.perf_counter()
            await peer.push(group_message(f"ping {sent}", message_id=sent))
            await answered(sent)
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        first = sent
        for _ in range(THROUGHPUT_EVENTS):
            await answered(sent - WINDOW)
            sent += 1
            await peer.push(group_message(f"ping {sent}", message_id=sent))
        await answered(sent)
        rate = (sent - first) / (time.perf_counter() - started)
        return rate, latencies[WARMUP:]
    finally:
        for process in nodes:
            process.kill()  # not measured; SIGTERM would wait for shutdown
            process.wait()
        await peer.close()


def _ms(values: list[float], quantile: int) -> float:
    return statistics.quantiles(values, n=100)[quantile - 1] * 1e3


def run() -> list[Row]:
    sys.path.insert(0, str(ROOT))
    from tests.redis_server import RedisServer

    binary = shutil.which("redis-server")
    if binary is None:
        return [Row("cluster events (redis-server not installed: not measured)", 0, "events/s")]
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp) / "redis")
        (Path(tmp) / "redis").mkdir()
        server.start()
        try:
            single, single_lat = asyncio.run(_measure(Path(tmp), server.url, 0))
            one, one_lat = asyncio.run(_measure(Path(tmp), server.url, 1))
            two, _ = asyncio.run(_measure(Path(tmp), server.url, 2))
        finally:
            server.stop()
    cores = os.cpu_count() or 1
    return [
        Row("single node: events answered", single, "events/s", comparison="1 process (role both)"),
        Row("gateway + 1 worker: events answered", one, "events/s", comparison=f"single node: {single:,.0f}/s"),
        Row(
            "gateway + 2 workers: events answered",
            two,
            "events/s",
            comparison=f"3 Python processes + redis + peer on {cores} cores",
        ),
        Row(
            "single node: event → reply p50", _ms(single_lat, 50), "ms", comparison=f"p99 {_ms(single_lat, 99):.2f} ms"
        ),
        Row("gateway + worker: event → reply p50", _ms(one_lat, 50), "ms", comparison=f"p99 {_ms(one_lat, 99):.2f} ms"),
        Row(
            "stream hop: added p50",
            _ms(one_lat, 50) - _ms(single_lat, 50),
            "ms",
            comparison=f"added p99 {_ms(one_lat, 99) - _ms(single_lat, 99):.2f} ms",
        ),
    ]


if __name__ == "__main__":
    print_rows("cluster event distribution", run())
