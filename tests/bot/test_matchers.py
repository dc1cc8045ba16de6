"""Message matchers end to end: a OneBot implementation on a real reverse WebSocket → the dispatcher
→ matchers of in-process plugins; worker and native (compiled C) plugins through a real `Host`."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.bot.matching import MAX_TIMEOUTS, required_literal
from plughost.errors import PlugHostError
from plughost.host import Host
from plughost.sdk import Plugin
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.events import parse_event
from plughost.sdk.matchers import MatcherError
from tests.conftest import require_tool

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import OneBotImpl, group_message, private_message
from .test_dispatch import EchoCommands, Env, sent_texts
from .test_protocol import RecordingBot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def chat(plugins: tuple[GuardedPlugins, LoadPlugin]) -> AsyncIterator[Env]:
    directory, load = plugins
    config = BotConfig(id="main", transport="ws-reverse", bind="127.0.0.1:0", access_token="tok")
    impl = OneBotImpl()
    async with (
        Dispatcher(directory, commands=EchoCommands()) as dispatcher,
        OneBotAdapter([config], dispatcher) as adapter,
    ):
        await impl.connect_reverse(f"ws://127.0.0.1:{adapter.ports['main']}/onebot/v11/ws", token="tok")
        async with asyncio.timeout(5):
            lane = await dispatcher.wait_for_bot("main")
            await lane.wait_finished(1)
        yield Env(impl, dispatcher, adapter, directory, load, EchoCommands())
        await impl.close()


WEATHER = """
import re
from plughost.sdk import Message
from plughost.sdk.conversations import MessageContext

@plugin.on_message(keyword="weather", ignore_case=True)
async def weather(ctx: MessageContext) -> str:
    return f"sunny ({ctx.text})"

@plugin.on_message(regex=r"^roll (?P<count>\\d+)d(?P<sides>\\d+)$")
async def roll(count: int, sides: int, match: re.Match[str]) -> str:
    return f"rolled {count * sides} from {match.group(0)!r}"

@plugin.on_message(startswith=("hi ", "hello "))
async def greet(text: Message) -> str:
    return "greeting " + text.plain_text().split()[-1]

@plugin.on_message(endswith="?")
async def question(ev: MessageEvent) -> str:
    return "a question"

@plugin.on_message(fullmatch="ping", to_me=True)
async def ping() -> str:
    return "pong"
