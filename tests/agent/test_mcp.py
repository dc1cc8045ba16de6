"""The MCP server, tested with the `mcp` SDK's own client over stdio and streamable HTTP (both
protocol eras), and with a client nobody here wrote: the MCP Inspector's CLI mode."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import ResourcesListChanged, ToolsListChanged

from plughost.agent import Toolbox
from plughost.agent.mcp_server import McpService
from plughost.host import Host
from tests.agent.support import CALCULATOR, HeaderProxy, serving
from tests.conftest import PluginWriter, require_tool
from tests.manage.support import Running, serve
from tests.test_cli import cli_env

WEB = """
from plughost.sdk import HttpResponse, Plugin

plugin = Plugin()


@plugin.http_resource("/status", menu="Web status")
def status() -> HttpResponse:
    return HttpResponse.html("<p>all good</p>")


@plugin.http_resource("/logo.png")
def logo() -> bytes:
    return b"\\x89PNG not really"
"""

NOISY = """
from plughost.sdk import Plugin

print("a plugin printing to stdout while it loads")
plugin = Plugin()


@plugin.method("shout")
def shout(text: str) -> str:
    \"\"\"Prints, then answers.\"\"\"
    print("SHOUTING", text)
    return text.upper()
"""

README = "# Calculator\n\nAdds numbers for agents.\n"
WAIT_S = 20


@pytest.fixture
def mcp_workspace(workspace: Path, write_plugin: PluginWriter) -> Path:
    calculator = write_plugin("calculator", CALCULATOR)
    (calculator / "README.md").write_text(README, encoding="utf-8")
    write_plugin("web", WEB)
    write_plugin("noisy", NOISY)
    return workspace


def text_of(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def check_tools_and_resources(client: Client) -> None:
    """What every client sees, whatever the transport and protocol era."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"calculator__add", "calculator__boom", "noisy__shout"}
    assert tools["calculator__add"].description == "Add two numbers."
    assert tools["calculator__add"].input_schema["required"] == ["a", "b"]

    added = await client.call_tool("calculator__add", {"a": 2, "b": 3})
    assert (added.is_error, text_of(added)) == (False, "5.0")
    assert (await client.call_tool("noisy__shout", {"text": "hi"})).content[0] == types.TextContent(text="HI")
    bad = await client.call_tool("calculator__add", {"a": "two"})
    assert bad.is_error and text_of(bad).startswith("error (invalid_arguments): ")
    unknown = await client.call_tool("nope", {})
    assert unknown.is_error and "unknown_tool" in text_of(unknown)
    raised = await client.call_tool("calculator__boom", {})
    assert raised.is_error and "boom on purpose" in text_of(raised)

    uris = {r.uri for r in (await client.list_resources()).resources}
    assert {
        "plughost://plugins/calculator/manifest",
        "plughost://plugins/calculator/docs",
        "plughost://plugins/web/resources/status",
        "plughost://plugins/web/resources/logo.png",
    } <= uris
    manifest = (await client.read_resource("plughost://plugins/calculator/manifest")).contents[0]
    assert isinstance(manifest, types.TextResourceContents)
    assert json.loads(manifest.text)["id"] == "calculator"
    docs = (await client.read_resource("plughost://plugins/calculator/docs")).contents[0]
    assert isinstance(docs, types.TextResourceContents)
    assert "### calculator__add" in docs.text and "Adds numbers for agents." in docs.text
    page = (await client.read_resource("plughost://plugins/web/resources/status")).contents[0]
    assert isinstance(page, types.TextResourceContents)
    assert (page.text, page.mime_type) == ("<p>all good</p>", "text/html")
    logo = (await client.read_resource("plughost://plugins/web/resources/logo.png")).contents[0]
    assert isinstance(logo, types.BlobResourceContents)


# in process: list-changed notifications in both protocol eras ------------------------------------------
@pytest.fixture
async def service(mcp_workspace: Path) -> AsyncIterator[McpService]:
    async with Host(mcp_workspace) as host:
        mcp = McpService(host.manager, Toolbox(host.manager, surface="mcp"), host.tasks.child("mcp"), owns_toolbox=True)
        yield mcp
        mcp.close()


