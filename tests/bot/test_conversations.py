"""Conversations: `ctx.prompt` waits in the host for the same user's next message in the same chat,
in-process and in a worker, over a real reverse-WebSocket connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.host import Host

from .onebot_impl import OneBotImpl, group_message, private_message
from .test_dispatch import sent_texts
from .test_host import free_port

PLUGIN = """
from plughost.sdk import CommandContext, Message, Plugin
from plughost.sdk.conversations import ConversationError, MessageContext

plugin = Plugin()

@plugin.on_message(keyword="weather")
async def weather(ctx: MessageContext) -> str:
    city = await ctx.prompt("Which city?", timeout=5)
    days = await ctx.prompt("How many days?", type=int, retries=1, timeout=5)
    return f"{city}: sunny for {days} days"

@plugin.command("photo")
async def photo(ctx: CommandContext) -> str:
    picture = await ctx.prompt("Send the photo", type=Message, timeout=5)
    return f"got {[s.type for s in picture]}"

@plugin.on_message(keyword="quick")
async def quick(ctx: MessageContext) -> str:
    try:
        await ctx.prompt("Answer fast", timeout=0.2)
    except ConversationError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "answered"

@plugin.on_message(keyword="wait")
async def wait(ctx: MessageContext) -> str:
    return await ctx.prompt("Waiting for you", timeout=30)
"""


CALL_TIMEOUT_S = 2.0  # the plugin's call timeout: a prompt's wait does not count against it


@dataclass
class Chat:
    host: Host
    impl: OneBotImpl
    sent: int = 0

    async def say(self, event: dict[str, Any]) -> None:
        await self.impl.push(event)

    async def replies(self, count: int) -> list[str]:
        """The texts of the next `count` messages the bot sends."""
        await self.impl.wait_actions(self.sent + count)
        texts = sent_texts(self.impl.actions[self.sent : self.sent + count])
        self.sent += count
        return texts


@pytest.fixture(params=["none", "process"], ids=["in-process", "worker"])
async def chat(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Chat]:
    port = free_port()
    (tmp_path / "plughost.toml").write_text(
        f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\naccess_token = "t"\n'
    )
    plugin_dir = tmp_path / "plugins" / "asker"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text(
        f'id = "asker"\nversion = "1.0.0"\nisolation = "{request.param}"\n\n[limits]\ntimeout_s = {CALL_TIMEOUT_S}\n'
    )
    (plugin_dir / "__init__.py").write_text(PLUGIN)
    impl = OneBotImpl()
    async with Host(tmp_path) as host, OneBotAdapter(host.bot_settings.bots, host.dispatcher):
        instance = host.manager.get_plugin("asker")
        assert instance is not None and instance.is_enabled, instance and instance.error
        await impl.connect_reverse(f"ws://127.0.0.1:{port}/onebot/v11/ws", token="t")
        yield Chat(host, impl)
        await impl.close()


async def test_a_prompt_gets_the_same_users_next_message_typed_and_re_asked(chat: Chat) -> None:
    await chat.say(group_message("weather please", message_id=1, user_id=7))
    assert await chat.replies(1) == ["Which city?"]
    await chat.say(group_message("not me", message_id=2, user_id=8))  # another user: dispatched as usual
    await chat.say(private_message("Oslo", message_id=3, user_id=7))  # same user, other chat: not the answer
    await chat.say(group_message("Oslo", message_id=4, user_id=7))
    assert await chat.replies(1) == ["How many days?"]
    await chat.say(group_message("three", message_id=5, user_id=7))  # not an int: re-asked once
    assert await chat.replies(2) == ["cannot parse 'three' as an integer; please try again.", "How many days?"]
    await chat.say(group_message("3", message_id=6, user_id=7))
    assert await chat.replies(1) == ["Oslo: sunny for 3 days"]
    lane = chat.host.dispatcher.lanes["qq"]
    assert lane.stats.plugin_failures == 0 and not chat.host.dispatcher.conversations.waiting


async def test_a_picture_answers_a_message_prompt_and_is_refused_as_text(chat: Chat) -> None:
    picture = [{"type": "image", "data": {"file": "cat.png"}}]
    await chat.say(group_message("/photo", message_id=1))
    assert await chat.replies(1) == ["Send the photo"]
    await chat.say(group_message(picture, message_id=2))
    assert await chat.replies(1) == ["got ['image']"]
    await chat.say(group_message("weather", message_id=3))
    assert await chat.replies(1) == ["Which city?"]
    await chat.say(group_message(picture, message_id=4))  # text expected: re-asked (2 retries by default)
    assert await chat.replies(2) == ["expected text, got [image]; please try again.", "Which city?"]


async def test_timeouts_and_a_second_prompt_are_clear_errors(chat: Chat) -> None:
    await chat.say(group_message("quick", message_id=1))
    assert await chat.replies(2) == ["Answer fast", "PromptTimeout: no answer within 0.2 s"]
    await chat.say(group_message("wait", message_id=2))
    assert await chat.replies(1) == ["Waiting for you"]
    await chat.say(private_message("quick", message_id=3))  # the same user, another chat: its own conversation
    assert await chat.replies(2) == ["Answer fast", "PromptTimeout: no answer within 0.2 s"]
    await chat.say(group_message("here I am", message_id=4))
    assert await chat.replies(1) == ["here I am"]


async def test_disabling_the_plugin_cancels_its_conversations(chat: Chat) -> None:
    await chat.say(group_message("weather", message_id=1))
    assert await chat.replies(1) == ["Which city?"]
    await chat.host.manager.disable_plugin("asker")
    [reply] = await chat.replies(1)
    assert reply == "the conversation ended: plugin 'asker' was disabled"
    assert not chat.host.dispatcher.conversations.waiting


async def test_waiting_for_the_answer_does_not_count_against_the_call_timeout(chat: Chat) -> None:
    await chat.say(group_message("wait", message_id=1))
    assert await chat.replies(1) == ["Waiting for you"]
    await asyncio.sleep(CALL_TIMEOUT_S * 1.5)  # the user takes longer than the plugin's call timeout
    await chat.say(group_message("sorry, here", message_id=2))
    assert await chat.replies(1) == ["sorry, here"]
    assert chat.host.dispatcher.lanes["qq"].stats.plugin_failures == 0
