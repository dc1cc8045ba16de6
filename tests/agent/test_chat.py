"""The agent in chat, through the real dispatcher on a simulated bot: mentions and `/ask`, the
sender's permitted tools, per-conversation history, long answers split, tool calls in the event log."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from plughost.adapters.chat_sim import Chat, ConsoleBot, dispatch_simulated, message_event, simulated_lane
from plughost.agent import AgentChat, attach_agent
from plughost.bot.lane import BotLane
from plughost.host import Host
from plughost.sdk.permissions import PermissionId, PermitteeId
from tests.agent.support import (
    CALCULATOR,
    ModelServer,
    Raw,
    Script,
    answer,
    messages_of,
    model_server,
    scripted,
    tool_calls,
    tool_names,
)
from tests.conftest import PluginWriter

BOT = 10000  # the simulated bot's own id (chat_sim.SIM_SELF_ID)
_message_ids = itertools.count(1)


@dataclass
class Chatting:
    host: Host
    model: ModelServer
    surface: AgentChat
    lane: BotLane
    said: list[str]

    async def say(self, chat: Chat, text: str) -> list[str]:
        """What the bot sends back for `text` from `chat`'s user."""
        before = len(self.said)
        await dispatch_simulated(self.host, self.lane, message_event(chat, text, next(_message_ids)))
        return [line.split(": ", 1)[1] for line in self.said[before:]]


@asynccontextmanager
async def chatting(workspace: Path, script: Script, chat_settings: str = "") -> AsyncIterator[Chatting]:
    async with model_server(script) as model:
        (workspace / "plughost.toml").write_text(
            f'[agent]\nbase_url = "{model.url}"\nmodel = "m"\nsystem_prompt = "Be brief."\n'
            f"[agent.chat]\n{chat_settings}\n",
            encoding="utf-8",
        )
        host = Host(workspace)
        surface = attach_agent(host)
        assert surface is not None
        said: list[str] = []
        async with host:
            yield Chatting(host, model, surface, simulated_lane(host, ConsoleBot(said.append)), said)


GROUP = Chat("group", 7, 100)
OTHER_USER = Chat("group", 8, 100)


async def test_mention_and_ask_go_to_the_agent_with_history(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("calculator", CALCULATOR)
    replies = scripted(answer("hello ann"), answer("your name is ann"), answer("hi bob"))
    async with chatting(workspace, replies) as c:
        assert await c.say(GROUP, f"[CQ:at,qq={BOT}] my name is ann") == ["hello ann"]
        assert await c.say(GROUP, "/ask what is my name?") == ["your name is ann"]
        assert await c.say(OTHER_USER, f"[CQ:at,qq={BOT}] hi") == ["hi bob"]
        assert await c.say(GROUP, "no mention, no command") == []
    first, second, third = c.model.requests
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "my name is ann"},
    ]
    assert second["messages"][1:] == [
        {"role": "user", "content": "my name is ann"},
        {"role": "assistant", "content": "hello ann"},
        {"role": "user", "content": "what is my name?"},
    ]
    assert third["messages"][1:] == [{"role": "user", "content": "hi"}]  # another user: another conversation


async def test_the_model_is_offered_only_the_tools_the_sender_may_use(
    workspace: Path, write_plugin: PluginWriter
) -> None:
    write_plugin("calculator", CALCULATOR)
    replies = scripted(
        answer("no tools for you"),
        tool_calls(("calculator__add", {"a": 2, "b": 3})),
        answer("5"),
    )
    async with chatting(workspace, replies) as c:
        assert await c.say(GROUP, f"[CQ:at,qq={BOT}] 2+3?") == ["no tools for you"]
        grants = c.host.commands.engine.permissions
        grants.permit(PermitteeId.parse("m100.*"), PermissionId.parse("tool:calculator.add"))
        assert await c.say(GROUP, f"[CQ:at,qq={BOT}] 2+3?") == ["5"]
        events = [e for e in c.host.manager.get_events("calculator") if e.metadata.get("agent_tool")]
    first, second, third = c.model.requests
    assert tool_names(first) == []
    assert tool_names(second) == ["calculator__add"]
    assert messages_of(third, "tool")[0]["content"] == "5.0"
    assert [(e.metadata["agent_tool"], e.metadata["caller"], e.metadata["conversation"]) for e in events] == [
        ("calculator__add", "m100.7", "console:g100:u7")
    ]


async def test_long_answers_are_split_and_history_is_bounded(workspace: Path) -> None:
    long = " ".join(f"word{i}" for i in range(40))  # 269 characters
    counter = itertools.count()

    def script(_body: dict[str, object], index: int) -> dict[str, object]:
        return answer(long if index == 0 else f"answer {next(counter)}")

    settings = "max_reply_chars = 100\nhistory_messages = 4\n"
    async with chatting(workspace, script, settings) as c:
        parts = await c.say(GROUP, f"[CQ:at,qq={BOT}] talk")
        for question in ("q1", "q2", "q3"):
            await c.say(GROUP, f"/ask {question}")
    assert len(parts) == 3
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts) == long
    last = c.model.requests[-1]["messages"]
    assert [m["content"] for m in last[1:]] == ["q1", "answer 0", "q2", "answer 1", "q3"]


async def test_who_may_ask(workspace: Path) -> None:
    async with chatting(workspace, scripted(answer("yes"))) as c:
        grants = c.host.commands.engine.permissions
        assert PermissionId.parse("agent:command.ask") in grants.registered()
        grants.cancel(PermitteeId.parse("*"), PermissionId.parse("agent:command.ask"))
        assert await c.say(GROUP, f"[CQ:at,qq={BOT}] hello") == []  # silent, as for an unknown command
        denied = await c.say(GROUP, "/ask hello")
        assert denied and "permission denied" in denied[0]
        grants.permit(PermitteeId.parse("u7"), PermissionId.parse("agent:command.ask"))
        assert await c.say(GROUP, f"[CQ:at,qq={BOT}] hello") == ["yes"]
    assert len(c.model.requests) == 1


async def test_a_failing_model_is_a_reply_not_a_crash(workspace: Path) -> None:
    async with chatting(workspace, scripted(Raw(500, b"down"))) as c:
        said = await c.say(GROUP, f"[CQ:at,qq={BOT}] hello")
        assert len(said) == 1 and said[0].startswith("The model failed: ")
        again = await c.say(GROUP, "/ask hello")
        assert again[0].startswith("The model failed: ")
        assert c.host.dispatcher.lanes["console"].stats.processed == 2


def test_no_agent_without_a_model(workspace: Path) -> None:
    host = Host(workspace)
    assert attach_agent(host) is None
    assert host.adapters == []
