"""`@plugin.schedule`: jobs run by a real host, sending through a real OneBot connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from plughost.bot.scheduler import ScheduleStatus
from plughost.errors import PlugHostError
from plughost.host import Host
from plughost.sdk import Plugin
from plughost.sdk.descriptor import Descriptor
from plughost.sdk.schedules import ScheduleError
from tests.conftest import require_tool

from .chat_host import ManualClock, chat_host, write_plugin

TICKER = """
from datetime import timedelta
from plughost.sdk import BotApi, Plugin, PluginContext
plugin = Plugin()

@plugin.schedule(every=timedelta(milliseconds=50), chat="group:123")
async def tick(bot: BotApi, ctx: PluginContext) -> str:
    await bot.send_private_msg(7, f"from {ctx.plugin_id}")   # a proactive send through the outbox
    return "tick"                                            # sent to the schedule's chat
"""

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # 08:00 in Asia/Shanghai


def status(host: Host, plugin_id: str, handler: str) -> ScheduleStatus:
    return host.scheduler.statuses[(plugin_id, handler)]


async def wait(host: Host, predicate: object) -> None:
    async with asyncio.timeout(10):
        await host.scheduler.wait_until(predicate)  # type: ignore[arg-type]


async def test_schedule_sends_through_the_bot_and_follows_the_plugin_lifecycle(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"ticker": TICKER}) as (host, impl):
        sent = await impl.wait_actions(2, "send_group_msg")
        assert sent[0]["params"] == {"group_id": 123, "message": [{"type": "text", "data": {"text": "tick"}}]}
        private = await impl.wait_actions(1, "send_private_msg")
        assert private[0]["params"]["user_id"] == 7
        tick = status(host, "ticker", "schedule.tick")
        assert tick.active and tick.last_outcome == "ok" and tick.next_run is not None
        assert host.manager.guard.metrics("ticker")["schedule.tick"].calls >= 1  # guarded like any call

        await host.manager.disable_plugin("ticker")
        owner = host.manager.plugin_tasks("ticker")
        assert owner is not None
        await wait(host, lambda: not tick.active and not any(t.get_name().startswith("run ") for t in owner))
        assert not any("schedule" in t.get_name() for t in owner)  # no job task left behind
        runs = tick.runs
        await host.manager.enable_plugin("ticker")  # resumed
        await wait(host, lambda: tick.runs >= runs + 2)

        await host.manager.reload_plugin("ticker")  # the new version's jobs take over
        runs = tick.runs
        await wait(host, lambda: tick.active and tick.runs >= runs + 2)

        await host.manager.unload_plugin("ticker")
        assert not tick.active and host.manager.plugin_tasks("ticker") is None
        lines = "\n".join(host.scheduler.status_lines())
        assert "ticker/schedule.tick every 0.05s: inactive" in lines


SLOW = """
import asyncio
from datetime import timedelta
from plughost.sdk import Plugin
plugin = Plugin()
release = asyncio.Event()

@plugin.schedule(every=timedelta(minutes=1))
async def slow() -> None:
    await release.wait()

@plugin.schedule(every=timedelta(minutes=1), overlap=True)
async def parallel() -> None:
    await release.wait()
"""


async def test_a_run_longer_than_the_interval_skips_ticks_unless_overlap_is_allowed(tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with chat_host(tmp_path, {"slow": SLOW}, clock=clock, connect=False) as (host, _):
        slow, parallel = status(host, "slow", "schedule.slow"), status(host, "slow", "schedule.parallel")
        minute = dt.timedelta(minutes=1)
        for n in range(1, 4):
            await wait(host, lambda n=n: slow.next_run == parallel.next_run == START + n * minute)
            clock.advance(minute)
            await wait(host, lambda n=n: parallel.running == n)
        assert slow.running == 1 and slow.skipped == 2  # one run going, the next two ticks skipped and counted
        assert parallel.running == 3 and parallel.skipped == 0
        handle = host.manager.get_plugin("slow").handle
        handle.plugin.handlers["schedule.slow"].func.__globals__["release"].set()
        await wait(host, lambda: slow.running == parallel.running == 0)
        assert (slow.runs, parallel.runs, slow.last_outcome) == (1, 3, "ok")


TIMES_OUT = """
import asyncio
from datetime import timedelta
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.schedule(every=timedelta(minutes=1))
async def hangs() -> None:
    await asyncio.Event().wait()
