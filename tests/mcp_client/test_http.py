"""An MCP server over streamable HTTP (the SDK's MCPServer on 127.0.0.1) as a plugin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plughost.host import PluginManager
from plughost.sdk.call import Call
from plughost.sdk.models import PluginState
from tests.mcp_client.support import (
    fast_workspace,
    http_server,
    listen,
    loaded_handle,
    socket_inodes,
    value,
    write_mcp_plugin,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return fast_workspace(tmp_path)


async def test_tools_over_streamable_http(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "t0ken")
    async with http_server() as (url, _server):
        headers = '[mcp]\nheaders = { Authorization = "Bearer ${MCP_TEST_TOKEN}", X-Client = "plughost tests" }\n'
        write_mcp_plugin(workspace, "web", url=url, extra=headers)
        sockets_before = socket_inodes()
        async with PluginManager(workspace) as manager:
            await manager.discover_and_load_all()
            instance = manager.get_plugin("web")
            assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
            descriptor = instance.descriptor
            assert descriptor is not None and descriptor.metadata["mcp"]["transport"] == "streamable-http"
            assert {"add", "shout", "grow"} <= {m.name for m in descriptor.methods}
            assert value(await manager.execute("web", "add", {"a": 20, "b": 22})) == {"total": 42}
            assert value(await manager.execute("web", "header", {"name": "Authorization"})) == "Bearer t0ken"
            assert value(await manager.execute("web", "header", {"name": "X-Client"})) == "plughost tests"
            outcome = await manager.call("web", Call("add", {"a": 1.5, "b": 1}))
            assert outcome.error is not None and outcome.error.code == "invalid_request"
            info = loaded_handle(manager, "web").info()
            assert info["url"] == url and "pid" not in info

            events = listen(manager, "web")  # list changes arrive over the session's event stream
            assert value(await manager.execute("web", "grow", {"name": "webby"})) == "grown"
            await events.wait_for("tools_changed")
            assert value(await manager.execute("web", "webby")) == "webby was added"

            assert await manager.unload_plugin("web")
            assert socket_inodes() == sockets_before  # the HTTP connections are closed


async def test_a_server_that_goes_away_is_reconnected_until_the_policy_gives_up(workspace: Path) -> None:
    async with http_server() as (url, server):
        write_mcp_plugin(workspace, "web", url=url)
        async with PluginManager(workspace) as manager:
            await manager.discover_and_load_all()
            events = listen(manager, "web")
            assert value(await manager.execute("web", "shout", {"text": "up"})) == "UP"
            server.kill()
            await server.wait()
            outcome = await manager.call("web", Call("shout", {"text": "down"}))
            assert outcome.error is not None and outcome.error.code in ("unavailable", "crashed"), outcome
            crashed = await events.wait_for("crashed")
            assert "lost its connection" in crashed.message
            gave_up = await events.wait_for("gave_up")  # three reconnections fail: nothing listens there
            assert "could not be initialised at " + url in gave_up.message
            assert events.kinds().count("restart_failed") == 3
            outcome = await manager.call("web", Call("shout", {"text": "still down"}))
            assert outcome.error is not None and outcome.error.code == "unavailable"
            assert (await loaded_handle(manager, "web").health()).status == "down"


async def test_nothing_listening_at_the_url_is_a_load_error(workspace: Path) -> None:
    async with http_server() as (url, server):  # a port that was just in use and now is not
        server.kill()
        await server.wait()
    write_mcp_plugin(workspace, "web", url=url, extra="start_timeout = 10000\n")
    before = asyncio.all_tasks()
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("web")
        assert instance is not None and instance.state is PluginState.ERROR
        assert instance.error is not None
        assert instance.error.startswith(f"the MCP server could not be initialised at {url}: "), instance.error
    assert asyncio.all_tasks() - before == set()
