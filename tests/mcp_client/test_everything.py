"""A real third-party MCP server: `@modelcontextprotocol/server-everything` (Node.js), installed
globally with npm (.ci/run does; nothing is downloaded while the tests run)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from plughost.host import PluginManager
from plughost.runtime.sandbox import landlock
from plughost.sdk.call import Call
from plughost.sdk.models import PluginState
from tests.conftest import in_ci, require_tool
from tests.mcp_client.support import (
    child_pids,
    fast_workspace,
    gone,
    listen,
    loaded_handle,
    value,
    write_mcp_plugin,
)

WHY = "the MCP client is tested against a real server (npm install -g @modelcontextprotocol/server-everything)"


@pytest.fixture
def everything(tmp_path: Path) -> Path:
    program = require_tool("mcp-server-everything", WHY)
    require_tool("node", WHY)
    workspace = fast_workspace(tmp_path)
    write_mcp_plugin(workspace, "everything", command=[program])
    return workspace


async def test_its_tools_are_methods_and_their_results_outcomes(everything: Path) -> None:
    async with PluginManager(everything) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("everything")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        descriptor = instance.descriptor
        assert descriptor is not None
        assert {"echo", "get-sum", "get-tiny-image", "get-structured-content"} <= {m.name for m in descriptor.methods}
        get_sum = descriptor.method("get-sum")
        assert get_sum is not None and get_sum.input_schema["properties"]["a"]["type"] == "number"
        assert descriptor.metadata["mcp"]["server"]["name"] == "mcp-servers/everything"

        assert value(await manager.execute("everything", "echo", {"message": "hi"})) == "Echo: hi"
        assert value(await manager.execute("everything", "get-sum", {"a": 1, "b": 2})) == "The sum of 1 and 2 is 3."
        weather = value(await manager.execute("everything", "get-structured-content", {"location": "Chicago"}))
        assert set(weather) == {"temperature", "conditions", "humidity"}
        blocks = value(await manager.execute("everything", "get-tiny-image"))
        images = [b for b in blocks if b["type"] == "image"]
        assert images and images[0]["mimeType"] == "image/png" and images[0]["data"]

        # its draft-07 schemas are checked before anything is sent
        outcome = await manager.call("everything", Call("get-sum", {"a": "one", "b": 2}))
        assert outcome.error is not None and outcome.error.code == "invalid_request"
        assert "'one' is not of type 'number'" in outcome.error.message
        outcome = await manager.call("everything", Call("get-structured-content", {"location": "Paris"}))
        assert outcome.error is not None and outcome.error.code == "invalid_request"
        assert "'Paris' is not one of" in outcome.error.message
        outcome = await manager.call("everything", Call("no-such-tool", {}))
        assert outcome.error is not None and outcome.error.code == "unknown_handler"


async def test_it_is_restarted_when_it_dies_and_leaves_nothing_when_unloaded(everything: Path) -> None:
    before_tasks, before_children = asyncio.all_tasks(), child_pids()
    async with PluginManager(everything) as manager:
        await manager.discover_and_load_all()
        handle = loaded_handle(manager, "everything")
        events = listen(manager, "everything")
        pid = handle.info()["pid"]
        os.kill(pid, signal.SIGKILL)
        crashed = await events.wait_for("crashed")
        assert crashed.exit_code == -signal.SIGKILL and crashed.pid == pid
        await events.wait_for("restarted")
        assert value(await manager.execute("everything", "echo", {"message": "again"})) == "Echo: again"
        new_pid = handle.info()["pid"]
        assert new_pid != pid and gone(pid)
        assert await manager.unload_plugin("everything")
        assert gone(new_pid)
    assert child_pids() == before_children
    assert asyncio.all_tasks() - before_tasks == set()


async def test_it_runs_in_the_sandbox(everything: Path) -> None:
    if landlock.abi_version() < 1:
        message = "this kernel has no Landlock (Linux ≥ 5.13 with Landlock enabled); the sandbox is untestable"
        (pytest.fail if in_ci() else pytest.skip)(message)
    manifest = everything / "plugins" / "everything" / "plugin.toml"
    # Debian's node reads /etc/ssl/openssl.cnf at start, which a sandbox without network hides
    manifest.write_text(
        manifest.read_text() + 'isolation = "sandbox"\n[mcp]\nenv = { OPENSSL_CONF = "/dev/null" }\n', encoding="utf-8"
    )
    async with PluginManager(everything) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("everything")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        assert loaded_handle(manager, "everything").info()["confined"] is True
        assert value(await manager.execute("everything", "echo", {"message": "jailed"})) == "Echo: jailed"
        environment = value(await manager.execute("everything", "get-env"))
        assert f'"HOME": "{everything / "data" / "everything"}"' in environment  # HOME moved into its data dir
        # it may not fetch anything: the tool reports the failure
        outcome = await manager.call("everything", Call("gzip-file-as-resource", {}))
        assert outcome.error is not None and outcome.error.type == "McpToolError", outcome
