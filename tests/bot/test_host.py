"""The bot domain inside a real `Host`: `[[bots]]` from plughost.toml, plugins discovered from disk."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from plughost.adapters.onebot import OneBotAdapter
from plughost.errors import ConfigError
from plughost.host import Host

from .onebot_impl import OneBotImpl, group_message, request

PLUGIN = """
from plughost.sdk import Approve, MessageEvent, Plugin, Reply, RequestEvent

plugin = Plugin()

@plugin.route("message", "Group")
async def hello(ev: MessageEvent) -> Reply | None:
    return Reply.of(f"hello {ev.sender.nickname}") if ev.plain_text() == "hi" else None

@plugin.route("request", "Friend")
def friend(ev: RequestEvent) -> Approve:   # a sync handler works too
    return Approve("from host")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_host_runs_configured_bots_with_discovered_plugins(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "plughost.toml").write_text(
        f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\naccess_token = "t"\n'
        "[bots.triggers]\nprefixes = ['/', '#']\n"
    )
    plugin_dir = tmp_path / "plugins" / "greeter"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "greeter"\nversion = "1.0.0"\n')
    (plugin_dir / "__init__.py").write_text(PLUGIN)
    impl = OneBotImpl()
    async with Host(tmp_path) as host, OneBotAdapter(host.bot_settings.bots, host.dispatcher) as adapter:
        assert host.bot_settings.bots[0].triggers.prefixes == ["/", "#"]
        assert adapter.ports == {"qq": port}
        await impl.connect_reverse(f"ws://127.0.0.1:{port}/onebot/v11/ws", token="t")
        await impl.push(group_message("hi", message_id=1))
        await impl.push(request("friend", user_id=3, flag="fl"))
        actions = {a["action"]: a["params"] for a in await impl.wait_actions(2)}
        assert actions["send_group_msg"]["message"] == [{"type": "text", "data": {"text": "hello user456"}}]
        assert actions["set_friend_add_request"] == {"flag": "fl", "approve": True, "remark": "from host"}
        async with asyncio.timeout(5):
            await host.dispatcher.lanes["qq"].wait_finished(3)
        assert host.dispatcher.status()[0]["processed"] == 3
    await impl.close()


def test_bad_bot_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plughost.toml").write_text('[[bots]]\nid = "qq"\ntransport = "carrier-pigeon"\n')
    with pytest.raises(ConfigError, match=r"bots\.0\.transport"):
        Host(tmp_path)


async def test_plughost_run_serves_configured_bots(tmp_path: Path) -> None:
    """The real program: `plughost run` with [[bots]], an implementation connects, the bot answers."""
    import sys

    port = free_port()
    (tmp_path / "plughost.toml").write_text(
        f'[[bots]]\nid = "qq"\ntransport = "ws-reverse"\nbind = "127.0.0.1:{port}"\naccess_token = "t"\n'
        # an HTTP bot too: its server must leave SIGTERM to plughost
        f'[[bots]]\nid = "web"\ntransport = "http"\nbind = "127.0.0.1:{free_port()}"\nendpoint = "http://127.0.0.1:9"\n'
    )
    plugin_dir = tmp_path / "plugins" / "greeter"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "greeter"\nversion = "1.0.0"\n')
    (plugin_dir / "__init__.py").write_text(PLUGIN)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plughost", "run", "-w", str(tmp_path), "--no-console",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    impl = OneBotImpl()
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            while b"greeter" not in await process.stdout.readline():  # the plugin table: host and bots are up
                pass
        await impl.connect_reverse(f"ws://127.0.0.1:{port}/onebot/v11/ws", token="t")
        await impl.push(group_message("hi", message_id=1))
        actions = await impl.wait_actions(1, timeout=10)
        assert actions[0]["params"]["message"] == [{"type": "text", "data": {"text": "hello user456"}}]
    finally:
        await impl.close()
        if process.returncode is None:
            process.terminate()
        async with asyncio.timeout(30):
            await process.wait()
    assert process.returncode == 0


ISOLATED = """
import os
from plughost.sdk import BotApi, MessageEvent, NoticeEvent, Plugin, Reply
plugin = Plugin()

@plugin.pre_handle
def not_from_bots(ev: MessageEvent) -> bool:
    return ev.user_id != 999

@plugin.route("notice", "GroupPoke")
async def poke(ev: NoticeEvent, bot: BotApi) -> Reply:
    await bot.send_private_msg(ev.user_id, f"pid {os.getpid()}")
    return Reply.of(f"worker poked by {ev.user_id}")
"""


