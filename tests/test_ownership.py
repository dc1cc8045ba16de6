"""Structured concurrency: objects construct without a loop; stopping a plugin, or a host whose
start failed half way, leaves no task, thread, process or socket behind."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.errors import ConfigError
from plughost.host import Host, PluginManager
from plughost.runtime.invoke_lane import InvokeLaneClient
from plughost.sdk.handle import PluginHandle
from plughost.sdk.models import EventType, PluginEvent, PluginState
from plughost.sdk.tasks import TaskOwner

IN_PROCESS = """
import asyncio
from plughost import Plugin
plugin = Plugin()

@plugin.on_load
async def setup(ctx):
    ctx.spawn(asyncio.Event().wait(), name="local:ticker")

@plugin.method("hello")
def hello() -> str:   # a sync handler: it runs on one of the plugin's own threads
    return "hi"
"""

IN_A_WORKER = """
from plughost import Plugin
plugin = Plugin()

@plugin.method("hello")
async def hello() -> str:
    return "hi from the worker"
"""


def write_plugins(workspace: Path, extra_config: str = "") -> None:
    (workspace / "plughost.toml").write_text('[process]\nsocket_dir = "run"\n' + extra_config)
    for plugin_id, code, extra in (("local", IN_PROCESS, ""), ("isolated", IN_A_WORKER, 'isolation = "process"\n')):
        directory = workspace / "plugins" / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{extra}')
        (directory / "plugin.py").write_text(code)


class Loaded:
    """Records the handle (and the worker's pid) of every plugin as it loads."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self.handles: dict[str, PluginHandle] = {}
        self.pids: list[int] = []
        manager.add_event_handler(self, [EventType.LOAD])

    def __call__(self, event: PluginEvent) -> None:
        instance = self.manager.get_plugin(event.plugin_name)
        assert instance is not None and instance.handle is not None
        self.handles[event.plugin_name] = handle = instance.handle
        info = getattr(handle, "info", None)
        if callable(info):
            self.pids.append(info()["pid"])


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def plugin_threads(plugin_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"plugin-{plugin_id}")]


def test_main_objects_construct_without_an_event_loop(workspace: Path) -> None:
    """Construction does no network I/O and needs no loop: built on a thread that has none."""

    def build() -> list[Any]:
        with pytest.raises(RuntimeError):  # on this thread, any use of an event loop raises
            asyncio.get_event_loop()
        host = Host(workspace)
        manager = PluginManager(workspace)
        dispatcher = Dispatcher(manager)
        adapter = OneBotAdapter([BotConfig(id="qq", transport="ws-reverse", bind="127.0.0.1:0")], dispatcher)
        lane = InvokeLaneClient(str(workspace / "lane.sock"), "plugin", secret="s")
        return [host, manager, dispatcher, adapter, lane, TaskOwner("tasks")]

    with ThreadPoolExecutor(1) as pool:
        host, _manager, dispatcher, adapter, lane, _owner = pool.submit(build).result(timeout=60)
    assert lane.closed  # nothing connected yet
    assert list(host.tasks) == [] and dispatcher.lanes == {} and adapter.ports == {}


async def test_unloading_leaves_no_task_thread_process_or_socket(workspace: Path) -> None:
    write_plugins(workspace)
    before = asyncio.all_tasks()
    async with PluginManager(workspace) as manager:
        loaded = Loaded(manager)
        assert await manager.discover_and_load_all() == 2
        assert (await manager.execute("local", "hello")).result == "hi"
        assert (await manager.execute("isolated", "hello")).result == "hi from the worker"
        names = {t.get_name() for t in asyncio.all_tasks() - before}
        assert {"local:ticker", "isolated:supervisor"} <= names  # the invoke lane reads in its protocol: no task
        assert plugin_threads("local")
        assert {p.name[:4] for p in sockets(workspace)} == {"plug", "lane"}  # go-plugin + invoke lane
        (pid,) = loaded.pids

        assert await manager.unload_plugin("local")
        assert await manager.unload_plugin("isolated")

        assert asyncio.all_tasks() - before == set()
        assert plugin_threads("local") == []
        assert_gone(pid)
        assert sockets(workspace) == []


def sockets(workspace: Path) -> list[Path]:
    """The unix sockets in the host's socket directory (`run/<host pid>/`)."""
    return [p for p in (workspace / "run").rglob("*") if p.is_socket()]


async def test_host_start_failing_after_loading_stops_every_plugin(workspace: Path) -> None:
    """A bot whose port is taken fails `Host.start` after the plugins loaded: they are all stopped."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write_plugins(workspace, f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\n')
        before = asyncio.all_tasks()
        host = Host(workspace)
        host.add_adapter(OneBotAdapter(host.bot_settings.bots, host.dispatcher))
        loaded = Loaded(host.manager)
        with pytest.raises(ConfigError, match="cannot listen"):
            async with host:
                pytest.fail("the host must not run when its start failed")
    assert set(loaded.handles) == {"local", "isolated"}
    for handle in loaded.handles.values():
        assert (await handle.health()).status == "down"
    assert all(i.state is PluginState.UNLOADED and i.handle is None for i in host.manager.list_plugins())
    assert asyncio.all_tasks() - before == set()
    assert plugin_threads("local") == []
    (pid,) = loaded.pids
    assert_gone(pid)
    assert sockets(workspace) == []
    assert host.tasks.closed


class RecordingAdapter:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.task: asyncio.Task[Any] | None = None
        self.closed = False

    async def start(self, tasks: TaskOwner) -> None:
        if self.fail:
            raise RuntimeError("the adapter could not start")
        self.task = tasks.spawn(asyncio.Event().wait(), name="adapter:serve")

    async def aclose(self) -> None:
        self.closed = True


async def test_a_failing_adapter_stops_the_adapters_started_before_it(workspace: Path) -> None:
    (workspace / "plugins" / "local").mkdir(parents=True)
    (workspace / "plugins" / "local" / "plugin.toml").write_text('id = "local"\nversion = "1.0.0"\n')
    (workspace / "plugins" / "local" / "plugin.py").write_text(IN_PROCESS)
    host = Host(workspace)
    first, failing = host.add_adapter(RecordingAdapter()), host.add_adapter(RecordingAdapter(fail=True))
    with pytest.raises(RuntimeError, match="could not start"):
        await host.start()
    assert first.closed and failing.closed
    assert first.task is not None and first.task.cancelled()
    assert host.manager.get_plugin("local").state is PluginState.UNLOADED  # type: ignore[union-attr]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "local:ticker"]
