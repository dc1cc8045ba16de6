"""Bad input, each with a clear answer: manifests with both or neither of `command` and `url`, a
server that never finishes initialising, exits before it does, or writes malformed messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plughost.host import PluginManager
from plughost.sdk.call import Call
from plughost.sdk.models import DiscoveryStatus, PluginState
from tests.mcp_client.support import broken_command, child_pids, fast_workspace, write_mcp_plugin


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return fast_workspace(tmp_path)


async def load_error(workspace: Path, plugin_id: str) -> str:
    """Load the workspace; the plugin's load error (the plugin must have failed)."""
    before_tasks, before_children = asyncio.all_tasks(), child_pids()
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin(plugin_id)
        assert instance is not None and instance.state is PluginState.ERROR, instance
        assert instance.error is not None
        error = instance.error
    assert child_pids() == before_children  # a server that failed to start is not left running
    assert asyncio.all_tasks() - before_tasks == set()
    return error


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("", 'an MCP server needs `command = ["program", "arg", …]` (stdio) or `url = "http://…"`'),
        ('command = ["x"]\nurl = "http://127.0.0.1:1/mcp"\n', "give either `command`"),
        ("command = []\n", "`command` must name the program to start"),
        ('url = "ftp://example.com/mcp"\n', "`url` must be an http:// or https:// address"),
        ('url = "http://127.0.0.1:1/mcp"\nisolation = "sandbox"\n', 'isolation = "sandbox" applies to MCP servers'),
        ('url = "http://127.0.0.1:1/mcp"\n[mcp]\nenv = { A = "b" }\n', "`mcp.env` and `mcp.cwd` are for a server"),
        ('command = ["x"]\n[mcp]\nheaders = { A = "b" }\n', "`mcp.headers` are for a server at `url`"),
        ('command = ["x"]\n[mcp]\nenv = { A = "${not a name}" }\n', "does not name an environment variable"),
    ],
)
def test_manifests_need_exactly_one_of_command_and_url(workspace: Path, fields: str, message: str) -> None:
    directory = workspace / "plugins" / "bad"
    directory.mkdir()
    (directory / "plugin.toml").write_text(f'id = "bad"\nversion = "1.0.0"\nruntime = "mcp"\n{fields}')
    (candidate,) = [c for c in PluginManager(workspace).discover().all() if c.path == directory]
    assert candidate.status is DiscoveryStatus.INVALID
    assert message in "; ".join(str(issue) for issue in candidate.errors)
    assert str(directory / "plugin.toml") in str(candidate.errors[0])


def test_command_is_only_for_mcp_servers(workspace: Path) -> None:
    directory = workspace / "plugins" / "py"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "py"\nversion = "1.0.0"\ncommand = ["x"]\n')
    (directory / "plugin.py").write_text("")
    (candidate,) = [c for c in PluginManager(workspace).discover().all() if c.path == directory]
    assert candidate.status is DiscoveryStatus.INVALID
    assert '`command` is only for MCP servers (runtime = "mcp")' in str(candidate.errors[0])


async def test_a_program_that_is_not_there(workspace: Path) -> None:
    write_mcp_plugin(workspace, "missing", command=["mcp-server-that-does-not-exist", "--stdio"])
    error = await load_error(workspace, "missing")
    assert "command: 'mcp-server-that-does-not-exist' was not found on the server's PATH" in error


async def test_a_server_that_never_finishes_initialising_is_a_start_timeout(workspace: Path) -> None:
    write_mcp_plugin(workspace, "silent", command=broken_command("silent"), extra="start_timeout = 1000\n")
    error = await load_error(workspace, "silent")
    assert error.startswith("the MCP server did not finish initialising within 1 s (start_timeout); it was stopped")


async def test_a_server_that_exits_before_initialising(workspace: Path) -> None:
    write_mcp_plugin(workspace, "quitter", command=broken_command("exit"))
    error = await load_error(workspace, "quitter")
    assert error.startswith("the MCP server exited (exit code 4) before it finished initialising")
    assert "broken server: giving up before the handshake" in error  # its stderr tail


async def test_a_server_that_answers_initialize_with_garbage(workspace: Path) -> None:
    write_mcp_plugin(workspace, "chatty", command=broken_command("garbage-init"))
    error = await load_error(workspace, "chatty")
    assert error.startswith("the MCP server could not be initialised: the server wrote something that is not a")
    assert "'Server ready!'" in error and "MCP servers must write only JSON-RPC messages to stdout" in error


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage-call", "wrote something that is not a JSON-RPC message (not JSON) while this request was in flight"),
        ("bad-shape", "the server answered with a malformed message (neither a method, a result nor an error)"),
        ("bad-result", "answered tool 'echo' with a malformed result: content: Input should be a valid list"),
    ],
)
async def test_malformed_answers_fail_the_call_with_a_protocol_error(workspace: Path, mode: str, message: str) -> None:
    write_mcp_plugin(workspace, "broken", command=broken_command(mode))
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("broken")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        for _ in range(2):  # the session stays usable: the next call gets its own clear answer
            outcome = await manager.call("broken", Call("echo", {"text": "hi"}))
            assert outcome.error is not None and outcome.error.code == "protocol_error", outcome
            assert message in outcome.error.message
        assert (await instance.handle.health()).status == "ok"  # type: ignore[union-attr]
