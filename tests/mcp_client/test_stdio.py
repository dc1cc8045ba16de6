"""A stdio MCP server (the SDK's MCPServer) as a plugin: tools as methods, results as outcomes,
tool list changes, environment and working directory, restarts, and nothing left behind (no
process, task or file descriptor)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from plughost.host import Host, PluginManager
from plughost.sdk.call import Call
from plughost.sdk.models import EventType, PluginState
from tests.mcp_client.support import (
    child_pids,
    demo_command,
    fast_workspace,
    gone,
    listen,
    loaded_handle,
    open_files,
    value,
    write_mcp_plugin,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = fast_workspace(tmp_path)
    write_mcp_plugin(root, "demo", command=demo_command())
    return root


async def test_tools_become_methods_with_their_schemas(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        assert await manager.discover_and_load_all() == 1
        instance = manager.get_plugin("demo")
        assert instance is not None and instance.state is PluginState.ENABLED, instance and instance.error
        descriptor = instance.descriptor
        assert descriptor is not None
        add = descriptor.method("add")
        assert add is not None and add.description == "Add two whole numbers."
        assert add.input_schema["required"] == ["a", "b"]
        assert add.input_schema["properties"]["a"]["type"] == "integer"
        assert {"add", "shout", "picture", "fail", "die", "grow"} <= {m.name for m in descriptor.methods}
        assert {"mcp", "methods"} <= descriptor.capabilities
        assert descriptor.metadata["mcp"]["server"] == {"name": "demo", "version": "1.2.3"}
        assert descriptor.metadata["mcp"]["transport"] == "stdio"
        assert "add" in instance.summary()["methods"]
        info = instance.handle.info()  # type: ignore[union-attr]
        assert info["status"] == "running" and info["server"]["name"] == "demo" and not gone(info["pid"])
        assert (await instance.handle.health()).status == "ok"  # type: ignore[union-attr]


async def test_results_map_to_outcomes(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        # structured content is the value
        assert value(await manager.execute("demo", "add", {"a": 2, "b": 3})) == {"total": 5}
        # one text block: its text
        assert value(await manager.execute("demo", "shout", {"text": "hi"})) == "HI"
        # several blocks (an image among them): the blocks as MCP sends them
        caption, image = value(await manager.execute("demo", "picture"))
        assert caption == {"type": "text", "text": "a tiny picture"}
        assert image["type"] == "image" and image["mimeType"] == "image/png" and image["data"].startswith("iVBOR")
        # isError: a plugin error with the tool's message, the blocks in the detail
        outcome = await manager.call("demo", Call("fail", {"message": "the disk is full"}))
        assert outcome.error is not None
        assert (outcome.error.code, outcome.error.type) == ("plugin_error", "McpToolError")
        text = "Error executing tool fail: the disk is full"  # the SDK's wording of a ToolError
        assert outcome.error.message == text
        assert outcome.error.detail["content"] == [{"type": "text", "text": text}]


async def test_unknown_tools_and_bad_arguments_never_reach_the_server(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        outcome = await manager.call("demo", Call("nope", {}))
        assert outcome.error is not None and outcome.error.code == "unknown_handler"
        assert "has no tool 'nope'" in outcome.error.message and "add, " in outcome.error.message

        # the schema says integers: checked here (the server would answer a plugin error)
        outcome = await manager.call("demo", Call("add", {"a": "two", "b": 3}))
        assert outcome.error is not None and outcome.error.code == "invalid_request"
        assert "input schema" in outcome.error.message and "a: 'two' is not of type 'integer'" in outcome.error.message
        assert outcome.error.detail["errors"] == [{"path": "a", "message": "'two' is not of type 'integer'"}]
        outcome = await manager.call("demo", Call("add", {"a": 1}))
        assert outcome.error is not None and outcome.error.code == "invalid_request"
        assert "'b' is a required property" in outcome.error.message
        outcome = await manager.call("demo", Call("add", [1, 2]))
        assert outcome.error is not None and outcome.error.code == "invalid_request"
        assert "must be a JSON object" in outcome.error.message
        outcome = await manager.call("demo", Call("add", {"a": 1, "b": 2}, kind="command"))
        assert outcome.error is not None and outcome.error.code == "unknown_handler"
        # the caller's mistakes do not count against the plugin
        assert manager.guard.breaker("demo").consecutive_failures == 0
        assert value(await manager.execute("demo", "add", {"a": 1, "b": 2})) == {"total": 3}


async def test_a_tool_list_change_updates_the_descriptor(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        events = listen(manager, "demo")
        assert manager.get_plugin("demo").descriptor.method("fresh") is None  # type: ignore[union-attr]
        assert value(await manager.execute("demo", "grow", {"name": "fresh"})) == "grown"
        changed = await events.wait_for("tools_changed")
        assert "fresh" in changed.tools
        descriptor = manager.get_plugin("demo").descriptor  # type: ignore[union-attr]
        assert descriptor is not None and descriptor.method("fresh") is not None
        assert descriptor.method("fresh").description == "added by grow('fresh')"  # type: ignore[union-attr]
        assert "fresh" in manager.get_plugin("demo").summary()["methods"]  # type: ignore[union-attr]
        assert value(await manager.execute("demo", "fresh")) == "fresh was added"


async def test_environment_and_working_directory(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_SECRET", "s3cret")
    monkeypatch.setenv("MCP_TEST_PASSED", "passed through")
    monkeypatch.setenv("MCP_TEST_HIDDEN", "not for plugins")
    plugin_dir = write_mcp_plugin(
        workspace,
        "demo",
        command=demo_command(),
        extra="""
