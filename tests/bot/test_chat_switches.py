"""Per-chat plugin switches: `/plugins disable dice --group 123`, from a real OneBot connection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from plughost.core.state import PluginStateFile
from plughost.host import Host
from plughost.sdk.permissions import PermissionId, PermitteeId

from .chat_host import chat_host
from .onebot_impl import OneBotImpl, group_message, private_message

DICE = """
from plughost.sdk import MessageEvent, Plugin, Reply
plugin = Plugin()

@plugin.command("roll")
def roll() -> str:
    return "4"

@plugin.route("message", "Group", "Private")
async def hello(ev: MessageEvent) -> Reply | None:
    return Reply.of("hello") if ev.plain_text() == "hi" else None

@plugin.on_message(keyword="weather")
def weather() -> str:
    return "sunny"
"""
OWNER, ADMIN = 900, 901
COMMANDS = f"[commands]\nowners = [{OWNER}]\n"


def texts(actions: list[dict[str, Any]]) -> list[str]:
    return ["".join(s["data"].get("text", "") for s in a["params"]["message"]) for a in actions]


class Chat:
    """Sends messages and returns the replies they caused."""

    def __init__(self, host: Host, impl: OneBotImpl) -> None:
        self.host, self.impl, self.next_id = host, impl, 1

    async def say(self, text: str, *, group: int | None = 123, user: int = OWNER, role: str = "member") -> list[str]:
        before = len(self.impl.actions)
        lane = self.host.dispatcher.lanes["qq"]
        finished = lane.stats.finished
        self.next_id += 1
        if group is None:
            await self.impl.push(private_message(text, message_id=self.next_id, user_id=user))
        else:
            await self.impl.push(group_message(text, message_id=self.next_id, group_id=group, user_id=user, role=role))
        await lane.wait_finished(finished + 1)  # its replies were sent (and answered) before it finished
        return texts(self.impl.actions[before:])


async def test_a_plugin_switched_off_in_a_group_is_silent_there_and_answers_elsewhere(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"dice": DICE}, toml=COMMANDS) as (host, impl):
        chat = Chat(host, impl)
        assert await chat.say("/plugins disable dice --group 123") == ["plugin 'dice' switched off in group:123"]
        assert await chat.say("/roll") == []  # its commands are unknown there (silent in chat)
        assert await chat.say("hi") == []  # its routes do not run there
        assert await chat.say("weather today?") == []  # nor its message matchers
        assert await chat.say("weather today?", group=456) == ["sunny"]
        assert await chat.say("/roll", group=456) == ["4"]
        assert await chat.say("hi", group=None) == ["hello"]
        listing = (await chat.say("/plugins"))[0]
        assert "(in group:123)" in listing and "dice 1.0.0 [enabled]" in listing and "off here" in listing
        assert "on here" in (await chat.say("/plugins", group=456))[0]

        assert await chat.say("/plugins disable dice --private 900") == ["plugin 'dice' switched off in private:900"]
        assert await chat.say("hi", group=None) == []
        assert await chat.say("/plugins disable dice --private 900") == ["plugin 'dice' already is off in private:900"]

        assert await chat.say("/plugins enable dice --group 123") == ["plugin 'dice' switched on in group:123"]
        assert await chat.say("/roll") == ["4"]
    state = PluginStateFile.load(tmp_path / "plugin-state.toml")
    assert state.chats_off == {"dice": ("private:900",)}  # persisted


async def test_switches_survive_a_restart(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"dice": DICE}, toml=COMMANDS) as (host, impl):
        assert await Chat(host, impl).say("/plugins disable dice --group 123") == [
            "plugin 'dice' switched off in group:123"
        ]
    async with chat_host(tmp_path, {}, toml=COMMANDS) as (host, impl):
        chat = Chat(host, impl)
        assert await chat.say("/roll") == []
        assert await chat.say("/roll", group=456) == ["4"]


async def test_group_admins_with_the_permission_switch_only_their_own_group(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"dice": DICE}, toml=COMMANDS) as (host, impl):
        chat = Chat(host, impl)
        engine = host.commands.engine
        engine.permissions.permit(PermitteeId.parse(f"m123.{ADMIN}"), PermissionId.parse("console:plugins.group"))

        def admin(text: str, group: int = 123, role: str = "admin") -> Any:
            return chat.say(text, group=group, user=ADMIN, role=role)

        # break-in attempts: another group, every chat at once, a private chat, the whole plugin
        denied = await admin("/plugins disable dice --group 456")
        assert denied == [
            "permission denied: console:plugins.group lets a group admin switch plugins in their own group only "
            "(you are in group:123, not group:456)"
        ]
        assert "add --group 123" in (await admin("/plugins disable dice"))[0]
        assert "not private:5" in (await admin("/plugins disable dice --private 5"))[0]
        assert (await admin("/plugins reload dice"))[0].startswith("permission denied for this command")
        assert host.manager.chat_switches.chats_off("dice") == [] and host.manager.get_plugin("dice").is_enabled

        # from group 456, where the grant does not apply (and they are only a member)
        assert (await admin("/plugins disable dice --group 456", group=456, role="member"))[0].startswith(
            "permission denied"
        )
        # an ordinary member of group 123 holding the grant is still not an admin
        assert (await admin("/plugins disable dice --group 123", role="member"))[0].startswith("permission denied")
        assert host.manager.chat_switches.chats_off("dice") == []

        # their own group: allowed, and /plugins shows it
        assert await admin("/plugins disable dice --group 123") == ["plugin 'dice' switched off in group:123"]
        assert "off here" in (await admin("/plugins"))[0]
        assert await chat.say("/roll", group=456) == ["4"]


async def test_bad_chat_arguments_are_one_line_errors_and_change_nothing(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"dice": DICE}, toml=COMMANDS) as (host, impl):
        chat = Chat(host, impl)
        assert await chat.say("/plugins disable dice --group 0") == [
            "a chat is a group or private chat with a positive numeric id, got 'group:0'"
        ]
        reply = (await chat.say("/plugins disable dice --channel 5"))[0]
        assert reply.startswith("'--channel' is not one of: --group, --private")
        assert (await chat.say("/plugins disable dice --group abc"))[0].startswith("cannot parse 'abc'")
        assert await chat.say("/plugins disable nosuch --group 5") == ["plugin 'nosuch' was not found"]
        assert host.manager.chat_switches.chats_off("dice") == []
    assert not (tmp_path / "plugin-state.toml").exists() or "chats" not in (tmp_path / "plugin-state.toml").read_text()


# plugin-state.toml -------------------------------------------------------------------------------
OLD_STATE = "[modules]\ndice = false\necho = true\n\n[priorities]\necho = 500\n"


def test_an_old_state_file_loads_unchanged_and_gains_chats_only_when_used(tmp_path: Path) -> None:
    path = tmp_path / "plugin-state.toml"
    path.write_text(OLD_STATE)
    state = PluginStateFile.load(path)
    assert (state.modules, state.priorities, state.chats_off, state.warnings) == (
        {"dice": False, "echo": True}, {"echo": 500}, {}, []
    )  # fmt: skip
    state.set_priority("echo", 500)
    assert path.read_text() == OLD_STATE  # no [chats] table while no switch is set
    assert state.set_chat_enabled("echo", "group:1", False)
    assert not state.set_chat_enabled("echo", "group:1", False)
    state.set_enabled("dice", True)  # other changes keep the switches
    again = PluginStateFile.load(path)
    assert again.chats_off == {"echo": ("group:1",)} and again.modules == {"dice": True, "echo": True}
    assert again.set_chat_enabled("echo", "group:1", True)
    assert "chats" not in path.read_text() and PluginStateFile.load(path).priorities == {"echo": 500}


def test_a_malformed_chats_table_falls_back_to_the_backup(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plugin-state.toml"
    path.write_text(OLD_STATE)
    PluginStateFile.load(path).set_chat_enabled("dice", "private:2", False)  # the old version is the .bak now
    path.write_text(OLD_STATE + '\n[chats]\ndice = ["group:x"]\n')
    with caplog.at_level(logging.WARNING):
        state = PluginStateFile.load(path)
    assert "invalid values for chats.dice" in caplog.text
    assert state.modules == {"dice": False, "echo": True} and state.chats_off == {}  # the backup's content


def test_a_malformed_chat_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "plugin-state.toml"
    state = PluginStateFile.load(path)
    with pytest.raises(ValueError, match=r"^a chat is 'group:<id>' or 'private:<id>', got 'room:1'$"):
        state.set_chat_enabled("dice", "room:1", False)
    assert not path.exists() and state.chats_off == {}


async def test_old_state_file_in_a_real_host(tmp_path: Path) -> None:
    (tmp_path / "plugin-state.toml").write_text("[modules]\ndice = false\n")
    async with chat_host(tmp_path, {"dice": DICE}, toml=COMMANDS, connect=False) as (host, _):
        assert not host.manager.get_plugin("dice").is_enabled and host.manager.chat_switches.chats_off("dice") == []
