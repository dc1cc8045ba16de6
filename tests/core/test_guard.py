"""The guard through the manager: breaker, timeouts, exceptions as results, metrics, events."""

from __future__ import annotations

import asyncio
import bisect
from pathlib import Path

import pytest

from plughost import Guard, PluginManager, PluginState
from plughost.guard import BreakerPolicy, BreakerState, GuardPolicy
from plughost.guard import guard as guard_module
from plughost.guard.metrics import LATENCY_BUCKETS_S
from plughost.runtime import default_runtimes
from plughost.sdk.models import EventType, PluginEvent

FLAKY = """
import asyncio
from plughost.sdk import Plugin
plugin = Plugin()
mode = {"fail": True}

@plugin.method("work")
def work() -> str:
    if mode["fail"]:
        raise RuntimeError("backend down")
    return "ok"

@plugin.method("heal")
async def heal() -> None:
    mode["fail"] = False

@plugin.method("hang")
async def hang() -> None:
    await asyncio.Event().wait()

@plugin.method("spin")
def spin() -> None:
    import threading
    threading.Event().wait(2)

@plugin.method("typed")
def typed(count: int, label: str = "x") -> str:
    return label * count

@plugin.method("weird")
def weird() -> set:
    return {1, 2}
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def manager(workspace: Path, write_plugin, clock: FakeClock):
    write_plugin("flaky", FLAKY)
    write_plugin("steady", FLAKY.replace('{"fail": True}', '{"fail": False}'))
    guard = Guard(GuardPolicy(BreakerPolicy(failure_threshold=3, cooldown_s=60)), clock=clock)
    async with PluginManager(workspace, runtimes=default_runtimes(), guard=guard) as manager:
        await manager.discover_and_load_all()
        yield manager


async def test_exception_becomes_result(manager: PluginManager) -> None:
    result = await manager.execute("flaky", "work")
    assert result.success is False
    assert result.error == "RuntimeError: backend down"
    assert result.metadata["exception_type"] == "RuntimeError" and result.metadata["timed_out"] is False


async def test_breaker_isolates_after_three_failures_and_recovers(manager: PluginManager, clock: FakeClock) -> None:
    for _ in range(3):
        assert not (await manager.execute("flaky", "work")).success
    assert manager.get_plugin("flaky").state is PluginState.ISOLATED  # type: ignore[union-attr]
    rejected = await manager.execute("flaky", "heal")
    assert rejected.metadata.get("isolated") is True and "isolated" in (rejected.error or "")
    assert (await manager.execute("steady", "work")).result == "ok", "other plugins keep working"

    clock.now += 61  # cooldown over: exactly one trial call goes through
    assert (await manager.execute("flaky", "heal")).success
    assert manager.guard.breaker("flaky").state is BreakerState.CLOSED
    assert manager.get_plugin("flaky").state is PluginState.ENABLED  # type: ignore[union-attr]
    assert (await manager.execute("flaky", "work")).result == "ok"
    kinds = [e.event_type for e in manager.get_events("flaky")]
    assert EventType.ISOLATE in kinds and EventType.RECOVER in kinds


async def test_failed_trial_call_reopens(manager: PluginManager, clock: FakeClock) -> None:
    for _ in range(3):
        await manager.execute("flaky", "work")
    clock.now += 61
    assert not (await manager.execute("flaky", "work")).success  # the trial fails
    assert manager.guard.breaker("flaky").state is BreakerState.OPEN
    assert (await manager.execute("flaky", "heal")).metadata.get("isolated") is True


async def test_clear_resets_by_hand(manager: PluginManager) -> None:
    for _ in range(3):
        await manager.execute("flaky", "work")
    manager.guard.breaker("flaky").clear()
    assert (await manager.execute("flaky", "heal")).success


async def test_async_handler_timeout_is_cancelled(manager: PluginManager) -> None:
    result = await manager.execute("flaky", "hang", {}, timeout=0.05)
    assert result.success is False and result.metadata["timed_out"] is True
    assert result.error == "timed out after 0.05 s"
    snapshot = manager.guard.snapshot("flaky")
    assert snapshot["handlers"]["hang"]["timeouts"] == 1
    assert snapshot["breaker"]["consecutive_failures"] == 1


async def test_blocking_handler_timeout_reported(manager: PluginManager) -> None:
    result = await manager.execute("flaky", "spin", {}, timeout=0.05)
    assert result.metadata["timed_out"] is True


async def test_manifest_timeout_applies(workspace: Path, write_plugin) -> None:
    write_plugin("slow", FLAKY, manifest_extra="[limits]\ntimeout_s = 0.05\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        assert (await manager.execute("slow", "hang")).metadata["timed_out"] is True


async def test_argument_validation_errors(manager: PluginManager) -> None:
    assert (await manager.execute("steady", "typed", {"count": 3, "label": "ab"})).result == "ababab"
    bad = await manager.execute("steady", "typed", {"count": "many"})
    assert not bad.success and "count" in (bad.error or "") and bad.metadata["code"] == "invalid_request"
    extra = await manager.execute("steady", "typed", {"count": 1, "colour": "red"})
    assert not extra.success and "colour" in (extra.error or "")
    unknown = await manager.execute("steady", "nope")
    assert unknown.metadata["code"] == "unknown_handler" and "has no handler 'nope'" in (unknown.error or "")


async def test_metrics_count_calls_failures_and_latency(manager: PluginManager) -> None:
    for _ in range(5):
        await manager.execute("steady", "work")
    await manager.execute("flaky", "work")
    steady = manager.guard.snapshot("steady")["handlers"]["work"]
    assert steady["calls"] == 5 and steady["failures"] == 0
    assert steady["p50_ms"] is not None and steady["p99_ms"] >= steady["p50_ms"]
    flaky = manager.guard.snapshot("flaky")["handlers"]["work"]
    assert flaky["failures"] == 1 and flaky["last_error"] == "backend down"
    assert flaky["recent_errors"][0]["message"] == "backend down"


async def test_recent_errors_are_bounded(manager: PluginManager) -> None:
    manager.guard.policy = GuardPolicy(BreakerPolicy(failure_threshold=1000))
    manager.guard.forget("flaky")
    for _ in range(15):
        await manager.execute("flaky", "work")
    assert len(manager.guard.snapshot("flaky")["handlers"]["work"]["recent_errors"]) == 10


async def test_execute_plugins_runs_concurrently(workspace: Path, write_plugin) -> None:
    code = """
    from plughost.sdk import Plugin
    plugin = Plugin()

    import asyncio
    from pathlib import Path

    @plugin.execute
    async def run(context):
        # completes only if all five run at the same time: each marks itself, then waits for the rest
        meeting = Path(context.metadata["meeting"])
        (meeting / plugin.id).touch()
        for _ in range(500):
            if len(list(meeting.iterdir())) >= context.metadata["count"]:
                return "done"
            await asyncio.sleep(0.01)
        return "alone"
    """
    for i in range(5):
        write_plugin(f"p{i}", code)
    write_plugin(
        "broken",
        "from plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.execute\n"
        "async def run(ctx):\n    raise RuntimeError('nope')\n",
    )
    write_plugin(
        "stuck",
        "import asyncio\nfrom plughost.sdk import Plugin\nplugin = Plugin()\n@plugin.execute\n"
        "async def run(ctx):\n    await asyncio.Event().wait()\n",
        manifest_extra="[limits]\ntimeout_s = 0.2\n",
    )
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        meeting = workspace / "meeting"
        meeting.mkdir()
        results = await asyncio.wait_for(
            manager.execute_plugins({"metadata": {"meeting": str(meeting), "count": 5}}), timeout=20
        )
        assert sorted(results) == ["broken", "p0", "p1", "p2", "p3", "p4", "stuck"]
        assert all(results[f"p{i}"].result == "done" for i in range(5))
        assert results["broken"].error == "RuntimeError: nope"
        assert results["stuck"].metadata["timed_out"] is True
        alone = workspace / "alone"
        alone.mkdir()
        subset = await manager.execute_plugins({"metadata": {"meeting": str(alone), "count": 1}}, ["p1"])
        assert list(subset) == ["p1"] and subset["p1"].result == "done"


async def test_results_are_json_shaped_in_process_too(manager: PluginManager) -> None:
    """A set comes back as a list in-process, exactly as it does from a worker."""
    assert (await manager.execute("steady", "weird")).result == [1, 2]


HOST_KILLERS = """
import sys
import time
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("exit_async")
async def exit_async() -> None:
    sys.exit(5)

