"""Any input, from any sender, yields a result — never an exception."""

from __future__ import annotations

import asyncio
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from plughost.bot.commands import CommandEngine, CommandResult, CommandSender, CommandSource, PermissionService
from plughost.bot.commands.targets import SdkTarget
from plughost.sdk import Message, Plugin, Segment
from plughost.sdk.commands import CommandContext


def build_engine() -> CommandEngine:
    plugin = Plugin(id="fuzz", version="1")

    @plugin.command("a", aliases=["alpha"])
    def a(x: int, y: float = 1.0, *rest: bool) -> str:
        return f"{x} {y} {rest}"

    @plugin.command("a")
    def a2(ctx: CommandContext, when: dt.datetime, msg: Message) -> str:
        return "a2"

    group = plugin.command_group("g")

    @group.sub("s", "t")
    def sub(seg: Segment, n: int | None = None) -> None:
        return None

    @plugin.command("raw", raw=True)
    def raw(args: Message) -> Message:
        return args

    engine = CommandEngine(permissions=PermissionService(default_permittees=["*"]))
    engine.rebuild([CommandSource("fuzz", 0, plugin.describe(), SdkTarget(plugin))])
    return engine


ENGINE = build_engine()
SENDERS = st.sampled_from(
    [CommandSender.console(), CommandSender.friend(1), CommandSender.member(2, 3, bot_id=9), CommandSender.stranger(4)]
)
SEGMENTS = st.one_of(
    st.text().map(Segment.text),
    st.just(Segment.at(9)),
    st.just(Segment("reply", {"id": "1"})),
    st.just(Segment("image", {"file": "x"})),
)
WORDS = st.sampled_from(["/a", "/alpha", "/g", "s", "t", "/raw", "1", "2.5", "yes", "now", '"', "\\", "--", " "])


def execute(sender: CommandSender, message: str | Message) -> CommandResult:
    return asyncio.run(ENGINE.execute_command(sender, message))


@settings(max_examples=200, deadline=None)
@given(SENDERS, st.lists(WORDS, max_size=8).map(" ".join))
def test_command_like_text_never_raises(sender: CommandSender, text: str) -> None:
    assert isinstance(execute(sender, text), CommandResult)


@settings(max_examples=200, deadline=None)
@given(SENDERS, st.text())
def test_any_text_never_raises(sender: CommandSender, text: str) -> None:
    assert isinstance(execute(sender, text), CommandResult)


@settings(max_examples=200, deadline=None)
@given(SENDERS, st.lists(SEGMENTS, max_size=6).map(Message))
def test_any_message_never_raises(sender: CommandSender, message: Message) -> None:
    assert isinstance(execute(sender, message), CommandResult)