async def test_handshake_era_clients_hear_of_changes(service: McpService) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification | types.ResourceListChangedNotification):
            heard.put_nowait(message.method)

    async with Client(service.server, mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.tools is not None and client.server_capabilities.tools.list_changed
        await check_tools_and_resources(client)
        await service.manager.disable_plugin("calculator")
        changes = {await asyncio.wait_for(heard.get(), WAIT_S), await asyncio.wait_for(heard.get(), WAIT_S)}
        assert changes == {"notifications/tools/list_changed", "notifications/resources/list_changed"}
        assert {t.name for t in (await client.list_tools()).tools} == {"noisy__shout"}
        await service.manager.enable_plugin("calculator")
        assert await asyncio.wait_for(heard.get(), WAIT_S) == "notifications/tools/list_changed"


async def test_2026_clients_listen_for_changes(service: McpService) -> None:
    async with Client(service.server) as client:
        assert client.protocol_version == "2026-07-28"
        await check_tools_and_resources(client)
        async with client.listen(tools_list_changed=True, resources_list_changed=True) as changes:
            await service.manager.unload_plugin("noisy")
            events: set[object] = set()
            async with asyncio.timeout(WAIT_S):
                async for event in changes:
                    events.add(type(event))
                    if events == {ToolsListChanged, ResourcesListChanged}:
                        break
        assert {t.name for t in (await client.list_tools()).tools} == {"calculator__add", "calculator__boom"}


# stdio: `plughost mcp` as a subprocess --------------------------------------------------------------------
def stdio_server(workspace: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "plughost", "mcp", "-w", str(workspace)], env=cli_env()
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_plughost_mcp_over_stdio(mcp_workspace: Path, mode: str) -> None:
    async with Client(stdio_server(mcp_workspace), mode=mode, read_timeout_seconds=60) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        assert client.server_info is not None and client.server_info.name == "plughost"
        await check_tools_and_resources(client)  # the noisy plugin's prints went to stderr, not the protocol


# streamable HTTP on the management port ---------------------------------------------------------------------
@pytest.fixture
async def running(mcp_workspace: Path) -> AsyncIterator[Running]:
    async with serve(mcp_workspace) as served:
        yield served


def http_client(running: Running, key: str | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {key or running.key}"}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_over_http_with_the_management_key(running: Running, mode: str) -> None:
    from mcp.client.streamable_http import streamable_http_client

    async with (
        http_client(running) as http,
        Client(streamable_http_client(f"{running.server.url}/mcp", http_client=http), mode=mode) as client,
    ):
        await check_tools_and_resources(client)
        if mode == "auto":
            async with client.listen(tools_list_changed=True) as changes:
                disabled = await running.client.post("/api/v1/plugins/noisy/disable")
                assert disabled.status_code == 200
                async with asyncio.timeout(WAIT_S):
                    assert isinstance(await anext(aiter(changes)), ToolsListChanged)
            assert "noisy__shout" not in {t.name for t in (await client.list_tools()).tools}


async def test_mcp_over_http_needs_the_key(running: Running) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with http_client(running, key="wrong-key-wrong-key") as http:
        for headers in ({"Authorization": ""}, {}):
            answer = await http.post(f"{running.server.url}/mcp", json=body, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
    assert "/mcp" not in (await running.client.get("/openapi.json")).json()["paths"]


async def test_no_mcp_when_switched_off(mcp_workspace: Path) -> None:
    (mcp_workspace / "plughost.toml").write_text("[agent.mcp]\nhttp = false\n", encoding="utf-8")
    async with serve(mcp_workspace) as served:
        answer = await served.client.post("/mcp", json={})
        assert answer.status_code in (404, 405)


# `plughost mcp` beside a running host: relayed to its /mcp ------------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_plughost_mcp_beside_a_running_host_relays_to_it(running: Running, mode: str) -> None:
    """The agent gets the running host's plugins, not a second copy: what it does shows in that host."""
    async with Client(stdio_server(running.workspace), mode=mode, read_timeout_seconds=60) as client:
        assert client.protocol_version == "2025-11-25"  # relayed sessions use the handshake era (docs/agent.md)
        await check_tools_and_resources(client)
        assert running.host.manager.guard.metrics("calculator")["add"].calls == 1  # called in the running host
        assert (await running.client.post("/api/v1/plugins/noisy/disable")).status_code == 200
        assert "noisy__shout" not in {t.name for t in (await client.list_tools()).tools}


async def plughost_mcp(workspace: Path, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    """Run `plughost mcp` with `stdin`; its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plughost", "mcp", "-w", str(workspace), *args, env=cli_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(stdin), 120)
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace")


async def test_plughost_mcp_with_a_wrong_key_says_so_and_relays_nothing(running: Running) -> None:
    code, err = await plughost_mcp(running.workspace, "--key", "wrong-key-wrong-key")
    assert code != 0 and "401" in err and "key" in err, err
    assert "relaying" not in err and "Traceback" not in err


async def test_plughost_mcp_beside_a_host_without_mcp_says_so(mcp_workspace: Path) -> None:
    (mcp_workspace / "plughost.toml").write_text("[agent.mcp]\nhttp = false\n", encoding="utf-8")
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }  # fmt: skip
    async with serve(mcp_workspace):
        code, err = await plughost_mcp(mcp_workspace, stdin=(json.dumps(initialize) + "\n").encode())
    assert code != 0, err
    assert "serves no MCP" in err and "[agent.mcp] http = false" in err and "Traceback" not in err, err


async def test_plughost_mcp_local_loads_its_own_copy_beside_a_running_host(running: Running) -> None:
    async with Client(StdioServerParameters(
        command=sys.executable, args=["-m", "plughost", "mcp", "--local", "-w", str(running.workspace)], env=cli_env()
    ), read_timeout_seconds=60) as client:  # fmt: skip
        added = await client.call_tool("calculator__add", {"a": 2, "b": 3})
        assert text_of(added) == "5.0"
    assert "add" not in running.host.manager.guard.metrics("calculator"), "the running host was not called"


# a client nobody here wrote: the MCP Inspector (npm install -g @modelcontextprotocol/inspector) ----------------
async def inspector(*args: str) -> Any:
    """Run the MCP Inspector's CLI mode and return the JSON it prints."""
    binary = require_tool("mcp-inspector", "the MCP Inspector (npm install -g @modelcontextprotocol/inspector)")
    process = await asyncio.create_subprocess_exec(
        binary, "--cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env()
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")
    return json.loads(out)


async def test_the_inspector_over_stdio(mcp_workspace: Path) -> None:
    server = [sys.executable, "-m", "plughost", "mcp", "-w", str(mcp_workspace)]
    listed = await inspector(*server, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == {"calculator__add", "calculator__boom", "noisy__shout"}
    added = await inspector(
        *server, "--method", "tools/call", "--tool-name", "calculator__add", "--tool-arg", "a=2", "b=3"
    )
    assert added == {"content": [{"type": "text", "text": "5.0"}], "isError": False}
    failed = await inspector(*server, "--method", "tools/call", "--tool-name", "calculator__add", "--tool-arg", "a=x")
    assert failed["isError"] is True
    resources = await inspector(*server, "--method", "resources/list")
    assert "plughost://plugins/web/resources/status" in {r["uri"] for r in resources["resources"]}


async def test_the_inspector_through_the_relay(running: Running) -> None:
    """`plughost mcp` beside a running host, driven by a client nobody here wrote."""
    server = [sys.executable, "-m", "plughost", "mcp", "-w", str(running.workspace)]
    added = await inspector(
        *server, "--method", "tools/call", "--tool-name", "calculator__add", "--tool-arg", "a=2", "b=3"
    )
    assert added == {"content": [{"type": "text", "text": "5.0"}], "isError": False}
    assert running.host.manager.guard.metrics("calculator")["add"].calls == 1  # in the running host


async def test_the_inspector_over_http(running: Running) -> None:
    # the Inspector's CLI cannot send headers in every version: a proxy adds the management key
    proxy = HeaderProxy(running.server.url, {"Authorization": f"Bearer {running.key}"})
    async with serving(proxy) as url:
        listed = await inspector(f"{url}/mcp", "--method", "tools/list")
        added = await inspector(
            f"{url}/mcp", "--method", "tools/call", "--tool-name", "calculator__add", "--tool-arg", "a=2", "b=3"
        )
        page = await inspector(
            f"{url}/mcp", "--method", "resources/read", "--uri", "plughost://plugins/web/resources/status"
        )
    await proxy.client.aclose()
    assert "calculator__add" in {t["name"] for t in listed["tools"]}
    assert added["content"] == [{"type": "text", "text": "5.0"}]
    assert page["contents"][0]["text"] == "<p>all good</p>"