[dependencies]
env = ["MCP_TEST_PASSED"]

[mcp]
cwd = "work"
env = { GREETING = "hello", TOKEN = "Bearer ${MCP_TEST_SECRET}" }
""",
    )
    (plugin_dir / "work").mkdir()
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()

        async def env(name: str) -> str:
            return str(value(await manager.execute("demo", "env", {"name": name})))

        assert await env("GREETING") == "hello"
        assert await env("TOKEN") == "Bearer s3cret"  # the secret came from the host's environment
        assert await env("MCP_TEST_PASSED") == "passed through"
        assert await env("MCP_TEST_HIDDEN") == "<unset>"  # nothing else of the host's environment
        assert await env("PATH") != "<unset>"
        assert value(await manager.execute("demo", "where")) == str((plugin_dir / "work").resolve())
        assert "s3cret" not in (plugin_dir / "plugin.toml").read_text()


async def test_a_missing_secret_is_a_load_error_that_names_it(workspace: Path) -> None:
    write_mcp_plugin(workspace, "demo", command=demo_command(), extra='[mcp]\nenv = { TOKEN = "${MCP_TEST_UNSET}" }\n')
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        instance = manager.get_plugin("demo")
        assert instance is not None and instance.state is PluginState.ERROR
        assert instance.error == "mcp.env.TOKEN refers to ${MCP_TEST_UNSET}, which is not set in the host's environment"


async def test_a_server_that_dies_mid_call_is_restarted_and_the_next_call_works(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        handle = loaded_handle(manager, "demo")
        events = listen(manager, "demo")
        recovered = asyncio.Event()
        manager.add_event_handler(lambda event: recovered.set(), [EventType.RECOVER])
        first_pid = int(value(await manager.execute("demo", "pid")))

        outcome = await manager.call("demo", Call("die", {"code": 3}))
        assert outcome.error is not None and outcome.error.code == "crashed" and outcome.error.retryable
        assert "exited during the call to 'die' (exit code 3); it is being restarted" in outcome.error.message
        assert "demo server: exiting with 3" in outcome.error.message  # the stderr tail
        crashed = await events.wait_for("crashed")
        assert crashed.exit_code == 3 and crashed.pid == first_pid
        assert "exiting with 3" in crashed.stderr_tail

        # the next call waits for the restart and works
        assert value(await manager.execute("demo", "add", {"a": 1, "b": 1})) == {"total": 2}
        await events.wait_for("restarted")
        assert gone(first_pid) and int(value(await manager.execute("demo", "pid"))) != first_pid
        assert handle.info()["restarts"] == 1 and handle.info()["last_exit_code"] == 3
        async with asyncio.timeout(10):
            await recovered.wait()  # the manager reported the restart
        errors = [e for e in manager.get_events("demo") if e.metadata.get("process_event") == "crashed"]
        assert errors and errors[0].event_type is EventType.ERROR


async def test_a_call_past_its_deadline_times_out_and_the_server_carries_on(workspace: Path) -> None:
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute("demo", "slow", {"seconds": 60}, timeout=0.5)
        assert not result.success and result.metadata["code"] == "timed_out", result
        assert value(await manager.execute("demo", "shout", {"text": "still here"})) == "STILL HERE"


async def test_unloading_leaves_no_process_or_task(workspace: Path) -> None:
    before_tasks, before_children = asyncio.all_tasks(), child_pids()
    async with PluginManager(workspace) as manager:
        files_before = open_files()
        await manager.discover_and_load_all()
        pid = int(value(await manager.execute("demo", "pid")))
        assert pid in child_pids()
        assert len(open_files() - files_before) >= 3  # its stdin, stdout and stderr pipes (at least)
        names = {t.get_name() for t in asyncio.all_tasks() - before_tasks}
        assert {"demo:session", "demo:supervisor", "demo:stdout", "demo:stderr"} <= names
        assert await manager.unload_plugin("demo")
        assert gone(pid)
        assert open_files() == files_before
        assert asyncio.all_tasks() - before_tasks == set()
    assert child_pids() == before_children


async def test_chat_commands_list_reload_disable_and_enable_it(workspace: Path) -> None:
    from plughost.bot.commands import CommandSender, ResultKind

    console = CommandSender.console()
    async with Host(workspace) as host:

        async def run(text: str) -> tuple[ResultKind, str]:
            result = await host.commands.execute_command(console, text)
            return result.kind, result.text

        kind, text = await run("/plugins")
        assert kind is ResultKind.SUCCESS and "demo 1.0.0 [enabled] mcp" in text, text
        old_pid = int(value(await host.manager.execute("demo", "pid")))
        assert (await run("/plugins reload demo"))[0] is ResultKind.SUCCESS
        assert gone(old_pid) and int(value(await host.manager.execute("demo", "pid"))) != old_pid
        assert await run("/plugins disable demo") == (ResultKind.SUCCESS, "plugin 'demo' disabled")
        result = await host.manager.execute("demo", "shout", {"text": "x"})
        assert not result.success and result.metadata["code"] == "unavailable"
        assert await run("/plugins enable demo") == (ResultKind.SUCCESS, "plugin 'demo' enabled")
        assert value(await host.manager.execute("demo", "shout", {"text": "x"})) == "X"


async def test_a_program_in_the_plugin_directory_with_limits(workspace: Path) -> None:
    plugin_dir = write_mcp_plugin(
        workspace,
        "demo",
        command=["bin/serve", "--quiet"],
        extra='isolation = "process"\n[limits]\nmemory_mb = 4096\ncpu_seconds = 600\n',
    )
    script = plugin_dir / "bin" / "serve"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{demo_command()[1]}"\n')
    script.chmod(0o755)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        handle = loaded_handle(manager, "demo")
        assert handle.info()["command"] == [str(script), "--quiet"]
        assert handle.info()["confined"] is False  # no permission is switched off: nothing to confine
        limits = Path(f"/proc/{handle.info()['pid']}/limits").read_text()
        assert re.search(r"Max address space\s+4294967296\s+4294967296", limits), limits
        assert re.search(r"Max cpu time\s+600\s", limits), limits


async def test_permissions_without_isolation_are_not_enforced_and_say_so(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_mcp_plugin(workspace, "demo", command=demo_command(), extra="[permissions]\nnetwork = false\n")
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        assert loaded_handle(manager, "demo").info()["confined"] is False
    assert "switches permissions off, but they are only enforced for MCP servers with" in caplog.text