async def test_plugin_in_a_worker_process_answers_like_an_in_process_one(tmp_path: Path) -> None:
    """isolation = "process": the same routes and interceptors, answered over the worker protocol."""
    import os

    from plughost.bot.config import BotConfig
    from plughost.sdk.events import parse_event

    from .onebot_impl import notice
    from .test_protocol import RecordingBot

    plugin_dir = tmp_path / "plugins" / "isolated"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "isolated"\nversion = "1.0.0"\nisolation = "process"\n')
    (plugin_dir / "__init__.py").write_text(ISOLATED)
    async with Host(tmp_path) as host:
        bot = RecordingBot()
        lane = host.dispatcher.attach("sim", BotConfig(id="sim", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        poke = await host.dispatcher.process(lane, parse_event(notice("notify", "poke", group_id=5, user_id=6)))
        blocked = await host.dispatcher.process(lane, parse_event(group_message("x", message_id=1, user_id=999)))
    assert poke.status == "route" and poke.answered_by == "isolated"
    assert bot.actions[0] == ("send_group_msg", {"group_id": 5, "message": [
        {"type": "text", "data": {"text": "worker poked by 6"}}]})  # fmt: skip
    action, params = bot.actions[1]
    worker_pid = int(params["message"][0]["data"]["text"].split()[1])
    assert action == "send_private_msg" and worker_pid != os.getpid()  # really another process
    assert blocked.status == "blocked" and blocked.answered_by == "isolated"


SEND_THEN_FAIL = """
from plughost.sdk import BotApi, MessageEvent, Plugin
plugin = Plugin()

@plugin.route("message", "Private")
async def announce(ev: MessageEvent, bot: BotApi) -> None:
    await bot.send_private_msg(ev.user_id, "queued before the failure")
    raise RuntimeError("handler failed after sending")
"""


@pytest.mark.parametrize(
    ("isolation", "invoke_lane"),
    [("none", True), ("process", True), ("process", False)],
    ids=["in-process", "worker-invoke-lane", "worker-grpc"],
)
async def test_sends_queued_before_a_failure_still_go_out(tmp_path: Path, isolation: str, invoke_lane: bool) -> None:
    """In-process and in a worker alike: a send made before the handler raised is not lost."""
    from plughost.bot.config import BotConfig
    from plughost.sdk.events import parse_event

    from .onebot_impl import private_message
    from .test_protocol import RecordingBot

    plugin_dir = tmp_path / "plugins" / "announcer"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text(f'id = "announcer"\nversion = "1.0.0"\nisolation = "{isolation}"\n')
    (plugin_dir / "__init__.py").write_text(SEND_THEN_FAIL)
    (tmp_path / "plughost.toml").write_text(f"[process]\ninvoke_lane = {str(invoke_lane).lower()}\n")
    async with Host(tmp_path) as host:
        bot = RecordingBot()
        lane = host.dispatcher.attach("sim", BotConfig(id="sim", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        outcome = await host.dispatcher.process(lane, parse_event(private_message("hello", message_id=1, user_id=42)))
    assert any("handler failed after sending" in error for error in outcome.errors)
    [(action, params)] = bot.actions
    assert action == "send_private_msg" and params["user_id"] == 42
    assert params["message"] == [{"type": "text", "data": {"text": "queued before the failure"}}]


BOT_COMMAND = """
from plughost.sdk import CommandContext, Plugin
plugin = Plugin()

@plugin.command("kick")
async def kick(ctx: CommandContext, user: int) -> str:
    assert ctx.bot is not None
    await ctx.bot.call_action("set_group_kick", {"group_id": ctx.sender.group_id, "user_id": user})
    return f"kicked {user}"
"""


async def test_chat_command_uses_the_bot_it_came_through(tmp_path: Path) -> None:
    from plughost.bot.config import BotConfig
    from plughost.sdk.events import parse_event

    from .test_protocol import RecordingBot

    (tmp_path / "plughost.toml").write_text("[commands]\nowners = [456]\n")
    plugin_dir = tmp_path / "plugins" / "moderator"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "plugin.toml").write_text('id = "moderator"\nversion = "1.0.0"\n')
    (plugin_dir / "plugin.py").write_text(BOT_COMMAND)
    async with Host(tmp_path) as host:
        bot = RecordingBot()
        lane = host.dispatcher.attach("sim", BotConfig(id="sim", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        await host.dispatcher.process(lane, parse_event(group_message("/kick 789", message_id=1, group_id=55)))
    assert bot.actions[0] == ("set_group_kick", {"group_id": 55, "user_id": 789})
    assert bot.actions[1][0] == "send_group_msg"
    assert bot.actions[1][1]["message"] == [{"type": "text", "data": {"text": "kicked 789"}}]
