"""`call_tool`: arguments checked against the schema, the call through the guard, permissions, and
every failure a tool error result (never an exception)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost.agent import Caller, Toolbox
from plughost.bot.commands.permissions import PermissionService
from plughost.host import Host
from plughost.sdk.models import EventType
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.senders import CommandSender
from tests.agent.support import CALCULATOR, HANG, HANG_MANIFEST
from tests.agent.test_catalog import DICE
from tests.conftest import PluginWriter


@pytest.fixture
async def host(workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[Host]:
    write_plugin("calculator", CALCULATOR)
    write_plugin("slow", HANG, manifest_extra=HANG_MANIFEST)
    write_plugin("dice", DICE)
    async with Host(workspace) as running:
        yield running


async def test_a_call_through_the_guard_and_the_event_log(host: Host) -> None:
    toolbox = Toolbox(host.manager)
    result = await toolbox.call_tool("calculator__add", {"a": 2, "b": 3.5})
    assert (result.ok, result.value, result.text(), result.plugin_id) == (True, 5.5, "5.5", "calculator")
    assert (await toolbox.call_tool("calculator__add", '{"a": 1, "b": 1}')).value == 2  # JSON text works too
    events = [e for e in host.manager.get_events("calculator") if e.metadata.get("agent_tool")]
    assert [(e.event_type, e.success, e.metadata["agent_tool"]) for e in events] == [
        (EventType.EXECUTE, True, "calculator__add"),
        (EventType.EXECUTE, True, "calculator__add"),
    ]
    assert events[0].metadata["arguments"] == '{"a": 2, "b": 3.5}'
    toolbox.close()


async def test_arguments_that_violate_the_schema(host: Host) -> None:
    toolbox = Toolbox(host.manager)
    cases = {
        "missing and wrong type": {"a": "two"},
        "unknown property": {"a": 1, "b": 2, "c": 3},
    }
    for arguments in cases.values():
        result = await toolbox.call_tool("calculator__add", arguments)
        assert (result.ok, result.code) == (False, "invalid_arguments")
    missing = await toolbox.call_tool("calculator__add", {"a": "two"})
    assert "'b' is a required property" in (missing.error or "")
    assert "a: 'two' is not of type 'number'" in (missing.error or "")
    for broken in ("{not json", "[1, 2]", "42"):
        result = await toolbox.call_tool("calculator__add", broken)
        assert (result.ok, result.code) == (False, "invalid_arguments")
    assert "not valid JSON" in ((await toolbox.call_tool("calculator__add", "{not json")).error or "")
    guarded = [e for e in host.manager.get_events("calculator") if e.event_type is EventType.EXECUTE]
    assert all(e.metadata.get("code") == "invalid_arguments" for e in guarded)  # no call reached the plugin
    toolbox.close()


async def test_unknown_tool_raising_tool_and_timeout(host: Host) -> None:
    toolbox = Toolbox(host.manager)
    unknown = await toolbox.call_tool("calculator__ad", {})
    assert (unknown.ok, unknown.code) == (False, "unknown_tool")
    assert "did you mean calculator__add" in (unknown.error or "")
    raised = await toolbox.call_tool("calculator__boom", {})
    assert (raised.ok, raised.code) == (False, "plugin_error")
    assert "boom on purpose" in (raised.error or "")
    hung = await toolbox.call_tool("slow__hang", {})
    assert (hung.ok, hung.code) == (False, "timed_out")
    assert hung.text().startswith("error (timed_out): ")
    agent_events = [e for e in host.manager.get_events() if e.metadata.get("agent_tool")]
    assert [(e.plugin_name, e.success, e.metadata.get("code")) for e in agent_events] == [
        ("agent", False, "unknown_tool"),
        ("calculator", False, "plugin_error"),
        ("slow", False, "timed_out"),
    ]
    toolbox.close()


async def test_permissions_decide_what_a_caller_may_use(host: Host, tmp_path: Path) -> None:
    service = PermissionService(tmp_path / "grants.toml")
    toolbox = Toolbox(host.manager, permissions=service)
    assert PermissionId.parse("tool:calculator.add") in service.registered()
    assert PermissionId.parse("tool:calculator.*") in service.registered()
    member = Caller.of_sender(CommandSender.member(100, 7))
    assert toolbox.tools_for(member) == []
    denied = await toolbox.call_tool("calculator__add", {"a": 1, "b": 2}, caller=member)
    assert (denied.ok, denied.code) == (False, "permission_denied")
    assert "tool:calculator.add" in (denied.error or "")

    service.permit(PermitteeId.parse("m100.*"), PermissionId.parse("tool:calculator.add"))
    assert [t.name for t in toolbox.tools_for(member)] == ["calculator__add"]
    assert (await toolbox.call_tool("calculator__add", {"a": 1, "b": 2}, caller=member)).value == 3

    service.permit(PermitteeId.parse("u7"), PermissionId.parse("tool:slow.*"))  # every tool of a plugin
    assert {t.name for t in toolbox.tools_for(member)} == {"calculator__add", "slow__hang"}

    owner = Caller.of_sender(CommandSender.member(100, 8), owners={8})
    assert len(toolbox.tools_for(owner)) == len(toolbox.catalog.tools())
    assert len(toolbox.tools_for(Caller.console())) == len(toolbox.catalog.tools())
    toolbox.close()


async def test_a_command_as_a_tool(host: Host) -> None:
    toolbox = Toolbox(host.manager, command_plugins=["dice"])
    result = await toolbox.call_tool("dice__cmd_roll", {"sides": 20})
    assert (result.ok, result.value) == (True, "rolled 1..20")
    assert (await toolbox.call_tool("dice__cmd_roll", {})).value == "rolled 1..6"
    wrong = await toolbox.call_tool("dice__cmd_roll", {"sides": "many"})
    assert wrong.code == "invalid_arguments"
    toolbox.close()