"""


async def test_a_hanging_run_times_out_and_counts_on_the_breaker(tmp_path: Path) -> None:
    clock = ManualClock(START)
    write_plugin(tmp_path, "hangs", TIMES_OUT, "[limits]\ntimeout_s = 0.2\n")
    async with chat_host(tmp_path, {}, clock=clock, connect=False) as (host, _):
        hangs = status(host, "hangs", "schedule.hangs")
        await wait(host, lambda: hangs.next_run == START + dt.timedelta(minutes=1))
        clock.advance(dt.timedelta(minutes=1))
        await wait(host, lambda: hangs.last_outcome == "failed")
        assert hangs.last_error is not None and "0.2" in hangs.last_error
        assert host.manager.guard.breaker("hangs").consecutive_failures == 1


CRON = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.schedule(cron="0 8 * * *", tz="Asia/Shanghai", chat="private:42")
def morning() -> str:
    return "good morning"
"""


async def test_cron_in_a_time_zone_runs_at_its_local_time(tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with chat_host(tmp_path, {"cron": CRON}, clock=clock) as (host, impl):
        morning = status(host, "cron", "schedule.morning")
        next_day = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)  # 08:00 in Shanghai is 00:00 UTC
        await wait(host, lambda: morning.next_run == next_day)
        clock.set(next_day)
        sent = await impl.wait_actions(1, "send_private_msg")
        assert sent[0]["params"] == {"user_id": 42, "message": [{"type": "text", "data": {"text": "good morning"}}]}
        await wait(host, lambda: morning.next_run == next_day + dt.timedelta(days=1) and not morning.running)
        assert (morning.runs, morning.last_outcome) == (1, "ok")


MISSED = """
from plughost.sdk import Plugin
plugin = Plugin()
runs = []

@plugin.schedule(cron="0 * * * *", missed="run_once")
def catch_up() -> None:
    runs.append(1)

@plugin.schedule(cron="0 * * * *")
def skip() -> None:
    runs.append(2)
"""


async def test_runs_missed_while_the_host_was_down_run_once_or_are_skipped(tmp_path: Path) -> None:
    write_plugin(tmp_path, "missed", MISSED)
    async with chat_host(tmp_path, {}, clock=ManualClock(START), connect=False) as (host, _):
        await wait(host, lambda: status(host, "missed", "schedule.catch_up").next_run is not None)
    times = json.loads((tmp_path / ".plughost" / "schedules.json").read_text())
    assert times == {"missed": {"schedule.catch_up": START.isoformat()}}  # only catching-up schedules are kept

    later = START + dt.timedelta(hours=5, minutes=30)  # five runs were due while the host was down
    async with chat_host(tmp_path, {}, clock=ManualClock(later), connect=False) as (host, _):
        catch_up, skip = status(host, "missed", "schedule.catch_up"), status(host, "missed", "schedule.skip")
        await wait(host, lambda: catch_up.runs == 1 and skip.next_run is not None)
        assert catch_up.caught_up and skip.runs == 0  # one catch-up run, not five; `skip` waits for the next hour
        assert skip.next_run == START + dt.timedelta(hours=6)
    times = json.loads((tmp_path / ".plughost" / "schedules.json").read_text())
    assert times["missed"]["schedule.catch_up"] == later.isoformat()


async def test_a_schedule_targeting_a_chat_where_the_plugin_is_off_does_not_run(tmp_path: Path) -> None:
    async with chat_host(tmp_path, {"ticker": TICKER}) as (host, impl):
        host.manager.chat_switches.set("ticker", "group:123", False)
        tick = status(host, "ticker", "schedule.tick")
        await wait(host, lambda: tick.switched_off >= 2)
        runs, sent = tick.runs, len(impl.actions)
        await wait(host, lambda: tick.switched_off >= 4)
        assert tick.runs == runs and len(impl.actions) == sent and tick.last_outcome == "off in group:123"


# bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 * * * *'"),
        ({"cron": "0 8 * *"}, "invalid cron expression"),
        ({}, "give exactly one of cron=… or every=…"),
        ({"cron": "0 8 * * *", "every": 5}, "give exactly one of cron=… or every=…"),
        ({"every": dt.timedelta(seconds=-1)}, "every must be a positive interval"),
        ({"cron": "0 8 * * *", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"every": 5, "tz": "UTC"}, "tz applies to cron schedules only"),
        ({"every": 5, "chat": "group:abc"}, "chat must be 'group:<id>' or 'private:<id>'"),
        ({"every": 5, "missed": "always"}, "missed must be one of skip, run_once"),
    ],
)
def test_bad_schedules_fail_at_decoration_naming_plugin_and_function(options: dict[str, object], problem: str) -> None:
    plugin = Plugin(id="weather", version="1")
    with pytest.raises(ScheduleError) as caught:

        @plugin.schedule(**options)  # type: ignore[arg-type]
        def morning() -> None: ...

    message = str(caught.value)
    assert message.startswith("plugin 'weather': schedule ") and "morning" in message and problem in message
    assert "\n" not in message and not plugin.describe().schedules and not plugin.handlers


