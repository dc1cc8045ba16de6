"""A real compiled C plugin (examples/native/c) as a bot plugin: command, route, interceptor, host.bot.send."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from plughost.host import Host
from plughost.sdk.events import parse_event
from tests.conftest import require_tool

from .onebot_impl import group_message, notice
from .test_protocol import RecordingBot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("gcc", "the C example plugin is compiled for this test")
    make = require_tool("make", "the C example is built with its Makefile")
    out = tmp_path_factory.mktemp("bot-native") / "example_c.so"
    done = subprocess.run(
        [make, "-s", "-C", str(ROOT / "examples" / "native" / "c"), f"OUT={out}", f"SDK={ROOT / 'sdk' / 'c'}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


async def test_native_plugin_answers_commands_routes_and_interceptors(example_c: Path, tmp_path: Path) -> None:
    from plughost.bot.config import BotConfig

    plugin_dir = tmp_path / "plugins" / "example-c"
    plugin_dir.mkdir(parents=True)
    shutil.copy(example_c, plugin_dir / "example_c.so")
    (plugin_dir / "plugin.toml").write_text(
        'id = "example-c"\nversion = "1.0.0"\nruntime = "native"\nentry = "example_c.so"\n'
    )
    async with Host(tmp_path) as host:
        instance = host.manager.get_plugin("example-c")
        assert instance is not None and instance.is_enabled, instance and instance.error
        bot = RecordingBot()
        lane = host.dispatcher.attach("n", BotConfig(id="n", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        echo = await host.dispatcher.process(lane, parse_event(group_message("/echo hi there", message_id=1)))
        poke = await host.dispatcher.process(lane, parse_event(notice("notify", "poke", group_id=123, user_id=9)))
        spam = await host.dispatcher.process(lane, parse_event(group_message("cheap spam here", message_id=2)))
    assert echo.status == "command" and poke.status == "route" and spam.status == "blocked"
    texts = [(a, "".join(s["data"].get("text", "") for s in p["message"])) for a, p in bot.actions]
    assert texts == [
        ("send_group_msg", "Hello, hi there"),  # the command's reply
        ("send_group_msg", "(echo logged)"),  # host.bot.send queued during the call, flushed after it
        ("send_group_msg", "ouch"),  # the GroupPoke route
    ]