"""


def at(qq: int) -> dict[str, Any]:
    return {"type": "at", "data": {"qq": str(qq)}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "data": {"text": value}}


async def test_each_kind_of_matcher_answers_over_a_real_connection(chat: Env) -> None:
    await chat.load("weather", WEATHER)
    with pytest.raises(PlugHostError, match="only regex= matchers give"):  # `match` by name on a startswith
        await chat.load("broken", 'from plughost.sdk import MessageEvent\n'
                        '@plugin.on_message(keyword="x")\nasync def f(match) -> None: ...\n')  # fmt: skip
    messages = [
        group_message("What's the WEATHER like", message_id=1),  # keyword, case folded
        group_message("roll 3d6", message_id=2),  # regex: named groups converted to int, the match object
        group_message([at(10001), text(" roll 1d4")], message_id=3),  # matched after the @bot mention
        group_message("hello there", message_id=4),  # startswith
        group_message("is it raining?", message_id=5),  # endswith
        group_message("ping", message_id=6),  # fullmatch, but to_me: not in a group without a mention
        group_message([at(10001), text("ping")], message_id=7),  # … with one
        private_message("ping", message_id=8),  # … and in private
        group_message("nothing to see", message_id=9),
    ]
    await chat.push(*messages)
    await chat.impl.wait_actions(7)
    assert sent_texts(chat.impl.actions) == [
        "sunny (What's the WEATHER like)",
        "rolled 18 from 'roll 3d6'",
        "rolled 4 from 'roll 1d4'",
        "greeting there",
        "a question",
        "pong",
        "pong",
    ]
    assert chat.lane.stats.plugin_failures == 0


async def test_one_ordering_rule_commands_then_priority_then_matchers_before_routes(chat: Env) -> None:
    await chat.load("low", """
        @plugin.on_message(keyword="echo")
        async def echo_word() -> str:
            return "low matcher"

        @plugin.on_message(keyword="news")
        async def news() -> str:
            return "low matcher"
    """, priority=1)  # fmt: skip
    await chat.load("high", """
        @plugin.route("message", "Group")
        async def everything(ev: MessageEvent) -> Reply | None:
            return Reply.of("high route", stop=False) if "news" in ev.plain_text() else None

        @plugin.on_message(keyword="sport")
        async def sport() -> Block:
            return Block()

        @plugin.route("message", "Group")
        async def after_block(ev: MessageEvent) -> str | None:
            return "never: the matcher above blocked" if "sport" in ev.plain_text() else None
    """, priority=10)  # fmt: skip
    await chat.push(
        group_message("echo hi", message_id=1),  # a command: matchers never see it
        group_message("news today", message_id=2),  # high's route (stop=False) and then low's matcher
        group_message("sport today", message_id=3),  # high's matcher blocks before high's route
    )
    await chat.impl.wait_actions(3)
    await chat.settle()
    assert sent_texts(chat.impl.actions) == ["bare:hi", "high route", "low matcher"]
    assert chat.lane.stats.processed == 4  # the connect event and the three messages


async def test_a_reply_to_the_bots_message_is_addressed_to_it(chat: Env) -> None:
    await chat.load("pinger", """
        @plugin.on_message(keyword="again", to_me=True)
        async def again() -> str:
            return "once more"

        @plugin.on_message(fullmatch="start")
        async def start() -> str:
            return "started"
    """)  # fmt: skip
    await chat.push(group_message("start", message_id=1))
    [sent] = await chat.impl.wait_actions(1)
    assert sent_texts([sent]) == ["started"]
    bot_message_id = 1000  # the first id the implementation answered a send with
    await chat.push(
        group_message("again", message_id=2),  # not addressed to the bot
        group_message([{"type": "reply", "data": {"id": "999"}}, text("again")], message_id=3),  # someone else's
        group_message([{"type": "reply", "data": {"id": str(bot_message_id)}}, text("again")], message_id=4),
    )
    await chat.impl.wait_actions(2)
    await chat.settle()
    assert sent_texts(chat.impl.actions) == ["started", "once more"]


async def test_a_catastrophic_regex_times_out_and_the_lane_keeps_serving(
    chat: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await chat.load("slow", """
        @plugin.on_message(regex=r"(a|aa)+$")
        async def never(ev: MessageEvent) -> str:
            return "this pattern backtracks exponentially on a's followed by something else"
    """, priority=10)  # fmt: skip
    await chat.load("fast", """
        @plugin.on_message(keyword="hello")
        async def hello() -> str:
            return "hello back"
    """)  # fmt: skip
    evil = "a" * 60 + "!"
    with caplog.at_level(logging.WARNING, logger="plughost.bot.matching"):
        await chat.push(*(group_message(evil, message_id=n) for n in range(1, MAX_TIMEOUTS + 2)))
        await chat.push(group_message("hello " + evil, message_id=99))
        await chat.impl.wait_actions(1)
    assert sent_texts(chat.impl.actions) == ["hello back"]
    index = chat.dispatcher._current_index()
    [slow] = [e.matcher for e, _ in index.routes["message"] if e.plugin_id == "slow"]
    assert slow is not None and slow.switched_off and slow.timeouts == MAX_TIMEOUTS  # the last ones were skipped
    assert "switched off until the plugins change" in caplog.text and "'slow'" in caplog.text
    assert chat.lane.stats.processed == MAX_TIMEOUTS + 3  # every event was processed: nothing lost


async def test_a_failing_matcher_gets_the_generic_reply_and_counts_on_the_breaker(chat: Env) -> None:
    await chat.load("flaky", """
        from plughost.sdk.commands import UserError

        @plugin.on_message(keyword="crash")
        async def crash() -> str:
            raise RuntimeError("internal detail the user must not see")

        @plugin.on_message(keyword="oops")
        async def oops() -> str:
            raise UserError("say it differently")
    """)  # fmt: skip
    breaker = chat.directory.guard.breaker("flaky")
    await chat.push(group_message("crash now", message_id=1))
    await chat.impl.wait_actions(1)
    assert breaker.consecutive_failures == 1  # the crash counts on the breaker
    await chat.push(group_message("oops", message_id=2))
    await chat.impl.wait_actions(2)
    first, second = sent_texts(chat.impl.actions)
    assert first.startswith("Sorry, that failed (error ") and "internal" not in first
    assert second == "say it differently"  # the user's mistake: its message, not a plugin failure


def test_bad_matchers_are_refused_when_declared_naming_plugin_and_function() -> None:
    plugin = Plugin(id="bad", version="1.0.0")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"regex": "(unclosed"}, "invalid regex '(unclosed': missing ) at position 9"),
        ({"keyword": ""}, "an empty keyword pattern would match every message"),
        ({"keyword": "a", "regex": "b"}, "give one of keyword=, startswith=, endswith=, fullmatch=, regex=, not"),
        ({"startswith": ["ok", 3]}, "startswith= takes a string or strings"),
    ]
    for options, message in cases:

        async def handler() -> None: ...

        with pytest.raises(MatcherError) as caught:
            plugin.on_message(**options)(handler)
        error = str(caught.value)
        assert error.startswith("plugin 'bad': on_message handler '") and ".handler': " in error  # plugin, function
        assert message in error and "\n" not in error
    assert plugin.describe().matchers == ()  # nothing half-registered
    with pytest.raises(MatcherError, match=r"plugin 'native': matcher 'h': invalid regex '\(\?P<x'"):
        Descriptor.from_json({"matchers": [{"handler": "h", "type": "regex", "patterns": ["(?P<x"]}]}, id="native")
    with pytest.raises(MatcherError, match="unknown type 'glob'"):
        Descriptor.from_json({"matchers": [{"handler": "h", "type": "glob", "patterns": ["*"]}]}, id="native")


def test_required_literals_prefilter_only_what_every_match_contains() -> None:
    assert required_literal(r"^roll (\d+)d(\d+)$") == "roll "
    assert required_literal(r"(?P<city>\w+)天气") == "天气"
    assert required_literal(r"(foo|bar)baz") == "baz"
    assert required_literal(r"x?yz*") == "y"
    assert required_literal(r"(?i)weather") == ""  # case-insensitive: no literal can be trusted
    assert required_literal(r"Weather 天气", caseless_only=True) == " 天气"
    assert required_literal(r"\p{Han}+") == ""  # not `re` syntax: no prefilter, always tested


RUNTIME_PLUGIN = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.on_message(regex=r"^roll (?P<count>\\d+)d(?P<sides>\\d+)$")
async def roll(count: int, sides: int, ctx) -> str:
    return f"{ctx.text}: {count}x{sides}"
"""


