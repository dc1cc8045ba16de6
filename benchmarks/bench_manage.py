"""Management API (`plughost run`'s /api/v1): requests under 100 concurrent clients, and SSE fan-out.

    python benchmarks/bench_manage.py             # prints a table
    python benchmarks/run.py manage               # through the runner

A real `Host` with its `ManageServer` (uvicorn embedded in the host's event loop, as in `plughost
run`) serves 20 generated plugins; the host process is pinned to one core. The load comes from
this same file run as a subprocess (`--load-http` / `--load-sse`) pinned to another core: the
clients must not share the host's event loop (their work would be billed to the server and their
scheduling would interleave with its own) nor its core. The clients speak HTTP/1.1 over raw
keep-alive sockets rather than through httpx: an httpx request costs a few hundred µs of client
CPU, so 100 httpx clients on one core would saturate before the server does and the figure
would measure httpx. A raw request costs a few µs; the generator's own CPU use is printed with
each figure so it can be seen not to be the limit.

1. `GET /api/v1/plugins` and `POST /api/v1/plugins/<id>/execute` (a trivial method), closed loop,
   100 connections each with one request outstanding: requests/s, p50/p99 latency. Compared, in
   the same run, with the same calls made directly on the manager (`manager.catalog()`, `await
   manager.execute(...)`) and with a bare ASGI app on the same uvicorn set-up (the transport floor).
2. SSE fan-out: 50 clients stream `/api/v1/events/stream` (resuming after the id current when they
   connected) while the host emits 1 000 lifecycle events/s for `DURATION_S` through the plugin
   manager's event bus (`manager.events.emit(id, EventType.RECONFIGURE, …)`: the call every lifecycle
   change makes; the server's subscription turns it into a feed item, as in production; actually
   reconfiguring plugins 1 000 times a second would measure config files instead). Every client
   checks that ids are contiguous and counts `missed` events (items that aged out of the feed's
   bounded history before the client read them: loss). Lag is the client's receive time minus the
   event's timestamp. Compared with 50 in-process followers of the same feed (no HTTP).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (  # benchmarks/common.py (this directory is on sys.path)
    LOADGEN_CPU_ENV,
    Row,
    pin_load_generator,
    print_rows,
)

SELF = Path(__file__).resolve()  # run again as the load generator
DURATION_S = float(os.environ.get("PLUGHOST_BENCH_MANAGE_SECONDS", "3"))
WARMUP_S = 0.5
HTTP_CLIENTS = 100
SSE_CLIENTS = 50
SSE_RATE = 1000  # events/s
PLUGINS = 20
TICK_S = 0.002

PLUGIN = """
from plughost import Plugin

plugin = Plugin()

@plugin.method()
def echo(text: str) -> str:
    return text
"""


# ---------------------------------------------------------------------------------------------
# load generator (runs in a subprocess: `bench_manage.py --load-http …` / `--load-sse …`)
# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without content-length: {head[:200]!r}")
    end = lower.find(b"\r\n", at + 17)
    return status, await reader.readexactly(int(lower[at + 17 : end]))


async def load_http(port: int, request: bytes, expect: bytes, clients: int, duration: float) -> dict[str, float]:
    """`clients` keep-alive connections, each sending `request` again as soon as its answer is read."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    latencies: list[float] = []
    done = errors = 0
    begin = time.perf_counter()
    mark, stop = begin + WARMUP_S, begin + WARMUP_S + duration

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal done, errors
        perf = time.perf_counter
        while True:
            started = perf()
            if started >= stop:
                break
            writer.write(request)
            status, body = await _read_response(reader)
            finished = perf()
            if status != 200 or expect not in body:
                errors += 1
            if mark <= started and finished <= stop:
                done += 1
                latencies.append(finished - started)
        writer.close()

    cpu = _cpu_s()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    cpu = _cpu_s() - cpu
    return {
        "requests_per_s": done / duration,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": float(errors),
        "client_cpu": cpu / (time.perf_counter() - begin),
    }


