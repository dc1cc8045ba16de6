"""examples/agent/agent_loop.py against a scripted chat-completions server: the block in the system prompt, tools."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from tests.agent.support import answer, messages_of, model_server, scripted, tool_calls, tool_names
from tests.conftest import EXAMPLES
from tests.test_cli import cli_env

LOOP = EXAMPLES / "agent" / "agent_loop.py"


async def test_the_example_agent_loop(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(EXAMPLES, demo, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    script = scripted(tool_calls(("calculator__add", {"a": 17.5, "b": 24.5})), answer("17.5 + 24.5 = 42"))
    async with model_server(script) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(LOOP), "What is 17.5 + 24.5?", "--base-url", server.url, "--model", "m",
            "--no-key", "--workspace", str(demo),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "17.5 + 24.5 = 42"
    assert "→ calculator__add" in err.decode()
    first, second = server.requests
    system = messages_of(first, "system")[0]["content"]
    assert "=== Plugin Execution Results ===\n\n[greeter]\nStatus: Success\n" in system
    assert "calculator__add" in tool_names(first)
    assert messages_of(second, "tool")[0]["content"] == "42.0"
