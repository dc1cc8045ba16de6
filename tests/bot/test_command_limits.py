"""`[commands] max_length` / `max_arguments` on the wire: one member's huge command is refused with a
clear reply, before it is tokenized, and nobody else's command waits for it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.host import Host

from .onebot_impl import OneBotImpl, group_message

PLUGIN = """
import asyncio
from plughost.sdk import Message, Plugin

plugin = Plugin()
gate = asyncio.Event()

@plugin.command("echo", raw=True)
async def echo(args: Message) -> Message:
    return args

@plugin.command("count")
async def count(*words: str) -> str:
    return f"{len(words)} words"

@plugin.command("slow")
async def slow() -> str:
    await gate.wait()
    return "slow done"

@plugin.command("release")
async def release() -> str:
    gate.set()
    return "released"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Chat:
    impl: OneBotImpl
    host: Host
    ws: Any
    sent: int = 1  # the lifecycle event

    async def say(self, text: str, user_id: int) -> None:
        self.sent += 1
        await self.ws.send(json.dumps(group_message(text, message_id=self.sent, user_id=user_id)))

    async def processed(self) -> None:
        """Wait until every event sent so far went through the pipeline."""
        async with asyncio.timeout(10):
            await self.host.dispatcher.lanes["qq"].wait_finished(self.sent)

    def replies(self) -> list[str]:
        return [
            "".join(s["data"].get("text", "") for s in a["params"]["message"])
            for a in self.impl.actions
            if a["action"] == "send_group_msg"
        ]


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    port = free_port()
    (tmp_path / "plughost.toml").write_text(
        f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\n'
        "[commands]\nmax_length = 4000\nmax_arguments = 100\n"
    )
    plugin_dir = tmp_path / "plugins" / "talk"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "talk"\nversion = "1.0.0"\n')
    (plugin_dir / "__init__.py").write_text(PLUGIN)
    impl = OneBotImpl()
    async with Host(tmp_path) as host, OneBotAdapter(host.bot_settings.bots, host.dispatcher):
        ws = await impl.connect_reverse(f"ws://127.0.0.1:{port}/onebot/v11/ws")
        async with asyncio.timeout(5):
            await host.dispatcher.wait_for_bot("qq")
        yield Chat(impl, host, ws)
        await impl.close()


async def test_a_huge_command_is_refused_and_others_are_answered(chat: Chat) -> None:
    await chat.say("/slow", user_id=100)  # a command still running while the others come in
    huge = "/echo " + "a " * 1_000_000  # 2 MB, a million arguments
    await chat.say(huge, user_id=200)
    await chat.say("/echo hi", user_id=300)
    replies = await chat.impl.wait_actions(2)
    texts = chat.replies()
    assert sorted(texts) == sorted([f"the command is too long: {len(huge) - 1} characters, at most 4000", "hi"])
    assert all(len(a["params"]["message"][0]["data"]["text"]) < 100 for a in replies)
    assert "slow done" not in texts  # neither waited for the running command
    await chat.say("/release", user_id=100)
    await chat.impl.wait_actions(4)
    assert sorted(chat.replies()[2:]) == ["released", "slow done"]


async def test_too_many_arguments_are_refused_before_parsing(chat: Chat) -> None:
    await chat.say("/count" + " w" * 150, user_id=200)
    await chat.say("/count" + " w" * 100, user_id=300)  # exactly the limit
    await chat.impl.wait_actions(2)
    assert sorted(chat.replies()) == ["100 words", "the command has too many arguments: 150, at most 100"]


async def test_long_chat_text_that_is_no_command_gets_no_reply(chat: Chat) -> None:
    await chat.say("a " * 10_000, user_id=200)  # no prefix: ordinary chat, not a command
    await chat.say("/nosuchcommand " + "a " * 10_000, user_id=200)  # unknown commands stay silent in chat
    await chat.processed()
    await chat.say("/echo after", user_id=300)
    await chat.impl.wait_actions(1)
    assert chat.replies() == ["after"]