def test_a_schedule_handler_asking_for_an_event_is_refused() -> None:
    plugin = Plugin(id="weather", version="1")
    with pytest.raises(PlugHostError, match=r"plugin 'weather': schedule handler .*'event': schedule handlers get"):

        @plugin.schedule(every=60)
        def morning(event) -> None: ...  # type: ignore[no-untyped-def]


def test_schedules_travel_in_the_descriptor_json_and_bad_ones_name_the_plugin() -> None:
    plugin = Plugin(id="weather", version="1")

    @plugin.schedule(cron="*/5 * * * *", tz="Europe/Oslo", overlap=True, missed="run_once", chat="group:9", bot="qq")
    def poll() -> None: ...

    data = plugin.describe().to_json()
    assert data["schedules"] == [
        {"handler": "schedule.poll", "cron": "*/5 * * * *", "every_s": 0.0, "tz": "Europe/Oslo", "overlap": True,
         "missed": "run_once", "chat": "group:9", "bot": "qq"}
    ]  # fmt: skip
    assert Descriptor.from_json(data) == plugin.describe()
    data["schedules"][0]["cron"] = "every tuesday"
    with pytest.raises(ScheduleError, match=r"^plugin 'weather': invalid cron expression 'every tuesday'"):
        Descriptor.from_json(data)


async def test_a_plugin_with_a_bad_schedule_fails_to_load_with_the_reason(tmp_path: Path) -> None:
    write_plugin(tmp_path, "broken", "from plughost.sdk import Plugin\nplugin = Plugin()\n"
                 "@plugin.schedule(cron='0 25 * * *')\ndef late() -> None: ...\n")  # fmt: skip
    write_plugin(tmp_path, "fine", "from plughost.sdk import Plugin\nplugin = Plugin()\n")
    async with Host(tmp_path, hot_reload=False) as host:
        broken = host.manager.get_plugin("broken")
        assert broken is not None and broken.error is not None
        assert "plugin 'broken': schedule 'late': invalid cron expression '0 25 * * *'" in broken.error
        assert host.manager.get_plugin("fine").is_enabled  # the others load


@pytest.fixture(scope="module")
def ticking_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/bot/plugins/matcher_bot.c with its schedule: `tick` every 50 ms into group 123."""
    gcc = require_tool("gcc", "a native plugin with a schedule is compiled for this test")
    out = tmp_path_factory.mktemp("ticking-c") / "ticking.so"
    source = Path(__file__).parent / "plugins" / "matcher_bot.c"
    include = Path(__file__).resolve().parents[2] / "sdk" / "c"
    done = subprocess.run(
        [gcc, "-std=gnu11", "-O2", "-Wall", "-shared", "-fPIC", "-DWITH_SCHEDULE", f"-I{include}", "-o", str(out),
         str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_native_plugins_declare_schedules_in_process_and_in_a_worker(
    tmp_path: Path, ticking_c: Path, isolation: str
) -> None:
    plugin_dir = tmp_path / "plugins" / "ticking"
    plugin_dir.mkdir(parents=True)
    shutil.copy(ticking_c, plugin_dir / "ticking.so")
    (plugin_dir / "plugin.toml").write_text(
        f'id = "ticking"\nversion = "1.0.0"\nruntime = "native"\nentry = "ticking.so"\nisolation = "{isolation}"\n'
    )
    async with chat_host(tmp_path, {}) as (host, impl):
        sent = await impl.wait_actions(2, "send_group_msg")
        assert sent[0]["params"] == {"group_id": 123, "message": [{"type": "text", "data": {"text": "native tick"}}]}
        tick = status(host, "ticking", "tick")
        assert tick.last_outcome == "ok" and host.manager.guard.metrics("ticking")["tick"].calls >= 2
        await host.manager.disable_plugin("ticking")
        await wait(host, lambda: not tick.active)


async def test_worker_plugins_schedule_like_in_process_ones(tmp_path: Path) -> None:
    write_plugin(tmp_path, "ticker", TICKER, 'isolation = "process"\n')
    async with chat_host(tmp_path, {}) as (host, impl):
        sent = await impl.wait_actions(2, "send_group_msg")
        assert sent[0]["params"] == {"group_id": 123, "message": [{"type": "text", "data": {"text": "tick"}}]}
        private = await impl.wait_actions(1, "send_private_msg")
        assert private[0]["params"]["message"][0]["data"]["text"] == "from ticker"
        tick = status(host, "ticker", "schedule.tick")
        assert tick.last_outcome == "ok" and tick.runs >= 2
