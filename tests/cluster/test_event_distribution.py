"""Several hosts as one bot: a gateway `plughost run` relays its bot's events through Redis to worker
`plughost run` processes, which answer through the gateway — each event exactly once, also when a
worker is killed with SIGKILL in the middle (its events are taken over after `claim_idle_ms`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from tests.bot.onebot_impl import OneBotImpl, group_message
from tests.redis_server import RedisServer, free_port

RUN = [sys.executable, "-m", "plughost", "run", "--no-console", "--no-manage"]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
EVENTS = 5000
WINDOW = 300  # events sent and not yet answered, at most (the peer's flow control)

ECHO = """
from plughost.sdk import Bot, MessageEvent, Plugin
plugin = Plugin()

@plugin.on_message(startswith="ping")
async def pong(ev: MessageEvent) -> str:
    return f"pong {ev.message_id}"

@plugin.on_message(startswith="who")
async def who(ev: MessageEvent, bot: Bot) -> str:
    info = await bot.get_group_member_info(ev.group_id, ev.user_id)   # a query: answered through the gateway
    return f"member {info['user_id']} of {info['group_id']}"
"""


class Nodes:
    """The `plughost run` processes of one test (killed at the end), with their logs."""

    def __init__(self, root: Path, server: RedisServer) -> None:
        self.root = root
        self.server = server
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, cluster: str, bots: str = "") -> subprocess.Popen[str]:
        workspace = self.root / name
        plugin = workspace / "plugins" / "echo"
        plugin.mkdir(parents=True)
        (plugin / "plugin.toml").write_text('id = "echo"\nversion = "1.0.0"\n')
        (plugin / "plugin.py").write_text(textwrap.dedent(ECHO))
        (workspace / "plughost.toml").write_text(
            f'[cluster]\nredis_url = "{self.server.url}"\nnode = "{name}"\n{textwrap.dedent(cluster)}\n{bots}'
        )
        with (self.root / f"{name}.log").open("w") as log:
            process = subprocess.Popen([*RUN, "-w", str(workspace)], stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True, env=ENV)  # fmt: skip
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def stop(self) -> list[str]:
        """SIGTERM every node still running; the names of those that had to be killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 20
        killed = []
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                killed.append(name)
        return killed


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[Nodes]:
    started = Nodes(tmp_path, redis_server)
    try:
        yield started
    finally:
        killed = started.stop()
    assert not killed, f"nodes that did not stop on SIGTERM within 20 s: {killed}"


@pytest.fixture
async def impl() -> AsyncIterator[OneBotImpl]:
    peer = OneBotImpl()
    try:
        yield peer
    finally:
        await peer.close()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    try:
        yield connection
    finally:
        await connection.aclose()