class SseClient:
    """One event-stream reader: counts events, checks ids are contiguous, notes `missed` and lag."""

    def __init__(self, after: int) -> None:
        self.last = after
        self.received = 0
        self.gaps = 0
        self.missed = 0
        self.max_lag = 0.0
        self.lags: list[float] = []

    async def run(self, port: int, key: str, connected: asyncio.Queue[None], final: asyncio.Future[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(
            f"GET /api/v1/events/stream?after={self.last} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head[9:12]) != 200 or b"chunked" not in head.lower():
            raise RuntimeError(f"the event stream answered {head[:200]!r}")
        connected.put_nowait(None)
        buffer = b""
        now = time.time
        try:
            while not (final.done() and self.last >= final.result()):
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    break
                buffer += (await reader.readexactly(size + 2))[:-2].replace(b"\r\n", b"\n")  # SSE allows both
                while True:
                    end = buffer.find(b"\n\n")
                    if end < 0:
                        break
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    self._block(block, now())
        finally:
            writer.close()

    def _block(self, block: bytes, received_at: float) -> None:
        event_id, kind, data = None, b"", b""
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = int(line[4:])
            elif line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if kind == b"missed":
            self.missed += int(json.loads(data)["missed"])
            return
        if event_id is None:
            return  # a keep-alive comment
        if event_id != self.last + 1:
            self.gaps += max(0, event_id - self.last - 1)
        self.last = event_id
        self.received += 1
        timestamp = json.loads(data).get("timestamp")
        if timestamp is not None:
            lag = received_at - float(timestamp)
            self.lags.append(lag)
            self.max_lag = max(self.max_lag, lag)


async def load_sse(port: int, key: str, clients: int, after: int) -> dict[str, Any]:
    """Connect `clients` streams, print `ready`, read the last id to expect on stdin, report."""
    loop = asyncio.get_running_loop()
    final: asyncio.Future[int] = loop.create_future()
    connected: asyncio.Queue[None] = asyncio.Queue()
    readers = [SseClient(after) for _ in range(clients)]
    tasks = [asyncio.create_task(c.run(port, key, connected, final)) for c in readers]
    for _ in range(clients):
        getter = asyncio.ensure_future(connected.get())
        await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
    cpu = _cpu_s()
    started = time.perf_counter()
    print("ready", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    final.set_result(int(line))
    _, pending = await asyncio.wait(tasks, timeout=10)
    for task in pending:
        task.cancel()
    cpu = _cpu_s() - cpu
    lags = [lag for c in readers for lag in c.lags]
    return {
        "expected": int(line) - after,
        "received": [c.received for c in readers],
        "gaps": sum(c.gaps for c in readers),
        "missed": sum(c.missed for c in readers),
        "unfinished": len(pending),
        "max_lag_ms": max((c.max_lag for c in readers), default=float("nan")) * 1000,
        "p50_lag_ms": percentile(lags, 0.50) * 1000,
        "p99_lag_ms": percentile(lags, 0.99) * 1000,
        "client_cpu": cpu / (time.perf_counter() - started),
    }


def _loadgen_main(argv: list[str]) -> None:
    pin_load_generator()
    if argv[0] == "--load-http":
        port, request, expect, clients, duration = argv[1:6]
        result = asyncio.run(
            load_http(int(port), bytes.fromhex(request), bytes.fromhex(expect), int(clients), float(duration))
        )
    else:
        port, key, clients, after = argv[1:5]
        result = asyncio.run(load_sse(int(port), key, int(clients), int(after)))
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# the host side
# ---------------------------------------------------------------------------------------------


def _workspace(root: Path) -> None:
    for i in range(PLUGINS):
        directory = root / "plugins" / f"p{i:02d}"
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "p{i:02d}"\nversion = "1.0.0"\n')
        (directory / "plugin.py").write_text(PLUGIN)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _get(port: int, path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


def _post(port: int, path: str, key: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def _drive_http(env: dict[str, str], port: int, request: bytes, expect: bytes) -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SELF), "--load-http", str(port), request.hex(), expect.hex(),
        str(HTTP_CLIENTS), str(DURATION_S), stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"HTTP load generator failed ({process.returncode})")
    result: dict[str, float] = json.loads(out)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']:.0f} requests failed")
    return result


def _direct_sync(func: Any, seconds: float = 1.0) -> dict[str, float]:
    """Per-call latencies of `func()` called in a loop for `seconds`."""
    perf = time.perf_counter
    latencies: list[float] = []
    end = perf() + seconds
    begin = perf()
    while (now := perf()) < end:
        func()
        latencies.append(perf() - now)
    elapsed = perf() - begin
    return _direct_figures(latencies, elapsed)


async def _direct_async(func: Any, seconds: float = 1.0) -> dict[str, float]:
    perf = time.perf_counter
    latencies: list[float] = []
    end = perf() + seconds
    begin = perf()
    while (now := perf()) < end:
        result = await func()
        latencies.append(perf() - now)
    if not result.success:
        raise RuntimeError(f"direct execute failed: {result.error}")
    elapsed = perf() - begin
    return _direct_figures(latencies, elapsed)


def _direct_figures(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {
        "calls_per_s": len(latencies) / elapsed,
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
    }


async def _floor(env: dict[str, str]) -> dict[str, float]:
    """The transport floor: a bare ASGI app (no FastAPI, no plughost) on uvicorn as the manage server
    configures it, answering a fixed JSON body of about the execute answer's size."""
    import uvicorn

    from plughost.adapters.lingering import LingeringH11Protocol
    from plughost.adapters.listening import EmbeddedServer, bind_socket

    body = b'{"success":true,"result":"hi","error":null,"execution_time":0.00001,"metadata":{}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", ws="none", http=LingeringH11Protocol
    )
    server = EmbeddedServer(config)
    sock = bind_socket(("127.0.0.1", 0))
    served = asyncio.create_task(server.serve(sockets=[sock]))  # listening already: connections queue
    try:
        port = sock.getsockname()[1]
        return await _drive_http(
            env, port, _post(port, "/", "x" * 43, {"method": "echo", "args": {"text": "hi"}}), b"hi"
        )
    finally:
        server.should_exit = True
        await served
        sock.close()


async def _publish(emit: Any, rate: float, duration: float) -> float:
    """Call `emit(n)` `rate` times a second for `duration` s (open loop); returns the rate achieved."""
    begin = time.perf_counter()
    sent = 0
    next_at = begin
    while (elapsed := time.perf_counter() - begin) < duration:
        for _ in range(int(elapsed * rate) - sent):
            sent += 1
            emit(sent)
        next_at += TICK_S
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    for _ in range(int(duration * rate) - sent):
        sent += 1
        emit(sent)
    return sent / (time.perf_counter() - begin)


async def _sse(env: dict[str, str], host: Any, server: Any) -> dict[str, Any]:
    from plughost.sdk.models import EventType

    port, key = _port(server.url), server.key.value
    feed = server.context.events
    after = feed.last_id
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SELF), "--load-sse", str(port), key, str(SSE_CLIENTS), str(after),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"SSE load generator did not connect: {line!r}")
        emit = host.manager.events.emit
        plugins = [f"p{i:02d}" for i in range(PLUGINS)]

        def publish(n: int) -> None:
            emit(plugins[n % PLUGINS], EventType.RECONFIGURE, True, "benchmark event", None, {"n": n})

        cpu = _cpu_s()
        started = time.perf_counter()
        rate = await _publish(publish, SSE_RATE, DURATION_S)
        process.stdin.write(f"{feed.last_id}\n".encode())
        await process.stdin.drain()
        out = await asyncio.wait_for(process.stdout.read(), 30)  # the host keeps serving meanwhile
        host_cpu_s = _cpu_s() - cpu
        host_cpu = host_cpu_s / (time.perf_counter() - started)
    finally:
        if process.returncode is None:
            process.stdin.close()  # on an error above: the generator reads EOF and stops
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"SSE load generator failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out)
    result["rate"] = rate
    result["host_cpu"] = host_cpu
    result["cpu_us_per_event"] = host_cpu_s / (result["expected"] * SSE_CLIENTS) * 1e6
    return result


async def _feed_followers(limit: int) -> dict[str, Any]:
    """The comparison: 50 in-process followers of a `Feed` like the server's (no HTTP): the same
    `after`/`wait` calls the SSE route makes, the same 1 000 items/s."""
    from plughost.manage.feeds import Feed

    feed = Feed(limit)
    total = int(DURATION_S * SSE_RATE)
    received = [0] * SSE_CLIENTS
    missed = [0] * SSE_CLIENTS
    max_lag = [0.0] * SSE_CLIENTS

    async def follow(index: int) -> None:
        last = 0
        while last < total:
            backlog = feed.after(last, 500)
            missed[index] += backlog.missed
            now = time.time()
            for entry in backlog.items:
                last = entry.id
                received[index] += 1
                max_lag[index] = max(max_lag[index], now - entry.item["timestamp"])
            if not backlog.items:
                await feed.wait(last, 1.0)

    followers = [asyncio.create_task(follow(i)) for i in range(SSE_CLIENTS)]
    await asyncio.sleep(0)
    cpu = _cpu_s()
    await _publish(lambda n: feed.publish({"timestamp": time.time(), "n": n}), SSE_RATE, DURATION_S)
    await asyncio.wait_for(asyncio.gather(*followers), 10)
    return {
        "expected": total,
        "received": min(received),
        "missed": sum(missed),
        "max_lag_ms": max(max_lag) * 1000,
        "cpu_us_per_event": (_cpu_s() - cpu) / (total * SSE_CLIENTS) * 1e6,
    }


async def _bench(loadgen_cpu: int | None) -> dict[str, Any]:
    from plughost.host import Host
    from plughost.manage.server import ManageServer
    from plughost.manage.settings import ManageSettings

    env = dict(os.environ)  # the load generators': names the core they move to
    if loadgen_cpu is not None:
        env[LOADGEN_CPU_ENV] = str(loadgen_cpu)
    figures: dict[str, Any] = {"floor": await _floor(env)}
    with tempfile.TemporaryDirectory(prefix="plughost-bench-manage-") as tmp:
        root = Path(tmp)
        _workspace(root)
        host = Host(root)
        settings = ManageSettings(bind="127.0.0.1:0")
        server = host.add_adapter(ManageServer(host, settings))
        async with host:
            manager = host.manager
            if len(manager.enabled_plugins()) != PLUGINS:
                raise RuntimeError("not every plugin loaded")
            assert server.key is not None
            port, key = _port(server.url), server.key.value
            figures["feed_limit"] = settings.event_records
            # closed-loop requests through the API
            figures["list"] = await _drive_http(env, port, _get(port, "/api/v1/plugins", key), b'"total":')
            body = {"method": "echo", "args": {"text": "hi"}}
            figures["execute"] = await _drive_http(
                env, port, _post(port, "/api/v1/plugins/p00/execute", key, body), b'"success":true'
            )
            # the same calls made directly on the manager, same process, same core
            figures["direct_list"] = _direct_sync(manager.catalog)
            figures["direct_plugins"] = _direct_sync(manager.list_plugins)
            figures["direct_execute"] = await _direct_async(lambda: manager.execute("p00", "echo", {"text": "hi"}))
            figures["sse"] = await _sse(env, host, server)
            figures["plugin_rows"] = len(manager.catalog())
    figures["feed"] = await _feed_followers(figures["feed_limit"])
    return figures


def run() -> list[Row]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity and len(affinity) > 1:  # the host on one core, the load generators on another
        os.sched_setaffinity(0, {min(affinity)})
    try:
        f = asyncio.run(_bench(max(affinity) if affinity and len(affinity) > 1 else None))
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    floor, sse, feed = f["floor"], f["sse"], f["feed"]
    rows: list[Row] = [
        Row(
            f"manage: transport floor, bare ASGI app on the same uvicorn set-up, {HTTP_CLIENTS} clients",
            floor["requests_per_s"], "req/s", "baseline",
            f"p50 {floor['p50_ms']:.2f} ms, p99 {floor['p99_ms']:.2f} ms; load generator CPU {floor['client_cpu']:.0%}",
        ),
    ]  # fmt: skip
    for name, label, direct, what in (
        ("list", f"GET /api/v1/plugins ({f['plugin_rows']} plugins)", "direct_list", "manager.catalog()"),
        ("execute", "POST /api/v1/plugins/p00/execute echo(text)", "direct_execute", "await manager.execute(…)"),
    ):
        api, call = f[name], f[direct]
        rows += [
            Row(
                f"manage: {label}, {HTTP_CLIENTS} clients",
                api["requests_per_s"], "req/s", "report",
                f"{api['requests_per_s'] / floor['requests_per_s']:.0%} of the floor; direct {what}: "
                f"{call['calls_per_s']:,.0f} calls/s ({call['calls_per_s'] / api['requests_per_s']:,.0f}×); "
                f"load generator CPU {api['client_cpu']:.0%}",
            ),
            Row(f"manage: {label}: p50 latency", api["p50_ms"], "ms", "report",
                f"direct {what}: p50 {call['p50_us']:.1f} µs"),
            Row(f"manage: {label}: p99 latency", api["p99_ms"], "ms", "report",
                f"direct {what}: p99 {call['p99_us']:.1f} µs"),
        ]  # fmt: skip
    plugins = f["direct_plugins"]
    rows.append(
        Row("manage: direct manager.list_plugins() (for scale)", plugins["p50_us"], "µs", "baseline",
            f"{plugins['calls_per_s']:,.0f} calls/s"),
    )  # fmt: skip
    expected = sse["expected"]
    worst = min(sse["received"])
    complete = sum(1 for r in sse["received"] if r == expected)
    lost = sum(expected - r for r in sse["received"])  # announced as missed, id gaps, or never arrived
    none_lost = worst == expected and sse["missed"] == 0 and sse["gaps"] == 0 and not sse["unfinished"]
    rows += [
        Row(
            f"manage SSE: {SSE_CLIENTS} clients × {SSE_RATE:,} events/s for {DURATION_S:g} s: delivered, worst client",
            worst, f"of {expected:,} ev", "all, none lost",
            f"{complete}/{SSE_CLIENTS} clients got all {expected:,}; published {sse['rate']:,.0f}/s; "
            f"in-process feed followers: {feed['received']:,} of {feed['expected']:,}",
            none_lost,
        ),
        Row(
            "manage SSE: lost (`missed` announced + id gaps, all clients)", lost, "events", "0",
            f"missed {sse['missed']:,}, gaps {sse['gaps']:,}, clients not finished {sse['unfinished']}; "
            f"feed history {f['feed_limit']:,} items; in-process followers missed {feed['missed']:,}",
            lost == 0,
        ),
        Row(
            "manage SSE: max lag, emit → client", sse["max_lag_ms"], "ms", "report",
            f"p50 {sse['p50_lag_ms']:.1f} ms, p99 {sse['p99_lag_ms']:.1f} ms; in-process followers max "
            f"{feed['max_lag_ms']:.1f} ms; host CPU {sse['host_cpu']:.0%}, load generator CPU {sse['client_cpu']:.0%}",
        ),
        Row(
            "manage SSE: host CPU per event per client", sse["cpu_us_per_event"], "µs", "report",
            f"{SSE_CLIENTS} × {SSE_RATE:,}/s needs {sse['cpu_us_per_event'] * SSE_CLIENTS * SSE_RATE / 1e4:.0f} % "
            f"of a core; in-process feed followers: {feed['cpu_us_per_event']:.2f} µs",
        ),
    ]  # fmt: skip
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--load-http", "--load-sse"):
        _loadgen_main(sys.argv[1:])
    else:
        print_rows("Management API", run())
