"""The Redis backend beyond the shared bus/state semantics (tests/core/test_bus_state.py runs those on
both backends): reconnecting after redis-server restarts, two hosts sharing one Redis (the second a
real `plughost run --cluster` process), deployments kept apart by their prefix, and the errors at
start (Redis down, bad settings, redis-py missing)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plughost import Host, PluginManager
from plughost.cluster.redis_backend import RedisBackend, RedisUnavailable
from plughost.errors import ConfigError, PlugHostError
from plughost.runtime import default_runtimes
from plughost.sdk.shared import BusRequestError
from tests.conftest import PluginWriter
from tests.redis_server import RedisServer, free_port

RUN = [sys.executable, "-m", "plughost", "run", "--no-console", "--no-manage"]
GRANTS = '[permissions]\ntopics = ["weather.*", "math.>", "calc.>", "state.read"]\nstate = ["shared.log", "shared.x"]\n'

LOCAL = """
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()
seen: list = []

@plugin.subscribe("weather.*")
def on_weather(data: Any, topic: str) -> None:
    seen.append([topic, data])

@plugin.method("seen")
def get_seen() -> list:
    return seen
"""

REMOTE = """
import asyncio, os
from typing import Any
from plughost.sdk import Plugin, PluginContext
plugin = Plugin()

@plugin.subscribe("weather.*")
async def on_weather(data: Any, topic: str, sender: str, ctx: PluginContext) -> None:
    log = ctx.state.namespace("shared.log")
    n = await log.incr("count")
    await log.set(f"m{n}", [topic, data, sender, os.getpid()])

@plugin.reply_to("math.double")
def double(data: dict) -> dict:
    return {"value": data["value"] * 2, "pid": os.getpid()}

@plugin.reply_to("math.slow")
async def slow(data: Any) -> None:
    await asyncio.sleep(30)

@plugin.reply_to("calc.*")
def calc(data: Any) -> str:
    return "calc"

@plugin.reply_to("state.read")
async def read(data: dict, ctx: PluginContext) -> Any:
    return await ctx.state.namespace("shared.x").get(data["key"])
"""


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def retry_until(attempt: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """`attempt()`'s result once it stops raising `PlugHostError` (a host still starting)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await attempt()
        except PlugHostError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.05)


def cluster_toml(path: Path, server: RedisServer, prefix: str = "plughost") -> None:
    (path / "plughost.toml").write_text(f'[cluster]\nredis_url = "{server.url}"\nprefix = "{prefix}"\n')


async def test_reconnects_after_redis_restarts(workspace: Path, write_plugin: PluginWriter,
                                               redis_server: RedisServer) -> None:  # fmt: skip
    write_plugin("local", LOCAL, manifest_extra=GRANTS)
    cluster_toml(workspace, redis_server)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        bus, state = manager.bus, manager.state_store.view("local")
        transport = bus.transport
        assert await bus.publish("local", "weather.oslo", 0) == 1
        await state.set("k", "before")

        redis_server.stop()
        unreachable = rf"Redis at {redis_server.url} is unreachable: publish on 'weather\.oslo'"
        with pytest.raises(RedisUnavailable, match=unreachable):
            await bus.publish("local", "weather.oslo", 1)
        with pytest.raises(RedisUnavailable, match="state get in namespace 'local' failed"):
            await state.get("k")
        with pytest.raises(RedisUnavailable, match="state set"):
            await state.set("k", "during")
        with pytest.raises(RedisUnavailable, match=r"request on 'math\.double'"):
            await bus.request("local", "math.double", {"value": 1})
        failed = await manager.execute("local", "seen")  # the plugin itself keeps working
        assert failed.success
        await eventually(lambda: not transport.connected)  # type: ignore[attr-defined]
        assert await bus.settle() is False

        redis_server.start()  # the same port, an empty server (persistence is off)
        await eventually(lambda: transport.connected)  # type: ignore[attr-defined]
        assert await bus.settle() is True  # resubscribed
        for n in range(2, 12):
            assert await bus.publish("local", "weather.oslo", n) == 1
        assert await state.get("k") is None  # the restarted server has no data; the call works again
        await state.set("k", "after")
        assert await state.get("k") == "after"
        await eventually(lambda: bus.stats()["delivered"] == 11)
        seen = (await manager.execute("local", "seen")).result
        assert seen == [["weather.oslo", n] for n in (0, *range(2, 12))]  # none twice, in order


