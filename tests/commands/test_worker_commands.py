"""Commands of a Python plugin running in a worker process: the request crosses as JSON."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost.bot.commands import CommandSender, PluginTarget, ResultKind
from plughost.host import Host
from plughost.sdk.message import Message, Segment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
CONSOLE = CommandSender.console()


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    target = tmp_path / "plugins" / "chat-tools"
    shutil.copytree(EXAMPLES / "chat-tools", target)
    with (target / "plugin.toml").open("a") as manifest:
        manifest.write('isolation = "process"\n')
    async with Host(tmp_path) as running:
        yield running


async def test_typed_arguments_and_context_cross_the_process_boundary(host: Host) -> None:
    engine = host.commands.refresh()
    node = engine.registry.table["greet"]
    assert isinstance(node.target, PluginTarget)
    run = host.commands.execute_command
    assert (await run(CONSOLE, "/greet bob 2 grumpy")).text == "hmpf bob hmpf bob"
    assert (await run(CONSOLE, "/greet amy")).text == "hello amy"  # the handler's default applies in the worker
    assert (await run(CONSOLE, "/remind 2024-05-01T09:00 buy milk")).text == "at 2024-05-01 09:00: buy milk"
    friend = CommandSender.friend(77)
    assert (await run(friend, "/todo add call mom")).text == "added #1"
    assert (await run(friend, "/todo ls")).text == "1. call mom"
    echoed = await run(CONSOLE, Message([Segment.text("/echo a b"), Segment("image", {"file": "x.png"})]))
    assert echoed.replies[0] == Message(
        [Segment.text("echo:"), Segment.text("a b"), Segment("image", {"file": "x.png"})]
    )


async def test_errors_from_a_worker(host: Host) -> None:
    run = host.commands.execute_command
    parse = await run(CONSOLE, "/greet bob many")
    assert parse.kind is ResultKind.PARSE_ERROR and parse.error == "cannot parse 'many' as an integer"
    refused = await run(CONSOLE, "/roll 1")
    assert refused.kind is ResultKind.PARSE_ERROR and refused.text.startswith("a die needs at least 2 sides\nusage:")
    failed = await run(CONSOLE, "/fail")
    assert failed.kind is ResultKind.EXECUTION_ERROR
    source = host.workspace / "plugins" / "chat-tools" / "plugin.py"
    line = source.read_text().splitlines().index('    raise RuntimeError("chat-tools failed on purpose")') + 1
    assert failed.text == f"command /fail failed: RuntimeError at {source}:{line}: chat-tools failed on purpose"


REPLIER = """
from plughost.sdk import CommandContext, Plugin

plugin = Plugin()


@plugin.command("steps")
async def steps(ctx: CommandContext, n: int) -> str:
    for i in range(1, n + 1):
        ctx.reply(f"step {i}")
    return "done"


@plugin.command("quiet")
def quiet(ctx: CommandContext) -> None:
    ctx.reply("only this")
"""


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_ctx_replies_arrive_in_order_in_and_out_of_process(tmp_path: Path, isolation: str) -> None:
    directory = tmp_path / "plugins" / "replier"
    directory.mkdir(parents=True)
    (directory / "plugin.toml").write_text(f'id = "replier"\nversion = "1.0.0"\nisolation = "{isolation}"\n')
    (directory / "plugin.py").write_text(REPLIER)
    async with Host(tmp_path) as host:
        run = host.commands.execute_command
        result = await run(CONSOLE, "/steps 3")
        assert result.kind is ResultKind.SUCCESS
        assert [m.plain_text() for m in result.replies] == ["step 1", "step 2", "step 3", "done"]
        assert [m.plain_text() for m in (await run(CONSOLE, "/quiet")).replies] == ["only this"]
