"""Message matchers and conversations, measured in one run through `Dispatcher.process` of a real
`Host` (in-process plugins, no sockets: the pipeline's own cost).

- dispatch cost per chat message with 200 keyword/regex matchers across 20 plugins vs the same 20
  plugins without matchers (ordinary chatter that matches none: the common case), target ≤ 1.5×;
- a message that one of the 200 matchers answers, for reference;
- a conversation round trip (a message whose matcher prompts → the answer resolves the prompt →
  the reply) vs a plain command round trip (message → command → reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Row

from plughost.bot.config import BotConfig
from plughost.host import Host
from plughost.sdk.bot import BotApi
from plughost.sdk.events import parse_event

EVENTS = 20_000
BATCH = 500
ROUND_TRIPS = 2_000
PLUGINS = 20
CHATTER = ["hello everyone, how are you doing today?", "lol that's so funny", "see you tomorrow at 5",
           "did anyone watch the game last night", "ok"]  # fmt: skip

MATCHERS = """
from plughost.sdk import Plugin
plugin = Plugin()
{handlers}
"""
KEYWORD = """
@plugin.on_message(keyword="{word}", ignore_case={fold})
async def kw{n}() -> str:
    return "{word}"
"""
REGEX = """
@plugin.on_message(regex=r"{pattern}")
async def rx{n}(ev) -> str:
    return "regex {n}"
"""
COMMAND = """
from plughost.sdk import CommandContext, Plugin
plugin = Plugin()

@plugin.command("c{n}")
async def run(ctx: CommandContext, text: str = "") -> str:
    return text
"""
CONVERSATION = """
from plughost.sdk import CommandContext, Plugin
from plughost.sdk.conversations import MessageContext
plugin = Plugin()

@plugin.on_message(fullmatch="ask")
async def ask(ctx: MessageContext) -> str:
    return await ctx.prompt("?", timeout=10)

@plugin.command("echo")
async def echo(ctx: CommandContext, text: str) -> str:
    return text
"""
PATTERNS = [r"^roll (\\d+)d(\\d+)$", r"(?P<city>\\w+) weather{n}", r"remind me in (?P<m>\\d+) ?min{n}",
            r"^/?translate{n} (?P<text>.+)", r"(?P<what>.+)天气{n}"]  # fmt: skip


class CountingBot(BotApi):
    """Answers every action at once; `sent` is set on each send."""

    def __init__(self) -> None:
        self.bot_id, self.self_id = "bench", 10001
        self.sent = asyncio.Event()
        self.count = 0

    async def call_action(self, action: str, params: Any = None, *, timeout: float | None = None) -> Any:
        self.count += 1
        self.sent.set()
        return {"message_id": self.count}


def _workspace(root: Path, with_matchers: bool) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for p in range(PLUGINS):
        directory = root / "plugins" / f"p{p}"
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "p{p}"\nversion = "1.0.0"\n')
        if with_matchers:
            handlers = [KEYWORD.format(word=f"word{p}x{n}", fold=n % 2 == 0, n=n) for n in range(5)]
            handlers += [REGEX.format(pattern=PATTERNS[n].format(n=f"{p}x{n}"), n=n) for n in range(5)]
            (directory / "__init__.py").write_text(MATCHERS.format(handlers="".join(handlers)))
        else:
            (directory / "__init__.py").write_text(COMMAND.format(n=p))


def _message(text: str, message_id: int, user_id: int = 456) -> dict[str, Any]:
    return {
        "time": 1, "self_id": 10001, "post_type": "message", "message_type": "group", "sub_type": "normal",
        "message_id": message_id, "group_id": 123, "user_id": user_id, "message": text, "raw_message": text,
        "font": 0, "sender": {"user_id": user_id, "nickname": "u"},
    }  # fmt: skip


async def _per_event_us(roots: list[Path], texts: list[list[str]]) -> list[float]:
    """µs per event through each workspace's pipeline, measured in alternating batches (so that a
    busy moment of the shared machine weighs on every workspace alike)."""
    async with contextlib.AsyncExitStack() as stack:
        runs = []
        for root, chatter in zip(roots, texts, strict=True):
            host = await stack.enter_async_context(Host(root))
            config = BotConfig(id="b", transport="ws-reverse", bind="127.0.0.1:0")
            lane = host.dispatcher.attach("b", config, CountingBot())
            events = [parse_event(_message(chatter[n % len(chatter)], n + 1)) for n in range(EVENTS)]
            runs.append((host.dispatcher.process, lane, events))
        spent = [0.0] * len(runs)
        for start in range(0, EVENTS, BATCH):
            for n, (process, lane, events) in enumerate(runs):
                began = time.perf_counter()
                for event in events[start : start + BATCH]:
                    await process(lane, event)
                spent[n] += time.perf_counter() - began
    return [total / EVENTS * 1e6 for total in spent]


async def _round_trips(root: Path) -> tuple[float, float]:
    shutil.rmtree(root, ignore_errors=True)
    directory = root / "plugins" / "talk"
    directory.mkdir(parents=True)
    (directory / "plugin.toml").write_text('id = "talk"\nversion = "1.0.0"\n')
    (directory / "__init__.py").write_text(CONVERSATION)
    async with Host(root) as host:
        bot = CountingBot()
        lane = host.dispatcher.attach("b", BotConfig(id="b", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        process = host.dispatcher.process
        ids = iter(range(1, 10 * ROUND_TRIPS))
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            await process(lane, parse_event(_message("/echo hi", next(ids))))
        command_us = (time.perf_counter() - started) / ROUND_TRIPS * 1e6
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            bot.sent.clear()
            asking = asyncio.ensure_future(process(lane, parse_event(_message("ask", next(ids)))))
            await bot.sent.wait()  # the question went out: the conversation is open
            await process(lane, parse_event(_message("Oslo", next(ids))))
            result = await asking
            assert result.status == "matcher", result
        conversation_us = (time.perf_counter() - started) / ROUND_TRIPS * 1e6
    return command_us, conversation_us


def run() -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="plughost-bench-matchers-"))
    try:
        _workspace(root / "none", with_matchers=False)
        _workspace(root / "matchers", with_matchers=True)
        roots = [root / "none", root / "matchers", root / "matchers"]
        texts = [CHATTER, CHATTER, ["tell me the Word7X3 now"]]
        none, many, hit = min((asyncio.run(_per_event_us(roots, texts)) for _ in range(2)), key=lambda r: r[1] / r[0])
        command_us, conversation_us = min(asyncio.run(_round_trips(root / "talk")) for _ in range(2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = many / none
    return [
        Row("dispatch per chat message, 20 plugins, no matchers", none, "µs"),
        Row(
            "dispatch per chat message, 200 keyword/regex matchers (none match)",
            many,
            "µs",
            comparison=f"{none:.1f} µs without matchers",
        ),
        Row("  ratio with / without matchers", ratio, "×", target="≤ 1.5×", ok=ratio <= 1.5),
        Row("dispatch per message answered by one of 200 matchers", hit, "µs", comparison="handler call + reply"),
        Row("plain command round trip (message → reply)", command_us, "µs"),
        Row(
            "conversation round trip (message → prompt → answer → reply)",
            conversation_us,
            "µs",
            comparison=f"{conversation_us / command_us:.1f}× the command round trip",
        ),
    ]


if __name__ == "__main__":
    from common import print_rows

    print_rows("matchers and conversations", run())