def gateway_bot(port: int) -> str:
    return f'[[bots]]\nid = "main"\ntransport = "ws-forward"\nendpoint = "ws://127.0.0.1:{port}/"\nqueue_size = 1000\n'


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """`check()`'s first truthy value (sync or async), polled until `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


async def consumers(client: redis.Redis) -> dict[str, int]:
    """Worker consumers of the event stream and how many events each holds unacknowledged."""
    try:
        rows = await client.xinfo_consumers("plughost:bot:events", "workers")
    except redis.ResponseError:
        return {}
    return {row["name"].decode(): row["pending"] for row in rows}


async def quiet(client: redis.Redis) -> bool:
    """No event waiting or unacknowledged, no action left to perform."""
    pending = await client.xpending("plughost:bot:events", "workers")
    return (
        (await client.xlen("plughost:bot:events")) == 0
        and pending["pending"] == 0
        and (await client.xlen("plughost:bot:actions:gw")) == 0
    )


async def start_cluster(nodes: Nodes, impl: OneBotImpl, client: redis.Redis, workers: list[str]) -> None:
    port = await impl.serve_forward()
    nodes.start("gw", 'role = "gateway"', gateway_bot(port))
    for name in workers:
        nodes.start(name, 'role = "worker"\nclaim_idle_ms = 1000')
    await until(lambda: impl.connections, "the gateway did not connect:\n" + nodes.log("gw"))

    for name in workers:  # its consumer group exists and it reads from it once it says it runs
        await until(lambda: "running;" in nodes.log(name), f"{name} did not start:\n{nodes.log(name)}")  # noqa: B023


def replies(impl: OneBotImpl) -> list[str]:
    return [a["params"]["message"][0]["data"]["text"] for a in impl.actions if a["action"] == "send_group_msg"]


async def test_every_event_answered_exactly_once_when_a_worker_is_killed(
    nodes: Nodes, impl: OneBotImpl, client: redis.Redis
) -> None:
    await start_cluster(nodes, impl, client, ["w1", "w2"])
    w1 = nodes.processes["w1"]
    killed = False
    for n in range(1, EVENTS + 1):
        answered = n - WINDOW
        await impl.wait_for(lambda: len(impl.actions) >= answered, timeout=30)  # noqa: B023 (awaited at once)
        if n >= EVENTS // 3 and not killed:  # kill w1 while it holds unacknowledged events
            killed = await _killed_holding_events(w1, client, "w1:")
        await impl.push(group_message(f"ping {n}", message_id=n))
    await impl.wait_for(lambda: len(impl.actions) >= EVENTS, timeout=60)
    await until(lambda: quiet(client), "events or actions left over")

    counted = Counter(replies(impl))
    assert killed
    assert len(counted) == EVENTS, f"missing: {sorted(set(range(1, EVENTS + 1)) - {int(t[5:]) for t in counted})[:20]}"
    assert set(counted) == {f"pong {n}" for n in range(1, EVENTS + 1)}
    assert [text for text, times in counted.items() if times > 1] == []  # none answered twice
    stats = {k.decode(): int(v) for k, v in (await client.hgetall("plughost:bot:stats")).items()}
    assert stats["relayed"] == stats["handled"] == EVENTS + 1 and stats.get("shed", 0) == 0  # + the lifecycle event
    assert stats["claimed"] > 0  # w1's events were taken over by w2


async def _held_by(client: redis.Redis, prefix: str) -> int:
    return sum(pending for name, pending in (await consumers(client)).items() if name.startswith(prefix))


async def _killed_holding_events(process: subprocess.Popen[str], client: redis.Redis, consumer: str) -> bool:
    """Stop the node; if it holds unacknowledged events (it cannot acknowledge them any more), kill it
    and say so; otherwise let it go on (the caller sends more events and asks again)."""
    os.kill(process.pid, signal.SIGSTOP)
    await until(lambda: _process_state(process.pid) == "T", f"{consumer} did not stop on SIGSTOP")
    if await _held_by(client, consumer) == 0:
        os.kill(process.pid, signal.SIGCONT)
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return True


def _process_state(pid: int) -> str:
    """The one-letter state in /proc/<pid>/stat (T: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


async def test_queries_answered_through_the_gateway(nodes: Nodes, impl: OneBotImpl, client: redis.Redis) -> None:
    await start_cluster(nodes, impl, client, ["w1"])
    for n in range(1, 21):
        await impl.push(group_message(f"who {n}", message_id=n, user_id=1000 + n))
    await impl.wait_for(lambda: len(replies(impl)) >= 20, timeout=30)
    await until(lambda: quiet(client), "events or actions left over")
    assert sorted(replies(impl)) == sorted(f"member {1000 + n} of 123" for n in range(1, 21))
    assert len([a for a in impl.actions if a["action"] == "get_group_member_info"]) == 20


# bad input ------------------------------------------------------------------------------------------
def run_node(workspace: Path, toml: str, *args: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(exist_ok=True)
    (workspace / "plugins").mkdir(exist_ok=True)
    (workspace / "plughost.toml").write_text(textwrap.dedent(toml))
    return subprocess.run([*RUN, "-w", str(workspace), *args], check=False, capture_output=True, text=True,
                          env=ENV, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip


def test_worker_with_redis_down_at_start_says_so(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = run_node(tmp_path / "w", f'[cluster]\nredis_url = "{url}"\nrole = "worker"\n')
    assert result.returncode != 0
    assert f"cannot reach Redis at {url}" in result.stdout + result.stderr


def test_gateway_without_bots_is_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    result = run_node(tmp_path / "g", f'[cluster]\nredis_url = "{redis_server.url}"\nrole = "gateway"\n')
    assert result.returncode != 0
    assert 'role = "gateway" holds the OneBot connections, but no [[bots]] entry is enabled' in (
        result.stdout + result.stderr
    )


def test_unknown_role_is_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    result = run_node(tmp_path / "a", f'[cluster]\nredis_url = "{redis_server.url}"\nrole = "leader"\n')
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "role" in output and "'gateway', 'worker' or 'both'" in output, output
    flag = run_node(tmp_path / "b", "", "--role", "leader")
    assert flag.returncode != 0
    assert "invalid value for '--role': 'leader' is not one of 'gateway', 'worker', 'both'" in flag.stdout + flag.stderr


def test_worker_without_redis_is_refused(tmp_path: Path) -> None:
    result = run_node(tmp_path / "w", '[cluster]\nrole = "worker"\n')
    assert result.returncode != 0
    assert "role = 'worker' needs redis_url" in result.stdout + result.stderr


async def test_a_full_stream_sheds_and_counts(nodes: Nodes, impl: OneBotImpl, client: redis.Redis) -> None:
    port = await impl.serve_forward()
    nodes.start("gw", 'role = "gateway"\nmax_backlog = 5', gateway_bot(port))
    await until(lambda: impl.connections, "the gateway did not connect:\n" + nodes.log("gw"))
    for n in range(1, 9):  # with the connect (lifecycle) event: 9 events for room for 5
        await impl.push(group_message(f"ping {n}", message_id=n))

    async def stats() -> dict[str, int]:
        return {k.decode(): int(v) for k, v in (await client.hgetall("plughost:bot:stats")).items()}

    await until(lambda: _settled(stats, 9), "the gateway did not relay or shed every event")
    assert (await stats())["shed"] == 4 and await client.xlen("plughost:bot:events") == 5

    admitted = [json.loads(fields[b"event"]) for _, fields in await client.xrange("plughost:bot:events")]
    pings = {f"pong {event['message_id']}" for event in admitted if event["post_type"] == "message"}
    assert len(pings) >= 4  # the lifecycle event may be among the admitted or the shed ones

    nodes.start("w1", 'role = "worker"')  # the events that got in are handled; the shed ones were counted
    await impl.wait_for(lambda: len(replies(impl)) >= len(pings), timeout=30)
    await until(lambda: quiet(client), "events or actions left over")
    answered = replies(impl)
    assert len(answered) == len(set(answered)) and set(answered) == pings


async def _settled(stats: Callable[[], Any], events: int) -> bool:
    counted = await stats()
    return bool(counted.get("relayed", 0) + counted.get("shed", 0) == events)


async def test_an_event_committed_twice_is_sent_once(redis_server: RedisServer, client: redis.Redis) -> None:
    """Two nodes finish the same event (one was thought dead): the commit script adds its actions once."""
    from plughost.cluster.worker import COMMIT_SCRIPT

    commit = client.register_script(COMMIT_SCRIPT)
    await client.xgroup_create("p:bot:events", "workers", id="0", mkstream=True)
    await client.xadd("p:bot:events", {"bot": "main", "gateway": "gw", "id": "e1", "event": "{}"})
    [[_, [(entry_id, _)]]] = await client.xreadgroup("workers", "a", {"p:bot:events": ">"})
    keys = ["p:bot:events", "p:bot:stats", "p:bot:done:e1", "p:bot:actions:gw"]
    actions = '[{"action": "send_group_msg", "params": {"group_id": 1, "message": "hi"}}]'
    assert await commit(keys=keys, args=["workers", entry_id, 60, "main", "e1", actions, 1000]) == 1
    assert await commit(keys=keys, args=["workers", entry_id, 60, "main", "e1", actions, 1000]) == 0
    assert await client.xlen("p:bot:actions:gw") == 1
    assert await client.xlen("p:bot:events") == 0 and (await client.xpending("p:bot:events", "workers"))["pending"] == 0
    assert await client.hgetall("p:bot:stats") == {b"handled": b"1", b"repeated": b"1"}
    assert 0 < await client.ttl("p:bot:done:e1") <= 60


async def test_a_worker_node_lists_schedules_but_leaves_them_to_the_gateway(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Worker nodes hold no bot connection: the gateway runs each schedule, once for the cluster."""
    from plughost.host import Host

    plugin = tmp_path / "plugins" / "ticker"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text('id = "ticker"\nversion = "1.0.0"\n')
    (plugin / "__init__.py").write_text(
        "from datetime import timedelta\nfrom plughost.sdk import Plugin\nplugin = Plugin()\n\n"
        "@plugin.schedule(every=timedelta(milliseconds=50))\nasync def tick() -> None:\n    return None\n"
    )
    async with Host(tmp_path, cluster_url=redis_server.url, cluster_role="worker") as host:
        [status] = host.scheduler.schedules()
        assert status.plugin_id == "ticker" and not status.active and status.runs == 0
        owner = host.manager.plugin_tasks("ticker")
        assert owner is not None and not any("schedule" in task.get_name() for task in owner)  # no job here
        lines = host.scheduler.status_lines()
        assert lines[0] == "schedules: 1, run on the cluster's gateway node"