@pytest.fixture
def remote_host(tmp_path: Path, redis_server: RedisServer) -> Iterator[subprocess.Popen[str]]:
    """A second host: `plughost run --cluster URL` in its own workspace, with the plugin "remote"."""
    workspace = tmp_path / "remote-host"
    plugin = workspace / "plugins" / "remote"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text('id = "remote"\nversion = "1.0.0"\n' + GRANTS)
    (plugin / "plugin.py").write_text(textwrap.dedent(REMOTE))
    log = tmp_path / "remote-host.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*RUN, "-w", str(workspace), "--cluster", redis_server.url],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=20) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def test_two_hosts_share_bus_and_state(workspace: Path, write_plugin: PluginWriter, redis_server: RedisServer,
                                             remote_host: subprocess.Popen[str]) -> None:  # fmt: skip
    write_plugin("local", LOCAL, manifest_extra=GRANTS)
    cluster_toml(workspace, redis_server)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        bus = manager.bus

        # request/reply across processes (retried while the other host starts)
        answer = await retry_until(lambda: bus.request("local", "math.double", {"value": 21}, timeout=5))
        assert answer["value"] == 42 and answer["pid"] == remote_host.pid != os.getpid()

        # a publish reaches the subscribers of both hosts, in order
        for n in range(30):
            assert await bus.publish("local", "weather.oslo", n) == 2  # one pattern on each host
        await eventually(lambda: bus.stats()["delivered"] == 30)
        assert (await manager.execute("local", "seen")).result == [["weather.oslo", n] for n in range(30)]
        log = manager.state_store.view("local").namespace("shared.log")
        await eventually_async(lambda: log.get("count"), 30)
        remote_seen = [await log.get(f"m{n}") for n in range(1, 31)]
        assert [entry[:3] for entry in remote_seen] == [["weather.oslo", n, "local"] for n in range(30)]
        assert {entry[3] for entry in remote_seen} == {remote_host.pid}

        # state set here is read there
        await manager.state_store.view("local").namespace("shared.x").set("city", {"name": "Oslo"})
        assert await bus.request("local", "state.read", {"key": "city"}) == {"name": "Oslo"}

        # the other host's guard: its timeout, its error
        with pytest.raises(BusRequestError, match="timed out in plugin 'remote'") as slow:
            await bus.request("local", "math.slow", None, timeout=0.3)
        assert slow.value.code == "timed_out"
        # Redis's pattern `calc.*` reaches the other host, whose replier (one segment) does not match
        with pytest.raises(BusRequestError, match="no plugin answers") as nobody:
            await bus.request("local", "calc.a.b")
        assert nobody.value.code == "no_responders"
        assert await bus.request("local", "calc.a") == "calc"


async def eventually_async(read: Callable[[], Awaitable[Any]], wanted: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await read() != wanted:
        assert asyncio.get_running_loop().time() < deadline, "value not reached in time"
        await asyncio.sleep(0.01)


async def test_prefixes_keep_deployments_apart(tmp_path: Path, write_plugin: PluginWriter,
                                               redis_server: RedisServer) -> None:  # fmt: skip
    managers = []
    for name in ("blue", "green"):
        workspace = tmp_path / name
        write_plugin("local", LOCAL, manifest_extra=GRANTS, parent=workspace / "plugins")
        cluster_toml(workspace, redis_server, prefix=name)
        managers.append(PluginManager(workspace, runtimes=default_runtimes()))
    blue, green = managers
    try:
        for manager in managers:
            await manager.discover_and_load_all()
        assert await blue.bus.publish("local", "weather.oslo", "blue") == 1  # only blue's subscriber
        await blue.state_store.view("local").set("colour", "blue")
        assert await green.state_store.view("local").get("colour") is None
        await eventually(lambda: blue.bus.stats()["delivered"] == 1)
        assert green.bus.stats()["delivered"] == 0
        assert isinstance(blue.backend, RedisBackend) and blue.backend.prefix == "blue"
    finally:
        for manager in managers:
            await manager.shutdown()


async def test_unreachable_redis_stops_the_start(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("local", LOCAL, manifest_extra=GRANTS)
    url = f"redis://127.0.0.1:{free_port()}/0"
    host = Host(workspace, cluster_url=url)
    with pytest.raises(PlugHostError, match=rf"cannot reach Redis at {url} .*start redis-server there") as error:
        await host.start()
    assert "\n" not in str(error.value)
    assert host.manager.list_plugins() == []  # nothing loaded half-way

    manager = PluginManager(workspace, runtimes=default_runtimes(), backend=RedisBackend(url, connect_timeout_s=1))
    with pytest.raises(PlugHostError, match="cannot reach Redis"):
        async with manager:
            pass
    assert manager.tasks.closed and list(manager.bus.tasks) == []  # it stopped what it had started


def test_cli_says_in_one_line_when_redis_is_unreachable(workspace: Path) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [*RUN, "-w", str(workspace), "--cluster", url],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Redis at redis://:***@127.0.0.1" in lines[0], result.stderr
    assert "secret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('redis_url = "http://127.0.0.1:6379"', "cluster.redis_url: .*is not a Redis URL"),
        ('redis_url = "redis://127.0.0.1:6379"\nprefix = "a b"', "cluster.prefix: .*is not a prefix"),
        ("hosts = 2", "cluster.hosts: unknown key"),
    ],
)
def test_bad_cluster_settings_name_the_key(workspace: Path, table: str, message: str) -> None:
    (workspace / "plughost.toml").write_text(f"[cluster]\n{table}\n")
    with pytest.raises(ConfigError, match=rf"plughost\.toml: {message}"):
        Host(workspace)
    (workspace / "plughost.toml").write_text("[cluster]\n")
    assert Host(workspace).manager.backend.name == "memory"  # no URL: in memory


def test_missing_redis_py_says_what_to_install(workspace: Path) -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"  # redis-py not installed
        "from plughost import Host\n"
        f"Host({str(workspace)!r}, cluster_url='redis://127.0.0.1:6379/0')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("plughost.errors.ConfigError: the Redis backend for redis://127.0.0.1:6379/0 needs "
                           "redis-py, which is not installed"), result.stderr  # fmt: skip
    assert "pip install 'plughost[cluster]'" in last
