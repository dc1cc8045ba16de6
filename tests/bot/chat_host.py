"""A real `Host` with a real OneBot connection (reverse WebSocket) and plugins written to disk,
plus `ManualClock`, an injectable clock that moves only when a test says so."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import textwrap
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.scheduler import Clock
from plughost.host import Host

from .onebot_impl import OneBotImpl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_plugin(workspace: Path, plugin_id: str, source: str, manifest: str = "") -> Path:
    plugin_dir = workspace / "plugins" / plugin_id
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{manifest}')
    (plugin_dir / "__init__.py").write_text(textwrap.dedent(source))
    return plugin_dir


@contextlib.asynccontextmanager
async def chat_host(
    workspace: Path, plugins: Mapping[str, str], *, toml: str = "", clock: Clock | None = None, connect: bool = True
) -> AsyncIterator[tuple[Host, OneBotImpl]]:
    """Start a host serving `plugins` ({id: source}) and connect a OneBot implementation (bot id 10001)."""
    port = free_port()
    (workspace / "plughost.toml").write_text(
        f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\n{toml}'
    )
    for plugin_id, source in plugins.items():
        write_plugin(workspace, plugin_id, source)
    impl = OneBotImpl()
    host = Host(workspace, hot_reload=False)
    if clock is not None:
        host.scheduler.clock = clock
    try:
        async with host, OneBotAdapter(host.bot_settings.bots, host.dispatcher):
            if connect:
                await impl.connect_reverse(f"ws://127.0.0.1:{port}/onebot/v11/ws")
                async with asyncio.timeout(5):
                    lane = await host.dispatcher.wait_for_bot("qq")
                    await lane.wait_finished(1)  # the connection's lifecycle event
            yield host, impl
    finally:
        await impl.close()


class ManualClock:
    """A clock for the scheduler that moves only on `advance`/`set` (sleepers wake when their time came)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> dt.datetime:
        return self._now

    async def sleep_until(self, when: dt.datetime) -> None:
        while self._now < when:
            moved = self._moved
            await moved.wait()

    def set(self, moment: dt.datetime) -> None:
        self._now = moment
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def advance(self, delta: dt.timedelta) -> None:
        self.set(self._now + delta)
