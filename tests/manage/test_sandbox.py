"""The web console's chat sandbox API: events from a chosen user through the real dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import PluginWriter
from tests.manage.support import Running, serve

CHAT_PLUGIN = """
from plughost.sdk import Approve, CommandContext, NoticeEvent, Plugin, Reject, Reply, RequestEvent, Segment, Message

plugin = Plugin()

@plugin.command("pic", description="an image for you", scope="group")
async def pic(ctx: CommandContext) -> Message:
    return Message([Segment.at(ctx.sender.user_id), Segment.text(" here: "), Segment.image("https://example.invalid/cat.png")])

@plugin.command("secret", role="owner")
async def secret(ctx: CommandContext) -> str:
    return "owner only"

@plugin.route("notice", "GroupPoke", "PrivatePoke")
async def poked(ev: NoticeEvent) -> Reply:
    return Reply.of(f"{ev.route} by {ev.user_id}")

@plugin.route("request", "Friend", "GroupAdd")
async def requests(ev: RequestEvent) -> Approve | Reject:
    return Approve("pal") if ev.comment == "please" else Reject("no")
"""


@pytest.fixture
async def chat(workspace: Path, write_plugin: PluginWriter) -> AsyncIterator[Running]:
    (workspace / "plughost.toml").write_text("[commands]\nowners = [1]\n")
    write_plugin("chat", CHAT_PLUGIN)
    async with serve(workspace) as running:
        yield running


async def send(running: Running, **event: object) -> dict:  # type: ignore[type-arg]
    answer = await running.client.post("/api/v1/sandbox/events", json=event)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_group_message_reply_with_segments(chat: Running) -> None:
    result = await send(chat, chat="group", group_id=123, user_id=456, text="/pic")
    assert result["status"] == "command" and result["errors"] == []
    [reply] = result["actions"]
    assert reply["action"] == "send_group_msg" and reply["params"]["group_id"] == 123
    assert [s["type"] for s in reply["message"]] == ["at", "text", "image"]
    assert reply["message"][0]["data"]["qq"] in (456, "456")


async def test_roles_scopes_pokes_and_requests(chat: Running) -> None:
    denied = await send(chat, chat="private", user_id=456, text="/secret")
    assert "owner only" not in str(denied["actions"])
    owner = await send(chat, chat="private", user_id=1, text="/secret")
    assert owner["actions"][0]["message"] == [{"type": "text", "data": {"text": "owner only"}}]
    wrong_scope = await send(chat, chat="private", user_id=1, text="/pic")
    assert "image" not in str(wrong_scope["actions"])
    poke = await send(chat, chat="group", group_id=9, user_id=7, kind="poke")
    assert poke["actions"][0]["message"][0]["data"]["text"] == "GroupPoke by 7"
    friend = await send(chat, chat="private", user_id=7, kind="friend_request", text="please")
    assert friend["actions"][0]["action"] == "set_friend_add_request" and friend["actions"][0]["params"]["approve"]
    group = await send(chat, chat="group", group_id=9, user_id=7, kind="group_request", text="let me in")
    assert group["actions"][0]["action"] == "set_group_add_request"
    assert group["actions"][0]["params"]["approve"] is False


async def test_bad_sandbox_events_are_rejected(chat: Running) -> None:
    for event in (
        {"chat": "group", "user_id": 1, "text": "hi"},  # no group
        {"chat": "private", "user_id": 1, "text": "  "},  # no text
        {"chat": "private", "user_id": 1, "kind": "group_request"},
        {"chat": "channel", "user_id": 1, "text": "hi"},
        {"chat": "private", "user_id": 0, "text": "hi"},
    ):
        answer = await chat.client.post("/api/v1/sandbox/events", json=event)
        assert answer.status_code == 422, event
        assert answer.json()["error"]["code"] == "invalid_request"
    malformed = await chat.client.post(
        "/api/v1/sandbox/events", json={"chat": "private", "user_id": 1, "text": "[CQ:at,qq=1"}
    )
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_message"
