"""Each configured bot's connection state (connected since, reconnect attempts, last error) with a
real OneBot peer that goes away and comes back: `/status`, the management API and `plughost status`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.commands import CommandSender
from plughost.bot.config import BotConfig
from plughost.bot.connection import BotConnection
from plughost.bot.dispatch import Dispatcher
from plughost.host import Host
from plughost.manage.server import ManageServer
from plughost.manage.settings import ManageSettings

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import OneBotImpl

TIMEOUT = 10


@pytest.fixture
async def impl() -> AsyncIterator[OneBotImpl]:
    implementation = OneBotImpl(token="s3cret")
    yield implementation
    await implementation.close()


async def test_a_forward_bot_shows_its_link_going_down_and_up_everywhere(impl: OneBotImpl, tmp_path: Path) -> None:
    port = await impl.serve_forward()
    endpoint = f"ws://127.0.0.1:{port}/"
    (tmp_path / "plughost.toml").write_text(
        f'[[bots]]\nid = "fw"\ntransport = "ws-forward"\nendpoint = "{endpoint}"\naccess_token = "s3cret"\n'
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.2\n"
    )
    host = Host(tmp_path)
    adapter = host.add_adapter(OneBotAdapter(host.bot_settings.bots, host.dispatcher))
    server = host.add_adapter(ManageServer(host, ManageSettings.model_validate({"bind": "127.0.0.1:0"})))
    async with host, asyncio.timeout(TIMEOUT):
        bot = adapter.forward["fw"]
        await bot.connected.wait()
        status = await console_status(host)
        assert f"bot fw: connected to {endpoint} since " in status and "reconnect" not in status
        link = host.dispatcher.connections["fw"].to_json()
        assert (link["state"], link["connections"], link["reconnect_attempts"], link["last_error"]) == (
            "connected", 1, 0, None,
        )  # fmt: skip

        await impl.stop_forward()  # the implementation goes away
        await bot.disconnected.wait()
        status = await console_status(host)
        assert f"bot fw: disconnected from {endpoint} since " in status
        assert "the implementation closed the connection (code 1001" in status  # a clean close: "going away"
        assert server.key is not None
        shown = await plughost_status(tmp_path)
        assert f"bot fw: disconnected from {endpoint}" in shown and "last error at " in shown

        await impl.serve_forward(port)  # and comes back: plughost reconnects by itself
        await bot.connected.wait()
        link = host.dispatcher.connections["fw"].to_json()
        assert (link["state"], link["connections"]) == ("connected", 2)
        assert link["reconnect_attempts"] >= 1 and link["last_error"] is not None  # the error stays visible
        api = await api_get(server, "/api/v1/bots")
        assert api["connections"] == [link]
        assert (await api_get(server, "/api/v1/status"))["bot_connections"] == [link]


async def test_a_reverse_bot_shows_who_connected_who_left_and_who_was_refused(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", access_token="s3cret")
    async with Dispatcher(plugins[0]) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        url = f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws"
        link = dispatcher.connections["rv"]
        assert (link.state, link.where) == ("listening", url)
        assert dispatcher.status_lines()[0].startswith(f"bot rv: listening on {url} since ")
        with pytest.raises(InvalidStatus, match="401"):
            await impl.connect_reverse(url, token="wrong")
        assert link.state == "listening" and link.last_error is not None
        assert link.last_error.startswith("refused a connection: bot 'rv': wrong or missing access token")
        ws = await impl.connect_reverse(url, token="s3cret")
        lane = await asyncio.wait_for(dispatcher.wait_for_bot("rv"), TIMEOUT)
        assert (link.state, link.connections, link.reconnect_attempts) == ("connected", 1, 0)
        assert dispatcher.status_lines()[0].startswith(f"bot rv: connected at {url} since ")
        assert lane.key == "rv"
        await ws.close(1000, "bye")  # the implementation leaves
        await wait_for_state(link, "disconnected")
        assert link.last_error == "the implementation closed the connection (code 1000, bye)"
        await impl.connect_reverse(url, token="s3cret")
        await wait_for_state(link, "connected")
        assert (link.connections, link.reconnect_attempts) == (2, 1)


async def wait_for_state(link: BotConnection, state: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while link.state != state:
            await link.changed()


async def console_status(host: Host) -> str:
    return (await host.commands.execute_command(CommandSender.console(), "/status")).text


async def api_get(server: ManageServer, path: str) -> dict[str, object]:
    import httpx

    assert server.key is not None
    headers = {"Authorization": f"Bearer {server.key.value}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=TIMEOUT) as client:
        response = await client.get(path)
        response.raise_for_status()
        data: dict[str, object] = response.json()
        return data


async def plughost_status(workspace: Path) -> str:
    """`plughost status` in its own process, asking the running host (non-blocking for this loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plughost", "status", "-w", str(workspace),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()