@plugin.method("exit_sync")
def exit_sync() -> None:
    raise SystemExit(0)

@plugin.method("interrupt")
async def interrupt() -> None:
    raise KeyboardInterrupt

@plugin.method("overrun")
async def overrun(seconds: float) -> str:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # never awaits: the guard cannot interrupt it
        pass
    return "finished late"

@plugin.method("alive")
async def alive() -> str:
    return "still here"
"""


@pytest.mark.parametrize(
    ("method", "kind"),
    [("exit_async", "SystemExit"), ("exit_sync", "SystemExit"), ("interrupt", "KeyboardInterrupt")],
)
async def test_plugin_code_cannot_stop_the_host(workspace: Path, write_plugin, method: str, kind: str) -> None:
    write_plugin("killer", HOST_KILLERS)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        result = await manager.execute("killer", method)
        assert not result.success and result.metadata["exception_type"] == kind
        assert (await manager.execute("killer", "alive")).result == "still here"


async def test_a_result_after_the_deadline_is_a_timeout(workspace: Path, write_plugin) -> None:
    write_plugin("killer", HOST_KILLERS)
    async with PluginManager(workspace) as manager:
        await manager.discover_and_load_all()
        late = await manager.execute("killer", "overrun", {"seconds": 0.3}, timeout=0.1)
        assert not late.success and late.result is None
        assert late.metadata["timed_out"] is True and "without yielding" in (late.error or "")
        assert manager.guard.snapshot("killer")["handlers"]["overrun"]["timeouts"] == 1
        on_time = await manager.execute("killer", "overrun", {"seconds": 0.0}, timeout=5)
        assert on_time.success and on_time.result == "finished late"


SPINNER = """
import asyncio
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("forever")
async def forever() -> None:
    n = 0
    while True:  # never awaits
        n += 1

