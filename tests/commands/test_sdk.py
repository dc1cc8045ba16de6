"""Authoring: declarations, descriptor shape, request JSON, return values, configuration errors."""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path

import pytest

from plughost.bot.config import BotSettings
from plughost.core.config import HostConfig
from plughost.errors import ConfigError, PlugHostError
from plughost.host import Host
from plughost.sdk import Message, Plugin, ReplyBuilder, Segment
from plughost.sdk.commands import (
    CommandContext,
    CommandDefinitionError,
    UserId,
    to_json_value,
)
from plughost.sdk.descriptor import Descriptor, ParamSpec
from plughost.sdk.message import to_message
from plughost.sdk.permissions import PermissionId
from plughost.sdk.senders import CommandSender


class Size(enum.Enum):
    S = "small"
    L = "large"


def test_descriptor_from_decorators_round_trips_through_json() -> None:
    plugin = Plugin(id="p", version="1.0.0")

    @plugin.command("order", aliases=["buy"], description="order", category="shop", role="admin", scope="group")
    async def order(size: Size, who: UserId, when: dt.date | None = None, *notes: str) -> str:
        return "ok"

    @plugin.command("order")
    async def order_one(ctx: CommandContext, size: Size) -> str:
        return "ok"

    group = plugin.command_group("cfg", role="owner")

    @group.sub("set", "put")
    def set_(key: str, value: int = 0) -> None:
        return None

    descriptor = plugin.describe()
    assert "commands" in descriptor.capabilities
    order_spec = descriptor.commands[0]
    assert (order_spec.role, order_spec.scope, order_spec.aliases, order_spec.category) == (
        "admin",
        "group",
        ("buy",),
        "shop",
    )
    assert [o.handler for o in order_spec.overloads] == ["command:order", "command:order#2"]
    assert order_spec.overloads[0].params == (
        ParamSpec("size", "enum", choices=("S", "L")),
        ParamSpec("who", "user"),
        ParamSpec("when", "date", required=False),
        ParamSpec("notes", "str", required=False, variadic=True),
    )
    assert order_spec.overloads[1].params == (ParamSpec("size", "enum", choices=("S", "L")),)
    sub = descriptor.commands[1].subcommands[0]
    assert (sub.name, sub.aliases, sub.role) == ("set", ("put",), "owner")  # inherited from the group
    assert sub.overloads[0].params[1] == ParamSpec("value", "int", required=False, default=0)
    assert Descriptor.from_json(descriptor.to_json(), id="p") == descriptor


@pytest.mark.parametrize("name", ["", " ", "two words", "ns:x", "a.b"])
def test_invalid_command_names_are_rejected_at_declaration(name: str) -> None:
    plugin = Plugin(id="p", version="1")
    with pytest.raises(CommandDefinitionError, match="invalid command name"):
        plugin.command(name)(lambda: None)


def test_keyword_varargs_are_rejected() -> None:
    plugin = Plugin(id="p", version="1")

    def handler(**options: str) -> None:
        return None

    with pytest.raises(CommandDefinitionError, match=r"\*\*options is not supported"):
        plugin.command("x")(handler)


def test_command_context_json_round_trip() -> None:
    context = CommandContext(CommandSender.member(1, 2, role="admin", bot_id=9), Message("/x"), "p", "x", "x")
    back = CommandContext.from_json(context.to_json(), {"post_type": "message"})
    assert back.sender == context.sender and back.message == context.message
    assert back.sender.event == {"post_type": "message"}
    assert to_json_value(dt.datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00"
    assert to_json_value(PermissionId.parse("a:b")) == "a:b"
    assert to_json_value(Message("hi")) == [{"type": "text", "data": {"text": "hi"}}]


def test_return_values_become_messages() -> None:
    class Builder:
        def build(self) -> Message:
            return Message([Segment.text("built")])

    assert to_message(None) is None
    assert to_message("") is None
    assert to_message("hi") == Message("hi")
    assert to_message(Segment.at(1)) == Message([Segment.at(1)])
    assert to_message(Builder()) == Message("built")
    assert to_message([{"type": "text", "data": {"text": "json"}}]) == Message("json")
    assert to_message([Segment.at(1), Segment.text("hi")]) == Message([Segment.at(1), Segment.text("hi")])
    assert to_message(ReplyBuilder().text("from ").at(2)) == Message([Segment.text("from "), Segment.at(2)])
    assert to_message(42) == Message("42")


def test_unknown_key_in_commands_section_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "plughost.toml").write_text("[commands]\nprefix = ['!']\n")
    config = HostConfig.load(tmp_path)  # the bot domain's tables are the bot layer's to validate
    with pytest.raises(ConfigError, match=r"plughost.toml: commands\.prefix: unknown key"):
        BotSettings.from_host_config(config)
    with pytest.raises(ConfigError, match=r"plughost.toml: commands\.prefix: unknown key"):
        Host(tmp_path)


def test_unknown_section_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "plughost.toml").write_text("[command]\nprefixes = ['!']\n")
    with pytest.raises(ConfigError, match=r"plughost.toml: command: unknown key"):
        HostConfig.load(tmp_path)


def test_bad_default_permittee_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "plughost.toml").write_text("[permissions]\ndefault_permittees = ['everyone']\n")
    with pytest.raises(PlugHostError, match=r"default_permittees in plughost.toml: invalid permittee id 'everyone'"):
        Host(tmp_path)
