"""Placement parity: the same plugin source, in-process and in a worker, gives the same outcomes.

One plugin declares every handler kind — method, execute, commands (custom parser, defaults,
overloads, raw, the event and the bot by type), a route, `pre_handle`, `after_completion`, sends
before a failure, a bot action and `SystemExit`. Each scenario runs through the real host code
(guard, command engine, dispatcher) against each placement; the transcripts must be identical,
and the in-process transcript must say what the scenario expects (so a uniformly broken contract
fails too).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from process_support import call_value
from tests.bot.directory import GuardedPlugins
from tests.bot.onebot_impl import group_message, notice, request

from plughost.bot.commands import CommandEngine, CommandSender, CommandSource, PluginTarget, Triggered
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.guard import Guard
from plughost.sdk.bot import BotApi
from plughost.sdk.call import Call
from plughost.sdk.events import parse_event
from plughost.sdk.message import Message
from plughost.sdk.permissions import PermissionId

PLUGIN = """
import sys
from plughost.sdk import (
    Bot, CommandArgumentError, CommandContext, Message, MessageEvent, NoticeEvent, Plugin, PluginExecutionContext,
    Reply,
)

plugin = Plugin()


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


@plugin.argument_parser(Point)
def parse_point(text: str) -> Point:
    x, _, y = text.partition(",")
    if not (x.isdigit() and y.isdigit()):
        raise CommandArgumentError(f"'{text}' is not a point like 3,4")
    return Point(int(x), int(y))


@plugin.method("greet")
def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@plugin.method("leave")
def leave() -> None:
    sys.exit(5)


@plugin.execute
async def run(context: PluginExecutionContext) -> dict:
    return {"echo": context.input_data, "user": context.user_id}


@plugin.command("move")
async def move(ctx: CommandContext, to: Point, speed: int = 3) -> str:
    return f"{ctx.sender.kind} to {to.x},{to.y} at {speed}"


@plugin.command("pick")
def pick_one(n: int) -> str:
    return f"one {n}"


@plugin.command("pick")
def pick_two(a: int, b: int) -> str:
    return f"two {a} {b}"


@plugin.command("shout", raw=True)
def shout(text: Message) -> str:
    return text.plain_text().upper()


@plugin.command("where")
async def where(ctx: CommandContext, ev: MessageEvent | None, bot: Bot) -> str:
    ctx.reply("looking")
    if ev is None:
        return "the console"
    info = await bot.get_group_info(ev.group_id)
    await bot.send_private_msg(ev.user_id, "psst")
    return f"{ev.user_id} in {info['group_name']}"


@plugin.route("notice", "GroupPoke")
async def poked(ev: NoticeEvent, bot: Bot, text: str = "ouch") -> Reply:
    await bot.send_group_msg(ev.group_id, "queued before the reply")
    return Reply.of(text)


@plugin.pre_handle
def no_spam(ev: MessageEvent) -> bool:
    return "spam" not in ev.message.plain_text()


@plugin.after_completion
async def audit(event, bot) -> None:
    await bot.send_private_msg(1, f"seen {event.route}")


@plugin.route("request", "Friend")
async def refuse(ev, bot) -> None:
    await bot.send_private_msg(ev.user_id, "sorry")
    raise RuntimeError("exploded after a send")
"""

PLACEMENTS = ["in_process", "worker", "worker-grpc"]
CONSOLE = CommandSender.console()


class HostBot(BotApi):
    """The bot connection on the host's side: records actions, answers group info."""

    def __init__(self) -> None:
        self.bot_id = "parity"
        self.self_id = 10001
        self.actions: list[tuple[str, dict[str, Any]]] = []

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        self.actions.append((action, dict(params or {})))
        return {"group_name": "plughost fans"} if action == "get_group_info" else {"message_id": len(self.actions)}


@pytest.fixture
def parity_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "parity"
    directory.mkdir()
    (directory / "plugin.toml").write_text('id = "parity"\nversion = "1.0.0"\n')
    (directory / "plugin.py").write_text(PLUGIN)
    return directory


async def _calls(handle: Any) -> list[Any]:
    guard = Guard()
    transcript: list[Any] = []
    for call in (
        Call("greet", {"name": "Ada"}),
        Call("greet", {"name": "Ada", "punctuation": "?"}),
        Call("greet", {}),
        Call("leave"),
        Call("nope"),
        Call("execute", {"input_data": [1, 2], "user_id": "u"}, "execute"),
    ):
        outcome = await guard.call("parity", handle, call)
        error = outcome.error
        transcript.append((call.handler, outcome.value, error and (error.code, error.type, error.message)))
    return transcript


async def _commands(handle: Any, bot: HostBot) -> list[Any]:
    guard = Guard()
    engine = CommandEngine()
    target = PluginTarget("parity", lambda call: guard.call("parity", handle, call))
    engine.rebuild([CommandSource("parity", 0, handle.descriptor, target)])
    transcript: list[Any] = []
    for line in ("/move 3,4", "/move 3,4 9", "/move nowhere", "/pick 1", "/pick 1 2", "/shout  a  b", "/where"):
        result = await engine.execute_command(CONSOLE, line)
        transcript.append((line, result.kind, result.text, result.sends))
    wire = group_message("/where", message_id=1, group_id=77, user_id=5)
    event = parse_event(wire)
    sender = CommandSender("member", 5, 77, "", bot.self_id, "member", event=wire)
    engine.permissions.permit(sender.permittee, PermissionId.parse("parity:*"))
    result = await engine.run(sender, Triggered(Message("where"), bare=False), Message("/where"), bot, event)
    transcript.append(("chat /where", result.kind, result.text, result.sends, list(bot.actions)))
    return transcript