@plugin.method("polite")
async def polite() -> str:
    await asyncio.sleep(0)
    return "still answering"
"""


async def test_a_handler_that_never_yields_cannot_freeze_the_host(
    workspace: Path, write_plugin, caplog: pytest.LogCaptureFixture
) -> None:
    """`while True: pass` in an async handler: the watchdog interrupts the plugin's frame after its
    deadline; the call is timed_out, counted on the breaker, logged with the line; the host goes on."""
    write_plugin("spinner", SPINNER)
    write_plugin("killer", HOST_KILLERS)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        with caplog.at_level("WARNING", logger="plughost.guard.watchdog"):
            stuck, other = await asyncio.wait_for(
                asyncio.gather(
                    manager.execute("spinner", "forever", timeout=0.3),
                    manager.execute("killer", "alive"),  # waits behind the frozen loop, then runs
                ),
                timeout=30,
            )
        assert not stuck.success and stuck.metadata["timed_out"] is True
        assert stuck.metadata["exception_type"] == "PluginOvertime"
        assert other.success and other.result == "still here"
        assert "plugin 'spinner' handler 'forever' ran" in caplog.text and "plugin.py:" in caplog.text
        assert manager.guard.snapshot("spinner")["breaker"]["consecutive_failures"] == 1
        assert (await manager.execute("spinner", "polite")).result == "still answering"


@pytest.mark.parametrize("elapsed", [0.0, 0.00005, 0.0001, 0.000100001, 0.0003, 0.7, 10.0, 25.0])
async def test_every_call_lands_in_the_latency_bucket_of_its_duration(
    manager: PluginManager, monkeypatch: pytest.MonkeyPatch, elapsed: float
) -> None:
    ticks = iter([0.0, elapsed])  # the guard's clock: when the call started, when it ended
    monkeypatch.setattr(guard_module, "_perf_counter", lambda: next(ticks))
    await manager.execute("steady", "heal")
    metrics = manager.guard.metrics("steady")["heal"]
    assert metrics.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, elapsed)] == 1 == metrics.calls == sum(metrics.buckets)
    assert metrics.latency_sum_s == pytest.approx(elapsed)


async def test_execute_events_reach_subscribers_only_while_subscribed(manager: PluginManager) -> None:
    heard: list[str] = []

    def listen(event: PluginEvent) -> None:
        heard.append(event.message)

    manager.events.add_handler(listen, {EventType.EXECUTE})
    await manager.execute("steady", "work")
    manager.events.remove_handler(listen)
    await manager.execute("steady", "work")
    assert heard == ["work"]  # and both calls are in the history
    assert [e.message for e in manager.get_events("steady") if e.event_type is EventType.EXECUTE][-2:] == ["work"] * 2
