"""The tool catalog: names providers accept, descriptions, schemas, exports, and following the manager."""

from __future__ import annotations

import itertools
from pathlib import Path

from plughost import PluginManager
from plughost.agent import ToolCatalog, build_tools, sanitise, unique_names
from plughost.agent.catalog import NAME_PATTERN
from plughost.sdk.descriptor import CommandOverload, CommandSpec, Descriptor, MethodSpec, ParamSpec
from tests.agent.support import CALCULATOR
from tests.conftest import PluginWriter

PING = """
from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("ping")
def ping() -> str:
    \"\"\"Answer pong.\"\"\"
    return "pong"
"""

DICE = """
from plughost.sdk import CommandContext, Plugin

plugin = Plugin()


@plugin.command("roll", description="roll a die")
def roll(ctx: CommandContext, sides: int = 6) -> str:
    return f"rolled 1..{sides}"


@plugin.method("seed")
def seed(value: int) -> int:
    \"\"\"Seed the dice.\"\"\"
    return value
"""


async def test_methods_become_tools_with_docstring_and_schema(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("calculator", CALCULATOR)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        catalog = ToolCatalog(manager)
        add = catalog.get("calculator__add")
        assert add is not None
        assert (add.plugin_id, add.handler, add.description) == ("calculator", "add", "Add two numbers.")
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "number"
        assert str(add.permission) == "tool:calculator.add"
        assert catalog.openai_tools()[0] == {
            "type": "function",
            "function": {"name": "calculator__add", "description": "Add two numbers.", "parameters": add.parameters},
        }
        assert catalog.anthropic_tools()[0] == {
            "name": "calculator__add",
            "description": "Add two numbers.",
            "input_schema": add.parameters,
        }
        assert catalog.mcp_tools()[0] == {
            "name": "calculator__add",
            "title": "calculator.add",
            "description": "Add two numbers.",
            "inputSchema": add.parameters,
        }
        catalog.close()


async def test_catalog_follows_load_unload_enable_disable(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("calculator", CALCULATOR)
    other = write_plugin("other", PING)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        catalog = ToolCatalog(manager)
        changes: list[list[str]] = []
        catalog.add_listener(lambda: changes.append([t.name for t in catalog.tools()]))
        assert [t.name for t in catalog.tools()] == ["calculator__add", "calculator__boom", "other__ping"]

        await manager.disable_plugin("other")
        await manager.enable_plugin("other")
        await manager.unload_plugin("calculator")
        await manager.unload_plugin("other")
        await manager.load_plugin(other)
        assert changes == [
            ["calculator__add", "calculator__boom"],
            ["calculator__add", "calculator__boom", "other__ping"],
            ["other__ping"],
            [],
            ["other__ping"],
        ]
        catalog.close()
        await manager.disable_plugin("other")
        assert len(changes) == 5  # a closed catalog tells nobody


def test_names_collide_after_sanitising_and_stay_distinct_in_any_order() -> None:
    descriptors = [
        ("com.example.x", Descriptor("com.example.x", methods=(MethodSpec("ping"),))),
        ("com_example_x", Descriptor("com_example_x", methods=(MethodSpec("ping"),))),
        ("calc", Descriptor("calc", methods=(MethodSpec("add"), MethodSpec("add two"), MethodSpec("add_two")))),
    ]
    results = []
    for order in itertools.permutations(descriptors):
        tools = build_tools(order)
        results.append({(t.plugin_id, t.handler): t.name for t in tools})
    assert all(r == results[0] for r in results)  # the same names whatever the order
    names = results[0]
    assert len(set(names.values())) == len(names) == 5
    assert all(NAME_PATTERN.match(n) for n in names.values())
    assert names[("calc", "add")] == "calc__add"  # no collision: the plain name
    for key in (("com.example.x", "ping"), ("com_example_x", "ping")):
        assert names[key].startswith("com_example_x__ping_")  # both get a suffix hashed from their own id
    for key in (("calc", "add two"), ("calc", "add_two")):
        assert names[key].startswith("calc__add_two_")


def test_long_and_odd_names_fit_the_providers_pattern() -> None:
    plugin = "p" * 100
    names = unique_names([(plugin, "method", "m" * 80), ("ünïcode.plugin", "method", "größe"), ("a", "method", "")])
    assert all(NAME_PATTERN.match(n) for n in names.values())
    assert names[(plugin, "method", "m" * 80)] == names[(plugin, "method", "m" * 80)][:64]
    assert len(names[(plugin, "method", "m" * 80)]) == 64
    assert names[("ünïcode.plugin", "method", "größe")] == "_n_code_plugin__gr__e"
    assert sanitise("") == "_"


def test_commands_are_tools_only_when_asked() -> None:
    roll = CommandSpec(
        "roll",
        description="roll a die",
        overloads=(CommandOverload("command:roll", (ParamSpec("sides", "int", required=False, default=6),)),),
        subcommands=(CommandSpec("many", overloads=(CommandOverload("command:roll many", (ParamSpec("n", "int"),)),)),),
    )
    descriptor = Descriptor("dice", commands=(roll,), methods=(MethodSpec("seed"),))
    assert [t.name for t in build_tools([("dice", descriptor)])] == ["dice__seed"]
    tools = {t.name: t for t in build_tools([("dice", descriptor)], command_plugins=["dice"])}
    assert set(tools) == {"dice__seed", "dice__cmd_roll", "dice__cmd_roll_many"}
    assert tools["dice__cmd_roll"].parameters == {
        "type": "object",
        "properties": {"sides": {"type": "integer", "default": 6}},
        "additionalProperties": False,
    }
    assert tools["dice__cmd_roll_many"].parameters["required"] == ["n"]
    assert str(tools["dice__cmd_roll_many"].permission) == "tool:dice.command.roll.many"
    assert {t.name for t in build_tools([("dice", descriptor)], command_plugins=["*"])} == set(tools)


async def test_command_tools_from_a_real_plugin(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("dice", DICE)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        catalog = ToolCatalog(manager, command_plugins=["dice"])
        assert [t.name for t in catalog.tools()] == ["dice__seed", "dice__cmd_roll"]
        assert catalog.get("dice__cmd_roll") is not None
        catalog.close()