async def _events(handle: Any, bot: HostBot) -> list[Any]:
    directory = GuardedPlugins()
    directory.add("parity", handle)
    transcript: list[Any] = []
    async with Dispatcher(directory) as dispatcher:
        lane = dispatcher.attach("parity", BotConfig(id="parity", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        for wire in (
            notice("notify", "poke", group_id=3, user_id=4),
            group_message("buy spam now", message_id=2),
            group_message("hello", message_id=3),
            request("friend", user_id=9, flag="F"),
        ):
            before = len(bot.actions)
            result = await dispatcher.process(lane, parse_event(wire))
            errors = [e.split(": ", 1)[1] for e in result.errors]
            transcript.append((result.status, result.answered_by, errors, bot.actions[before:]))
    return transcript


UNKNOWN = (
    "plugin 'parity' has no handler 'nope' (its methods: execute, greet, leave; called by the host: "
    "after_completion.audit, command:move, command:pick, command:pick#2, command:shout, command:where, "
    "pre_handle.no_spam, route.notice.poked, route.request.refuse)"
)
"""What a call of a handler the plugin lacks says: its methods apart from what the host calls."""


@pytest.mark.parametrize("placement", PLACEMENTS[1:])
async def test_a_worker_answers_exactly_like_in_process(load_python: Any, parity_dir: Path, placement: str) -> None:
    local = await load_python(parity_dir, "in_process")
    remote = await load_python(parity_dir, placement)
    assert remote.descriptor.to_json() == local.descriptor.to_json()

    expected_calls = await _calls(local)
    assert expected_calls == [
        ("greet", "hello Ada!", None),  # the handler's default
        ("greet", "hello Ada?", None),
        ("greet", None, ("invalid_request", "InvocationError", "missing argument 'name'")),
        ("leave", None, ("plugin_error", "SystemExit", "5")),  # the host goes on
        ("nope", None, ("unknown_handler", "", UNKNOWN)),
        ("execute", {"echo": [1, 2], "user": "u"}, None),
    ]
    assert await _calls(remote) == expected_calls

    local_bot, remote_bot = HostBot(), HostBot()
    expected_commands = await _commands(local, local_bot)
    texts = [(line, str(kind), text) for line, kind, text, *_ in expected_commands]
    assert texts[:6] == [
        ("/move 3,4", "success", "console to 3,4 at 3"),  # the plugin's own parser, its default
        ("/move 3,4 9", "success", "console to 3,4 at 9"),
        ("/move nowhere", "parse_error", "'nowhere' is not a point like 3,4\nusage:\n  /move <to:Point> [speed:int]"),
        ("/pick 1", "success", "one 1"),  # overloads
        ("/pick 1 2", "success", "two 1 2"),
        ("/shout  a  b", "success", "A  B"),  # raw: the message as typed
    ]
    assert texts[6] == ("/where", "success", "looking\nthe console")
    assert expected_commands[7][:3] == ("chat /where", "success", "looking\n5 in plughost fans")
    assert expected_commands[7][4] == [("get_group_info", {"group_id": 77, "no_cache": False})]
    remote_commands = await _commands(remote, remote_bot)
    if placement == "worker-grpc":  # gRPC alone carries no bot actions back: the chat /where fails there
        assert remote_commands[:7] == expected_commands[:7]
        assert str(remote_commands[7][1]) == "execution_error" and "failed (error " in remote_commands[7][2]
    else:
        assert remote_commands == expected_commands

    expected_events = await _events(local, HostBot())
    assert expected_events == [
        ("route", "parity", [], [
            ("send_group_msg", {"group_id": 3, "message": [{"type": "text", "data": {"text": "ouch"}}]}),
            ("send_group_msg", {"group_id": 3, "auto_escape": False,
                                "message": [{"type": "text", "data": {"text": "queued before the reply"}}]}),
            ("send_private_msg", {"user_id": 1, "message": [{"type": "text", "data": {"text": "seen GroupPoke"}}],
                                  "auto_escape": False}),
        ]),
        ("blocked", "parity", [], []),
        ("unhandled", None, [], [
            ("send_private_msg", {"user_id": 1, "message": [{"type": "text", "data": {"text": "seen Group"}}],
                                  "auto_escape": False}),
        ]),
        ("unhandled", None, ["RuntimeError: exploded after a send"], [
            ("send_private_msg", {"user_id": 9, "message": [{"type": "text", "data": {"text": "sorry"}}],
                                  "auto_escape": False}),  # sent although the handler failed
            ("send_private_msg", {"user_id": 1, "message": [{"type": "text", "data": {"text": "seen Friend"}}],
                                  "auto_escape": False}),
        ]),
    ]  # fmt: skip
    assert await _events(remote, HostBot()) == expected_events
    assert await call_value(remote, "greet", {"name": "still serving"}) == "hello still serving!"
