"""Console chat simulation: typed lines become chat events through the real dispatcher and engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from plughost.adapters.console import Console
from plughost.adapters.prompt import CommandCompleter
from plughost.host import Host

PLUGIN = """
from plughost.sdk import (
    Approve, CommandContext, MessageEvent, NoticeEvent, Plugin, Reject, Reply, ReplyBuilder, RequestEvent,
)
from plughost.sdk.conversations import MessageContext

plugin = Plugin()

@plugin.command("roll", description="roll a number", scope="group")
async def roll(ctx: CommandContext, sides: int = 6) -> str:
    return f"rolled {sides}"

@plugin.command("ping", prefix_optional=True)
async def ping(ctx: CommandContext) -> str:
    return "pong"

@plugin.command("secret", role="owner")
async def secret(ctx: CommandContext) -> str:
    return "owner only"

@plugin.pre_handle
async def no_swearing(ev: MessageEvent) -> bool:
    return "darn" not in ev.plain_text()

@plugin.route("message")
async def echo(ev: MessageEvent) -> Reply | None:
    text = ev.plain_text()
    return ReplyBuilder().text("you said ").text(text).face(1).build() if text.startswith("say ") else None

@plugin.route("notice", "GroupPoke", "PrivatePoke")
async def poked(ev: NoticeEvent) -> Reply:
    return Reply.of(f"{ev.route} by {ev.user_id}")

@plugin.on_message(keyword="weather")
async def weather(ctx: MessageContext) -> str:
    city = await ctx.prompt("Which city?", timeout=30)
    days = await ctx.prompt("How many days?", type=int, timeout=30)
    return f"{city}: sunny for {days} days"

@plugin.route("request", "Friend", "GroupAdd")
async def requests(ev: RequestEvent) -> Approve | Reject:
    return Approve("pal") if ev.comment == "please" else Reject("no")
