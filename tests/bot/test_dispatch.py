"""The dispatch pipeline end to end: a OneBot implementation on a real reverse WebSocket → plugins → actions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.bot.triggers import CommandInvocation
from plughost.sdk.bot import Answer, BotApi, Reply
from plughost.sdk.call import Action
from plughost.sdk.events import ROUTES_BY_KIND

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import OneBotImpl, group_message, notice, private_message, request


class EchoCommands:
    """A minimal command stage: `echo <text>` answers the text; anything else is not a command."""

    def __init__(self) -> None:
        self.seen: list[CommandInvocation] = []

    async def handle(self, invocation: CommandInvocation, bot: BotApi, outbox: list[Action]) -> Answer | None:
        self.seen.append(invocation)
        text = invocation.text.plain_text()
        if text.startswith("echo "):
            return Reply.of(f"{invocation.trigger}:{text[5:]}")
        return None


@dataclass
class Env:
    impl: OneBotImpl
    dispatcher: Dispatcher
    adapter: OneBotAdapter
    directory: GuardedPlugins
    load: LoadPlugin
    commands: EchoCommands

    @property
    def lane(self) -> Any:
        return self.dispatcher.lanes["main"]

    async def settle(self) -> None:
        """Wait until every submitted event was processed."""
        async with asyncio.timeout(5):
            await self.lane.idle.wait()

    async def push(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.impl.push(event)
        self._expected += len(events)
        async with asyncio.timeout(5):
            await self.lane.wait_finished(self._expected)

    _expected: int = 1


@pytest.fixture
async def env(plugins: tuple[GuardedPlugins, LoadPlugin]) -> AsyncIterator[Env]:
    directory, load = plugins
    commands = EchoCommands()
    config = BotConfig(id="main", transport="ws-reverse", bind="127.0.0.1:0", access_token="tok")
    impl = OneBotImpl()
    async with Dispatcher(directory, commands=commands) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        await impl.connect_reverse(f"ws://127.0.0.1:{adapter.ports['main']}/onebot/v11/ws", token="tok")
        async with asyncio.timeout(5):
            lane = await dispatcher.wait_for_bot("main")
            await lane.wait_finished(1)  # the lifecycle event sent on connect
        yield Env(impl, dispatcher, adapter, directory, load, commands)
        await impl.close()


def sent_texts(actions: list[dict[str, Any]]) -> list[str]:
    return ["".join(s["data"].get("text", "") for s in a["params"]["message"]) for a in actions]


async def test_interceptor_blocks_and_skips_after_completion(env: Env) -> None:
    await env.load("guard", """
        @plugin.pre_handle
        async def no_spam(ev: MessageEvent) -> bool:
            return "spam" not in ev.plain_text()

        @plugin.after_completion
        async def audit(ev: MessageEvent, bot: BotApi) -> None:
            await bot.send_private_msg(1, f"audit {ev.message_id}")
    """, priority=10)  # fmt: skip
    await env.load("chat", """
        @plugin.route("message", "Group")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of("seen " + ev.plain_text())
    """)  # fmt: skip
    await env.push(group_message("buy spam", message_id=1), group_message("hello", message_id=2))
    actions = await env.impl.wait_actions(2)
    await env.settle()
    assert [a["action"] for a in env.impl.actions] == ["send_group_msg", "send_private_msg"]
    assert sent_texts(env.impl.actions) == ["seen hello", "audit 2"]
    assert actions[0]["params"]["group_id"] == 123
    assert env.lane.stats.blocked == 1


async def test_the_reply_goes_out_before_after_completion_runs(env: Env) -> None:
    """The pipeline's order: handler → reply → after_completion → outbox. An audit hook that takes
    long must not hold the reply back (here it waits until the test has seen the reply)."""
    await env.load("audit", """
        import asyncio
        gate = asyncio.Event()

        @plugin.after_completion
        async def audit(ev: MessageEvent, bot: BotApi) -> None:
            await gate.wait()
            await bot.send_private_msg(1, f"audited {ev.message_id}")

        @plugin.route("notice", "GroupCard")
        async def open_gate(ev: NoticeEvent) -> None:
            gate.set()
    """, priority=10)  # fmt: skip
    await env.load("chat", """
        @plugin.route("message", "Group")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of("seen " + ev.plain_text())
    """)  # fmt: skip
    await env.impl.push(group_message("hello", message_id=7))
    await env.impl.wait_actions(1)  # before the fix: only after `audit` returned, which waits for this
    assert sent_texts(env.impl.actions) == ["seen hello"]
    await env.push(notice("group_card", group_id=123, user_id=456))
    await env.impl.wait_actions(2)
    await env.settle()
    assert sent_texts(env.impl.actions) == ["seen hello", "audited 7"]
    assert env.lane.stats.answered == 1


async def test_route_answered_by_second_plugin_after_first_continues(env: Env) -> None:
    await env.load("first", """
        @plugin.route("notice", "GroupPoke")
        async def look(ev: NoticeEvent, bot: BotApi) -> None:
            await bot.send_private_msg(9, "first looked")
    """, priority=20)  # fmt: skip
    await env.load("second", """
        @plugin.route("notice", "GroupPoke", "PrivatePoke")
        async def poke(ev: NoticeEvent) -> Reply:
            return Reply.of(f"ouch from {ev.user_id}")
    """, priority=10)  # fmt: skip
    await env.load("third", """
        @plugin.route("notice", "GroupPoke")
        async def never(ev: NoticeEvent) -> Reply:
            return Reply.of("third must not answer")
    """, priority=5)  # fmt: skip
    await env.push(notice("notify", "poke", group_id=123, user_id=456, target_id=10001))
    await env.impl.wait_actions(2)
    assert [(a["action"], t) for a, t in zip(env.impl.actions, sent_texts(env.impl.actions), strict=True)] == [
        ("send_group_msg", "ouch from 456"),
        ("send_private_msg", "first looked"),
    ]


async def test_reply_without_stop_lets_later_plugins_answer(env: Env) -> None:
    await env.load("a", """
        @plugin.route("notice", "GroupRecall")
        async def note(ev: NoticeEvent) -> Reply:
            return Reply.of("a saw it", stop=False)
    """, priority=2)  # fmt: skip
    await env.load("b", """
        @plugin.route("notice", "GroupRecall")
        async def note(ev: NoticeEvent) -> Reply:
            return Reply.of("b saw it")
    """, priority=1)  # fmt: skip
    await env.push(notice("group_recall", group_id=5, user_id=6, operator_id=6, message_id=77))
    await env.impl.wait_actions(2)
    assert sent_texts(env.impl.actions) == ["a saw it", "b saw it"]


async def test_approve_and_reject_produce_the_right_actions(env: Env) -> None:
    await env.load("gate", """
        @plugin.route("request", "Friend", "GroupAdd")
        async def decide(ev: RequestEvent) -> Approve | Reject | None:
            if ev.request_type == "friend":
                return Approve("buddy") if ev.comment == "hi" else Reject("who?")
            return Reject("group is full")
    """)  # fmt: skip
    await env.push(
        request("friend", user_id=1, comment="hi", flag="f1"),
        request("group", "add", group_id=7, user_id=2, comment="", flag="g1"),
    )
    actions = await env.impl.wait_actions(2)
    by_action = {a["action"]: a["params"] for a in actions}
    assert by_action["set_friend_add_request"] == {"flag": "f1", "approve": True, "remark": "buddy"}
    assert by_action["set_group_add_request"] == {
        "flag": "g1", "sub_type": "add", "approve": False, "reason": "group is full"
    }  # fmt: skip


async def test_send_queue_flushed_in_order_even_when_the_callback_fails(env: Env) -> None:
    await env.load("talker", """
        @plugin.route("notice", "FriendAdd")
        async def greet(ev: NoticeEvent, bot: BotApi) -> None:
            for n in range(5):
                await bot.send_private_msg(ev.user_id, f"msg {n}")
            await bot.group(42).text("and to the group").send()
            raise RuntimeError("after queuing")
    """)  # fmt: skip
    await env.push(notice("friend_add", user_id=8))
    actions = await env.impl.wait_actions(6)
    assert sent_texts(actions) == [*(f"msg {n}" for n in range(5)), "and to the group"]
    assert actions[-1]["action"] == "send_group_msg"
    assert env.lane.stats.plugin_failures == 1


async def test_failing_interceptor_fails_open_and_counts_on_the_breaker(env: Env) -> None:
    await env.load("flaky", """
        @plugin.pre_handle
        async def broken(ev: Event) -> bool:
            raise ValueError("interceptor bug")
    """, priority=9)  # fmt: skip
    await env.load("chat", """
        @plugin.route("message")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of("still answered")
    """)  # fmt: skip
    await env.push(private_message("hi", message_id=3))
    actions = await env.impl.wait_actions(1)
    assert actions[0]["action"] == "send_private_msg" and actions[0]["params"]["user_id"] == 456
    assert env.directory.guard.breaker("flaky").consecutive_failures == 1
    # two more failures open the breaker; the isolated interceptor no longer runs, events still flow
    await env.push(*(private_message("again", message_id=n) for n in range(4, 8)))
    assert len(await env.impl.wait_actions(5)) == 5
    assert env.directory.guard.snapshot("flaky")["breaker"]["state"] == "open"


async def test_duplicate_message_ids_are_processed_once(env: Env) -> None:
    await env.load("chat", """
        @plugin.route("message")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of(str(ev.message_id))
    """)  # fmt: skip
    await env.push(*(group_message("x", message_id=50) for _ in range(3)), group_message("y", message_id=51))
    actions = await env.impl.wait_actions(2)
    await env.settle()
    assert sorted(sent_texts(actions)) == ["50", "51"] and len(env.impl.actions) == 2
    assert env.lane.stats.duplicates == 2


async def test_channel_permissions_filter_delivery(env: Env) -> None:
    await env.load("only999", """
        @plugin.route("message")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of("only999")
    """, priority=5, channels=["group:999"])  # fmt: skip
    await env.load("private_only", """
        @plugin.route("message")
        async def answer(ev: MessageEvent) -> Reply:
            return Reply.of("private_only")
    """, priority=4, channels=["private"])  # fmt: skip
    await env.push(group_message("a", message_id=1, group_id=123), group_message("b", message_id=2, group_id=999))
    await env.push(private_message("c", message_id=3))
    actions = await env.impl.wait_actions(2)
    await env.settle()
    assert sent_texts(env.impl.actions) == ["only999", "private_only"]
    assert actions[0]["params"]["group_id"] == 999


async def test_every_route_kind_is_delivered_including_unknown(env: Env) -> None:
    await env.load("all", """
        @plugin.route("notice", "*")
        @plugin.route("request", "*")
        @plugin.route("meta")
        async def record(ev: Event, bot: BotApi) -> None:
            await bot.send_private_msg(1, ev.route)
    """)  # fmt: skip
    from plughost.sdk.events import META_ROUTES, NOTICE_ROUTES, REQUEST_ROUTES

    events: list[dict[str, Any]] = []
    for table, build in ((NOTICE_ROUTES, notice), (REQUEST_ROUTES, request)):
        for key in table:
            kind, _, sub = key.partition(".")
            events.append(build(kind, sub or None, group_id=1, user_id=2, flag="f"))
    events.append(notice("notify", "poke", group_id=0, user_id=2))
    events.append(notice("notify", "poke", group_id=3, user_id=2))
    for key in META_ROUTES:
        kind, _, sub = key.partition(".")
        events.append({"post_type": "meta_event", "meta_event_type": kind, **({"sub_type": sub} if sub else {})})
    events.append(notice("brand_new_notice", "x"))
    await env.push(*events)
    actions = await env.impl.wait_actions(len(events))
    delivered = set(sent_texts(actions))
    expected = ROUTES_BY_KIND["notice"] | ROUTES_BY_KIND["request"] | ROUTES_BY_KIND["meta"]
    # the lifecycle event sent on connect arrives before the plugin loaded
    assert delivered >= (expected - {"LifecycleConnect"}) | {"Unknown:brand_new_notice.x"}


async def test_command_triggers_with_cq_string_messages(env: Env) -> None:
    await env.push(
        group_message("[CQ:at,qq=10001] echo mention", message_id=1),
        group_message("[CQ:reply,id=5]/echo reply", message_id=2),
        group_message("/echo prefix", message_id=3),
        group_message("echo bare", message_id=4),
        group_message("/", message_id=5),
    )
    actions = await env.impl.wait_actions(4)
    assert sorted(sent_texts(actions)) == sorted(["mention:mention", "reply:reply", "prefix:prefix", "bare:bare"])
    bare = next(i for i in env.commands.seen if i.trigger == "bare")
    assert bare.any_command is False  # bare commands are off for groups by default
    assert all(i.text.plain_text() != "" for i in env.commands.seen)


async def test_by_default_a_bot_handles_two_hundred_slow_events_at_once(env: Env) -> None:
    """Plugins that wait (a worker's answer, a web API, a model) keep events in flight: by default
    200 of them are handled at once, none queued behind the others and none shed."""
    await env.load("slow", """
        import asyncio
        gate = asyncio.Event()

        @plugin.route("notice", "GroupUpload")
        async def slow(ev: NoticeEvent, bot: BotApi) -> None:
            await bot.call_action("get_status", {})  # tells the test it is in
            await gate.wait()

        @plugin.route("notice", "GroupCard")
        async def open_gate(ev: NoticeEvent) -> None:
            gate.set()
    """)  # fmt: skip
    assert BotConfig(id="b", transport="ws-reverse", bind="127.0.0.1:1").max_in_flight == env.lane.config.max_in_flight
    for n in range(200):
        await env.impl.push(notice("group_upload", group_id=1, user_id=n))
    await env.impl.wait_actions(200, "get_status")
    assert env.lane.status()["in_flight"] == 200 and env.lane.status()["queued"] == 0
    await env.push(notice("group_card", group_id=1, user_id=0))
    await env.settle()
    assert env.lane.stats.processed == 202 and env.lane.stats.shed == 0  # with the lifecycle event


async def test_overload_sheds_visibly_and_loses_nothing_silently(env: Env) -> None:
    await env.load("slow", """
        import asyncio
        gate = asyncio.Event()

        @plugin.route("notice", "GroupUpload")
        async def slow(ev: NoticeEvent) -> None:
            await gate.wait()

        @plugin.route("notice", "GroupCard")
        async def open_gate(ev: NoticeEvent) -> None:
            gate.set()
    """)  # fmt: skip
    config = BotConfig(id="tiny", transport="ws-reverse", bind="127.0.0.1:0", max_in_flight=2, queue_size=3)
    from plughost.sdk.events import parse_event

    lane = env.dispatcher.attach("tiny", config, env.lane.bot)
    results = [lane.submit(parse_event(notice("group_upload", group_id=1, user_id=n))) for n in range(10)]
    # 2 taken by workers once they run, 3 queued: the rest is shed now or shortly
    await asyncio.sleep(0)
    results += [lane.submit(parse_event(notice("group_upload", group_id=1, user_id=n))) for n in range(10, 20)]
    assert lane.stats.shed == results.count(False) > 0
    assert lane.status()["shed"] == lane.stats.shed
    assert env.lane.submit(parse_event(notice("group_card", group_id=1, user_id=0)))  # opens the gate (other bot)
    async with asyncio.timeout(5):
        await lane.idle.wait()
    assert lane.stats.received == lane.stats.processed + lane.stats.shed
    assert any(row["bot"] == "tiny" and row["shed"] > 0 for row in env.dispatcher.status())
