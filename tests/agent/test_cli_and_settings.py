"""`plughost agent …`, the `[agent]` table, the conversation store and answer splitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plughost.agent import AgentSettings, MemoryConversations, split_text
from plughost.core.config import HostConfig
from plughost.errors import ConfigError
from plughost.host import Host
from tests.agent.support import CALCULATOR, answer, model_server, scripted, tool_calls
from tests.agent.test_prompt import execute_plugin
from tests.conftest import PluginWriter
from tests.test_cli import cli_env, plughost


def test_agent_table_is_validated(workspace: Path) -> None:
    (workspace / "plughost.toml").write_text(
        '[agent]\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\n[agent.chat]\nmax_reply_chars = 200\n',
        encoding="utf-8",
    )
    settings = AgentSettings.from_host_config(HostConfig.load(workspace))
    assert (settings.chat_active, settings.chat.max_reply_chars, settings.max_steps) == (True, 200, 8)
    assert not AgentSettings.from_host_config(HostConfig()).chat_active

    (workspace / "plughost.toml").write_text("[agent]\nmodell = 'typo'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"plughost.toml: agent.modell: unknown key"):
        AgentSettings.from_host_config(HostConfig.load(workspace))
    (workspace / "plughost.toml").write_text("[agent]\nbase_url = 'ftp://x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="base_url must start with http"):
        AgentSettings.from_host_config(HostConfig.load(workspace))


async def test_conversations_are_bounded() -> None:
    store = MemoryConversations(max_messages=3, max_conversations=2)
    await store.append("a", [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"}])
    await store.append("a", [{"role": "user", "content": "3"}, {"role": "assistant", "content": "4"}])
    assert [m["content"] for m in await store.history("a")] == ["3", "4"]  # never starts with an answer
    await store.append("b", [{"role": "user", "content": "x"}])
    await store.history("a")  # a is now the most recently used
    await store.append("c", [{"role": "user", "content": "y"}])
    assert (len(store), await store.history("b")) == (2, [])
    await store.forget("a")
    assert await store.history("a") == []


def test_split_text() -> None:
    assert split_text("short", 10) == ["short"]
    assert split_text("one two three four", 9) == ["one two", "three", "four"]
    assert split_text("first paragraph.\n\nsecond one", 20) == ["first paragraph.", "second one"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("a b c", 3) == ["a b", "c"]
    cut = split_text("aaaa bbbb cccc dddd eeee ffff gggg", 14, max_parts=2)
    assert cut == ["aaaa bbbb cccc", "dddd … (cut)"]


def test_cli_lists_tools_and_prints_the_prompt_block(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("calculator", CALCULATOR)
    write_plugin("weather", execute_plugin('return {"temperature": 25}'))
    openai = plughost("agent", "tools", "-w", str(workspace), "--format", "openai")
    assert openai.returncode == 0, openai.stderr
    assert [t["function"]["name"] for t in json.loads(openai.stdout)] == ["calculator__add", "calculator__boom"]
    table = plughost("agent", "tools", "-w", str(workspace))
    assert "tool:calculator.add" in table.stdout
    block = plughost("agent", "prompt", "-w", str(workspace))
    assert block.returncode == 0, block.stderr
    assert block.stdout.startswith("=== Plugin Execution Results ===\n\n[weather]\nStatus: Success\n")


async def test_cli_asks_the_configured_model(workspace: Path, write_plugin: PluginWriter) -> None:
    import asyncio

    write_plugin("calculator", CALCULATOR)
    script = scripted(tool_calls(("calculator__add", {"a": 2, "b": 3})), answer("2 + 3 = 5"))
    async with model_server(script) as server:
        (workspace / "plughost.toml").write_text(f'[agent]\nbase_url = "{server.url}"\nmodel = "m"\n', encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            *_plughost_argv(), "agent", "ask", "what is 2+3?", "-w", str(workspace), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert (result["answer"], result["stop_reason"], result["steps"]) == ("2 + 3 = 5", "answer", 2)
    assert result["tool_calls"][0]["result"] == {"tool": "calculator__add", "ok": True, "value": 5.0}


def _plughost_argv() -> list[str]:
    from tests.test_cli import PLUGHOST

    return list(PLUGHOST)


def test_agent_objects_construct_without_an_event_loop(workspace: Path) -> None:
    """Construction does no I/O and needs no loop (built on a thread that has none)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from plughost.agent import Agent, AgentChat, OpenAICompatible, Toolbox, ToolCatalog
    from plughost.agent.mcp_server import McpHttpApp, McpService
    from plughost.sdk.tasks import TaskOwner

    def build() -> list[object]:
        with pytest.raises(RuntimeError):
            asyncio.get_event_loop()
        host = Host(workspace)
        toolbox = Toolbox(host.manager)
        service = McpService(host.manager, toolbox, TaskOwner("mcp"))
        return [
            AgentChat(host),
            Agent(host.manager, model=OpenAICompatible("http://127.0.0.1:1/v1", "m"), toolbox=toolbox),
            ToolCatalog(host.manager),
            McpHttpApp(lambda tasks: service, TaskOwner("mcp http")),
            MemoryConversations(),
        ]

    with ThreadPoolExecutor(1) as pool:
        built = pool.submit(build).result(timeout=60)
    assert len(built) == 5


async def test_plughost_run_sends_ask_to_the_configured_model(workspace: Path, write_plugin: PluginWriter) -> None:
    import asyncio

    write_plugin("calculator", CALCULATOR)
    script = scripted(tool_calls(("calculator__add", {"a": 2, "b": 3})), answer("it is 5"))
    async with model_server(script) as server:
        (workspace / "plughost.toml").write_text(f'[agent]\nbase_url = "{server.url}"\nmodel = "m"\n', encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            *_plughost_argv(), "run", "--no-manage", "-w", str(workspace),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"/ask what is 2+3?\n")
        await process.stdin.drain()
        seen: list[str] = []
        while not any("it is 5" in line for line in seen):
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"plughost run ended without the answer: {seen}"
            seen.append(line.decode())
        process.stdin.write(b"/stop\n")
        await process.stdin.drain()
        await asyncio.wait_for(process.wait(), 60)
    assert server.requests[-1]["messages"][-1]["role"] == "tool"  # the tool's result went back to the model
