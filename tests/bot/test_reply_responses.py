"""An event's replies leave without holding its worker for the response: the response (or its
failure) is accounted for when it comes, and the event counts as finished only then."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from .chat_host import chat_host
from .onebot_impl import OneBotImpl, group_message, ok

ECHO = """
from plughost.sdk import MessageEvent, Plugin, Reply
plugin = Plugin()

@plugin.route("message", "Group")
async def echo(ev: MessageEvent) -> Reply:
    return Reply.of("re: " + ev.plain_text())
"""
ONE_WORKER = "max_in_flight = 1\naction_timeout_s = {timeout}\n"


def replied(impl: OneBotImpl) -> list[str]:
    return [a["params"]["message"][0]["data"]["text"] for a in impl.actions if a["action"] == "send_group_msg"]


async def test_a_reply_waiting_for_its_response_does_not_hold_the_only_worker(tmp_path: Path) -> None:
    held: list[dict[str, Any]] = []

    def hold_the_first(params: dict[str, Any]) -> dict[str, Any] | None:
        held.append(params)
        return None if len(held) == 1 else ok({"message_id": len(held)})  # the first is never answered

    async with chat_host(tmp_path, {"echo": ECHO}, toml=ONE_WORKER.format(timeout=30)) as (host, impl):
        impl.custom["send_group_msg"] = hold_the_first
        lane = host.dispatcher.lanes["qq"]
        await impl.push(group_message("one", message_id=1))
        await impl.push(group_message("two", message_id=2))
        await impl.wait_actions(2, "send_group_msg")  # the second event was dispatched by the same worker
        assert replied(impl) == ["re: one", "re: two"]
        await lane.wait_finished(2)  # the lifecycle event and "two"; "one" waits for its response
        assert lane.stats.finished == 2 and lane.stats.answered == 2 and lane.stats.send_failures == 0
        assert not lane.idle.is_set()  # a reply is still unanswered


async def test_a_reply_the_implementation_refuses_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with chat_host(tmp_path, {"echo": ECHO}, toml=ONE_WORKER.format(timeout=30)) as (host, impl):
        impl.custom["send_group_msg"] = lambda params: {"status": "failed", "retcode": 120, "wording": "muted"}
        lane = host.dispatcher.lanes["qq"]
        with caplog.at_level(logging.WARNING, "plughost.bot.dispatch"):
            await impl.push(group_message("hello", message_id=1))
            await lane.wait_finished(2)
        assert lane.stats.send_failures == 1 and lane.stats.answered == 1
        assert any("send_group_msg failed" in r.getMessage() and "muted" in r.getMessage() for r in caplog.records)
        impl.custom.pop("send_group_msg")
        await impl.push(group_message("again", message_id=2))  # the lane goes on
        await lane.wait_finished(3)
        assert replied(impl) == ["re: hello", "re: again"] and lane.stats.send_failures == 1


async def test_a_reply_never_answered_fails_after_the_action_timeout(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"echo": ECHO}, toml=ONE_WORKER.format(timeout=0.2)) as (host, impl):
        impl.custom["send_group_msg"] = lambda params: None
        lane = host.dispatcher.lanes["qq"]
        await impl.push(group_message("hello", message_id=1))
        async with asyncio.timeout(10):
            await lane.wait_finished(2)  # finished once the response timed out
        assert lane.stats.send_failures == 1
        assert lane.idle.is_set() and not host.dispatcher.lanes["qq"].bot.pending  # type: ignore[attr-defined]


async def test_a_reply_whose_connection_drops_before_the_response_fails(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"echo": ECHO}, toml=ONE_WORKER.format(timeout=30)) as (host, impl):
        impl.custom["send_group_msg"] = lambda params: "drop"  # the implementation hangs up instead
        lane = host.dispatcher.lanes["qq"]
        await impl.push(group_message("hello", message_id=1))
        async with asyncio.timeout(10):
            await lane.wait_finished(2)
        assert lane.stats.send_failures == 1


async def test_actions_to_an_implementation_that_stops_reading_wait_for_it(tmp_path: Path) -> None:
    """Flow control: while the implementation reads nothing, sends wait (the host's buffer stays
    bounded) and go on, all of them in order, once it reads again."""
    async with chat_host(tmp_path, {"echo": ECHO}) as (host, impl):
        bot = host.dispatcher.lanes["qq"].bot
        connection = bot._send.__self__  # type: ignore[attr-defined]  # the host's end of the WebSocket
        impl.connections[0].transport.pause_reading()  # type: ignore[attr-defined]
        big = "x" * 65536
        reports: list[Exception | None] = []
        paused_seen, all_reported = asyncio.Event(), asyncio.Event()
        total = 400

        def report(data: Any, error: Exception | None) -> None:
            reports.append(error)
            if len(reports) == total:
                all_reported.set()

        async def send_all() -> None:
            for n in range(total):
                was_paused = connection.paused
                if was_paused:
                    paused_seen.set()
                await bot.post_action("send_group_msg", {"group_id": 1, "message": f"{n} {big}"}, report)
                assert not (was_paused and connection.paused), "a send went out while the connection was paused"

        sender = asyncio.create_task(send_all())
        async with asyncio.timeout(30):
            await paused_seen.wait()  # the buffer reached its limit: the next send waits
            assert connection.transport.get_write_buffer_size() < 4 * len(big)
            impl.connections[0].transport.resume_reading()  # type: ignore[attr-defined]
            await sender
            sent = await impl.wait_actions(total, "send_group_msg", timeout=30)
            await all_reported.wait()
        assert [int(a["params"]["message"].split(" ", 1)[0]) for a in sent] == list(range(total))
        assert reports == [None] * total