@pytest.fixture(scope="module")
def matcher_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = require_tool("gcc", "the native matcher plugin is compiled for this test")
    out = tmp_path_factory.mktemp("matcher-c") / "matcher_bot.so"
    done = subprocess.run(
        [gcc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", f"-I{ROOT / 'sdk' / 'c'}", "-o", str(out),
         str(Path(__file__).parent / "plugins" / "matcher_bot.c")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


async def test_worker_and_native_plugins_declare_matchers_and_get_the_same_payload(
    tmp_path: Path, matcher_c: Path
) -> None:
    worker_dir = tmp_path / "plugins" / "worker"
    worker_dir.mkdir(parents=True)
    (worker_dir / "plugin.toml").write_text('id = "worker"\nversion = "1.0.0"\nisolation = "process"\npriority = 5\n')
    (worker_dir / "__init__.py").write_text(RUNTIME_PLUGIN.replace("^roll", "^throw"))
    native_dir = tmp_path / "plugins" / "matcher-c"
    native_dir.mkdir(parents=True)
    shutil.copy(matcher_c, native_dir / "matcher_bot.so")
    (native_dir / "plugin.toml").write_text(
        'id = "matcher-c"\nversion = "1.0.0"\nruntime = "native"\nentry = "matcher_bot.so"\n'
    )
    async with Host(tmp_path) as host:
        for plugin_id in ("worker", "matcher-c"):
            instance = host.manager.get_plugin(plugin_id)
            assert instance is not None and instance.is_enabled, instance and instance.error
        native = host.manager.get_plugin("matcher-c")
        assert native is not None and native.descriptor is not None
        assert [m.handler for m in native.descriptor.matchers] == ["on_roll", "on_ping"]
        bot = RecordingBot()
        lane = host.dispatcher.attach("n", BotConfig(id="n", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        results = [
            await host.dispatcher.process(lane, parse_event(message))
            for message in (
                group_message("throw 2d8", message_id=1),
                group_message("roll 3d6", message_id=2),
                group_message("PING", message_id=3),  # to_me only: not answered in the group
                private_message("say Ping", message_id=4),
            )
        ]
    assert [(r.status, r.answered_by) for r in results] == [
        ("matcher", "worker"), ("matcher", "matcher-c"), ("unhandled", None), ("matcher", "matcher-c")
    ]  # fmt: skip
    texts = ["".join(s["data"].get("text", "") for s in p["message"]) for _, p in bot.actions]
    assert texts == ["throw 2d8: 2x8", "native rolled 3d6", "native pong"]


def test_what_a_plugin_offers_counts_every_kind_of_handler() -> None:
    """`/plugins`, the start-up table and `plugins list` say what a plugin offers; a plugin that only
    matches messages, intercepts and runs on a schedule used to look as if it offered nothing."""
    from plughost.sdk import Plugin

    plugin = Plugin(id="busy", version="1.0.0")

    @plugin.on_message(keyword="weather")
    async def weather() -> str:
        return "sunny"

    @plugin.on_message(regex=r"roll (?P<sides>\d+)")
    async def roll(sides: int) -> str:
        return str(sides)

    @plugin.pre_handle
    async def allow() -> bool:
        return True

    @plugin.schedule(every=60)
    async def tick() -> None:
        return None

    @plugin.route("notice", "GroupPoke")
    async def poked() -> None:
        return None

    assert plugin.describe().offers() == ["1 route", "2 matchers", "1 interceptor", "1 schedule"]
    assert Plugin(id="idle", version="1.0.0").describe().offers() == []
