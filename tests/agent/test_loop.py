"""The agent loop against a real chat-completions server on 127.0.0.1 that scripts tool calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plughost.agent import Agent, AgentSettings, OpenAICompatible
from plughost.host import Host
from tests.agent.support import (
    CALCULATOR,
    HANG,
    HANG_MANIFEST,
    MEET,
    Raw,
    answer,
    messages_of,
    model_server,
    scripted,
    tool_calls,
    tool_names,
)
from tests.agent.test_prompt import execute_plugin
from tests.conftest import PluginWriter


@pytest.fixture
async def host(workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[Host]:
    write_plugin("calculator", CALCULATOR)
    write_plugin("meeting", MEET)
    write_plugin("slow", HANG, manifest_extra=HANG_MANIFEST)
    write_plugin("weather", execute_plugin('return {"temperature": 25}'))
    write_plugin("broken", execute_plugin('raise RuntimeError("no forecast today")'))
    async with Host(workspace) as running:
        yield running


async def test_tool_calls_run_concurrently_and_results_go_back(host: Host) -> None:
    script = scripted(
        tool_calls(
            ("meeting__meet", {"name": "ann"}),
            ("meeting__meet", {"name": "bob"}),
            ("calculator__add", {"a": 2, "b": 3}),
        ),
        answer("ann and bob met; 2 + 3 = 5"),
    )
    async with model_server(script) as server, Agent(host.manager, model=OpenAICompatible(server.url, "m")) as agent:
        run = await agent.run("meet and add")
    assert (run.ok, run.answer, run.steps) == (True, "ann and bob met; 2 + 3 = 5", 2)
    # meet only returns when both calls have arrived: run one after the other, they would time out
    assert [(c.name, c.result.ok, c.result.value) for c in run.tool_calls] == [
        ("meeting__meet", True, "met ann"),
        ("meeting__meet", True, "met bob"),
        ("calculator__add", True, 5.0),
    ]
    first, second = server.requests
    assert set(tool_names(first)) == {"calculator__add", "calculator__boom", "meeting__meet", "slow__hang"}
    assert messages_of(first, "user") == [{"role": "user", "content": "meet and add"}]
    asked = messages_of(second, "assistant")[0]["tool_calls"]
    results = messages_of(second, "tool")
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in asked]  # every call answered, in order
    assert [r["content"] for r in results] == ["met ann", "met bob", "5.0"]


async def test_failing_tools_are_results_the_model_reads(host: Host) -> None:
    script = scripted(
        tool_calls(
            ("calculator__add", {"a": "two"}),  # violates the schema
            ("calculator__boom", {}),  # raises
            ("slow__hang", {}),  # times out
            ("no_such_tool", {}),
            ("calculator__add", "{broken json"),
        ),
        answer("everything failed"),
    )
    async with model_server(script) as server, Agent(host.manager, model=OpenAICompatible(server.url, "m")) as agent:
        run = await agent.run("try everything")
    assert run.ok
    assert [c.result.code for c in run.tool_calls] == [
        "invalid_arguments",
        "plugin_error",
        "timed_out",
        "unknown_tool",
        "invalid_arguments",
    ]
    contents = [m["content"] for m in messages_of(server.requests[1], "tool")]
    assert all(c.startswith("error (") for c in contents)


async def test_a_model_that_asks_for_100_tool_calls_stops_at_the_step_limit(host: Host) -> None:
    hundred = tool_calls(*[("calculator__add", {"a": i, "b": 1}) for i in range(100)])
    async with model_server(scripted(hundred)) as server:
        model = OpenAICompatible(server.url, "m")
        async with Agent(host.manager, model=model, max_steps=3, max_tool_calls_per_step=10) as agent:
            run = await agent.run("count")
    assert (run.ok, run.stop_reason, run.steps) == (False, "step_limit", 3)
    assert len(server.requests) == 3
    assert len(run.tool_calls) == 300  # every call gets a result: 10 made, 90 refused, per step
    made = [c for c in run.tool_calls if c.result.ok]
    assert len(made) == 30
    refused = [c for c in run.tool_calls if c.result.code == "too_many_tool_calls"]
    assert len(refused) == 270
    assert len(messages_of(server.requests[1], "tool")) == 100
    assert "stopped after 3 steps" in run.answer


@pytest.mark.parametrize(
    "reply", [Raw(200, b"<html>not json</html>", "text/html"), Raw(500, b"internal error"), Raw(200, b"{}")]
)
async def test_a_broken_model_endpoint_ends_the_run_without_raising(host: Host, reply: Raw) -> None:
    async with (
        model_server(scripted(reply)) as server,
        Agent(host.manager, model=OpenAICompatible(server.url, "m")) as agent,
    ):
        run = await agent.run("hello")
    assert (run.ok, run.stop_reason, run.steps) == (False, "model_error", 1)
    assert run.error
    assert run.answer.startswith("The model failed: ")


async def test_plugin_results_in_the_system_prompt_and_a_failing_plugin(host: Host) -> None:
    async with model_server(scripted(answer("sunny"))) as server:
        settings = AgentSettings.model_validate(
            {"base_url": server.url, "model": "m", "system_prompt": "Be brief.", "prompt": {"plugin_results": True}}
        )
        async with Agent.from_settings(host.manager, settings) as agent:
            run = await agent.run("weather?")
    assert run.ok
    system = messages_of(server.requests[0], "system")[0]["content"]
    assert system.startswith("Be brief.\n\n=== Plugin Execution Results ===\n\n[weather]\nStatus: Success\n")
    assert 'Result: {"temperature": 25}' in system
    assert "broken" not in system  # its failure is left out and did not fail the run


async def test_history_goes_before_the_question(host: Host) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "my name is ann"},
        {"role": "assistant", "content": "hello ann"},
    ]
    async with (
        model_server(scripted(answer("ann"))) as server,
        Agent(host.manager, model=OpenAICompatible(server.url, "m"), system_prompt="") as agent,
    ):
        await agent.run("what is my name?", history=history)
    assert server.requests[0]["messages"] == [*history, {"role": "user", "content": "what is my name?"}]
    assert json.dumps(server.requests[0])  # plain JSON went over the wire
