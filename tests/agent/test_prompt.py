"""LurkBot's prompt injection: `plugin_results_for_prompt` runs every `execute()` plugin and formats the block."""

from __future__ import annotations

import re
from pathlib import Path

from plughost import PluginExecutionResult, PluginManager
from plughost.agent import format_plugin_results, plugin_results_for_prompt
from tests.conftest import PluginWriter


def execute_plugin(body: str) -> str:
    return f"""
from plughost.sdk import Plugin, PluginExecutionContext

plugin = Plugin()


@plugin.execute
async def run(context: PluginExecutionContext):
    {body}
"""


def write_plugins(write_plugin: PluginWriter) -> None:
    write_plugin(
        "weather", execute_plugin('return {"temperature": 25, "condition": "sunny"}'), manifest_extra="priority = 10"
    )
    write_plugin(
        "database",
        execute_plugin('return {"user_count": 1234, "asked_by": context.user_id}'),
        manifest_extra="priority = 5",
    )
    write_plugin("broken", execute_plugin('raise RuntimeError("the database is down")'), manifest_extra="priority = 20")
    write_plugin("big", execute_plugin('return "x" * 5000'), manifest_extra="priority = 1")
    write_plugin(
        "tools-only",
        "from plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.method()\ndef f() -> int:\n    return 1\n",
    )


CUT = "… (truncated, 5002 characters)"  # the JSON text of "x" * 5000 is 5002 characters long


def normalised(block: str) -> str:
    return re.sub(r"Execution Time: \d+\.\d\ds", "Execution Time: T", block)


async def test_block_in_priority_order_with_failures_left_out(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugins(write_plugin)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        block = await plugin_results_for_prompt(manager, {"user_id": "42"}, result_max_chars=60)
    assert normalised(block) == (
        "=== Plugin Execution Results ===\n"
        "\n"
        "[weather]\n"
        "Status: Success\n"
        'Result: {"temperature": 25, "condition": "sunny"}\n'
        "Execution Time: T\n"
        "\n"
        "[database]\n"
        "Status: Success\n"
        'Result: {"user_count": 1234, "asked_by": "42"}\n'
        "Execution Time: T\n"
        "\n"
        "[big]\n"
        "Status: Success\n"
        f'Result: "{"x" * (60 - len(CUT) - 1)}{CUT}\n'
        "Execution Time: T\n"
    )


async def test_failures_included_when_asked(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugins(write_plugin)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        block = await plugin_results_for_prompt(manager, None, include_errors=True)
    sections = normalised(block).split("\n\n")
    assert sections[1].startswith("[broken]\nStatus: Failed\nError: ")  # priority 20: first
    assert "the database is down" in sections[1]
    assert sections[1].endswith("Execution Time: T")
    assert [s.split("\n")[0] for s in sections[1:]] == ["[broken]", "[weather]", "[database]", "[big]"]


async def test_chosen_plugins_and_nothing_to_say(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugins(write_plugin)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        only_broken = await plugin_results_for_prompt(manager, None, plugin_names=["broken"])
        chosen = await plugin_results_for_prompt(manager, None, plugin_names=["database", "weather"])
    assert only_broken == ""  # its failure is left out, and an empty block is no block
    assert [line for line in chosen.splitlines() if line.startswith("[")] == ["[weather]", "[database]"]


def test_format_keeps_the_given_order() -> None:
    results = [
        ("b", PluginExecutionResult(success=True, result=[1, "é"], execution_time=0.5)),
        ("a", PluginExecutionResult(success=False, error="nope", execution_time=0.25)),
    ]
    assert format_plugin_results(results) == (
        '=== Plugin Execution Results ===\n\n[b]\nStatus: Success\nResult: [1, "é"]\nExecution Time: 0.50s\n'
    )
    assert format_plugin_results(results, include_errors=True).endswith(
        "[a]\nStatus: Failed\nError: nope\nExecution Time: 0.25s\n"
    )
    assert format_plugin_results([]) == ""