"""


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[Console, list[str]]]:
    (tmp_path / "plughost.toml").write_text("[commands]\nowners = [1]\n")
    plugin_dir = tmp_path / "plugins" / "sim"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "sim"\nversion = "1.0.0"\n')
    (plugin_dir / "__init__.py").write_text(PLUGIN)
    lines: list[str] = []
    async with Host(tmp_path) as host:
        yield Console(host, output=lines.append), lines


async def run(console: Console, lines: list[str], line: str) -> list[str]:
    start = len(lines)
    await console.execute(line)
    return lines[start:]


async def test_simulated_group_chat(console: tuple[Console, list[str]]) -> None:
    c, out = console
    joined = await run(c, out, "/as group 123 456")
    assert joined == ["now chatting in group 123 as 456 (member); /as console to go back"]
    assert c.chat.prompt == "group 123 456> "
    assert await run(c, out, "say hi") == ["bot → group 123: you said say hi[face 1]"]
    assert await run(c, out, "/roll 20") == ["bot → group 123: rolled 20"]
    assert await run(c, out, "[CQ:at,qq=10000] roll 8") == ["bot → group 123: rolled 8"]
    assert await run(c, out, "/secret") == ["bot → group 123: permission denied for this command"]
    assert await run(c, out, "darn it") == ["(blocked by sim)"]
    assert await run(c, out, "nothing to see") == ["(no plugin answered the Group event)"]
    assert await run(c, out, "ping") == ["bot → group 123: pong"]  # prefix_optional: bare text works
    assert await run(c, out, "/poke") == ["bot → group 123: GroupPoke by 456"]
    assert await run(c, out, "/group-request add please") == ["bot approved the group request"]
    assert await run(c, out, "/friend-request 'not now'") == ["bot rejected the friend request"]


async def test_a_prompt_hands_the_console_back_and_the_next_line_answers(console: tuple[Console, list[str]]) -> None:
    c, out = console
    await run(c, out, "/as group 123 456")
    assert await run(c, out, "weather please") == ["bot → group 123: Which city?"]
    assert await run(c, out, "Oslo") == ["bot → group 123: How many days?"]
    assert await run(c, out, "three") == [
        "bot → group 123: cannot parse 'three' as an integer; please try again.",
        "bot → group 123: How many days?",
    ]
    assert await run(c, out, "3") == ["bot → group 123: Oslo: sunny for 3 days"]
    assert await run(c, out, "say hi") == ["bot → group 123: you said say hi[face 1]"]  # no conversation left


async def test_simulated_private_chat_owner_and_back_to_console(console: tuple[Console, list[str]]) -> None:
    c, out = console
    await run(c, out, "/as private 1")
    assert await run(c, out, "/secret") == ["bot → private 1: owner only"]
    assert await run(c, out, "/roll") == []  # group-only command in a private chat: silent
    assert await run(c, out, "/poke") == ["bot → private 1: PrivatePoke by 1"]
    assert await run(c, out, "/friend-request please") == ["bot approved the friend request (remark: pal)"]
    assert await run(c, out, "/group-request") == ["group requests need a group chat: /as group <group_id> <user_id>"]
    assert await run(c, out, "/as console") == ["back to the console"]
    status = "\n".join(await run(c, out, "/status"))
    assert "bot console: 4 events, 4 answered" in status and "0 shed" in status


async def test_stop_quits_while_chatting_as_a_user(console: tuple[Console, list[str]]) -> None:
    c, out = console
    await run(c, out, "/as group 123 456")
    assert not c.host.stop_requested.is_set()
    await run(c, out, "/stop")  # a member may not stop the bot in chat; the one at the console may
    assert c.host.stop_requested.is_set()


async def test_bad_simulation_commands_explain_themselves(console: tuple[Console, list[str]]) -> None:
    c, out = console
    assert (await run(c, out, "/poke"))[0].startswith("pick a chat first")
    missing = (await run(c, out, "/as group abc"))[0]
    assert missing.startswith("/as group: missing arguments\nusage:\n  /as group <group_id:int> <user_id:int>")
    assert (await run(c, out, "/as group 1 2 king"))[0].startswith("'king' is not one of: owner, admin, member")
    assert (await run(c, out, "/as group x 2"))[0].startswith("cannot parse 'x' as an integer")
    assert (await run(c, out, "/as nowhere"))[0].startswith("/as: unknown subcommand 'nowhere'")
    assert c.chat.chat is None  # nothing was switched


async def test_console_help_and_completion_show_the_console_commands(console: tuple[Console, list[str]]) -> None:
    c, out = console
    listing = "\n".join(await run(c, out, "/help"))
    for usage in ("/as private <user_id:int>", "/poke [target:int]", "/friend-request [comment...]", "/group-request"):
        assert usage in listing
    described = "\n".join(await run(c, out, "/help as"))
    assert described.startswith("/as  # chat as a simulated user") and described.endswith("permission: console only")
    completer = CommandCompleter(c.host)
    assert complete(completer, "/a") == ["/as"]
    assert complete(completer, "/as ") == ["console", "group", "private"]
    assert complete(completer, "/help gr") == ["group-request"]
    # a chat user sees none of them
    await run(c, out, "/as group 5 9")
    chat_help = "\n".join(await run(c, out, "/help"))
    assert "/help [topic]" in chat_help and "/as" not in chat_help and "/poke" not in chat_help
    assert await run(c, out, "/help poke") == ["bot → group 5: unknown command: poke, type /help"]


def complete(completer: CommandCompleter, text: str) -> list[str]:
    return sorted(c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True)))


SHADOWED = """
from plughost.sdk import Plugin

plugin = Plugin()

@plugin.command("poke")
def poke(who: int) -> str:
    return f"poked {who}"

perm = plugin.command_group("perm")
@perm.sub("show")
def show() -> str:
    return "demo perm"
"""


async def test_console_commands_shadow_plugin_commands_only_on_the_console(
    console: tuple[Console, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    c, out = console
    demo = c.host.workspace / "plugins" / "demo"
    demo.mkdir()
    (demo / "plugin.toml").write_text('id = "demo"\nversion = "1.0.0"\n')
    (demo / "__init__.py").write_text(SHADOWED)
    await c.host.manager.load_plugin(demo)
    registry = "\n".join(await run(c, out, "/registry"))
    assert "'poke': console wins over demo (console-only command; chat users reach demo's)" in registry
    assert "'perm': console wins over demo (built-in command)" in registry
    assert "/poke  [console, priority 0, console only]  names: poke" in registry
    assert "/poke  [demo, priority 0]  names: poke" in registry  # the chat users' /poke
    warnings = [r.getMessage() for r in caplog.records if "command name conflict" in r.getMessage()]
    assert len(warnings) == 2 and "'poke'" in warnings[0] + warnings[1]
    await run(c, out, "/registry")
    assert len([r for r in caplog.records if "command name conflict" in r.getMessage()]) == 2  # said once
    # a chat user (here: addressed by an @ of the bot) reaches the plugin's /poke
    await run(c, out, "/as group 5 9")
    assert await run(c, out, "[CQ:at,qq=10000] poke 3") == ["bot → group 5: poked 3"]
    assert await run(c, out, "/poke") == ["bot → group 5: GroupPoke by 9"]  # the console's simulation
