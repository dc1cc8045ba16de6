"""The collector's youngest-generation threshold: raised while a host or a worker runs, put back after."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from plughost.host import Host
from plughost.runtime.collector import YOUNG_THRESHOLD, young_threshold

PROBE = """
import gc
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("threshold")
def threshold() -> int:
    return gc.get_threshold()[0]
"""


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, ...]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_raised_for_the_block_and_put_back(default_threshold: tuple[int, ...]) -> None:
    with young_threshold():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *default_threshold[1:])
    assert gc.get_threshold() == default_threshold


def test_a_higher_threshold_or_a_disabled_collector_is_left_alone(default_threshold: tuple[int, ...]) -> None:
    gc.set_threshold(50_000, 10, 10)
    with young_threshold():
        assert gc.get_threshold()[0] == 50_000
    assert gc.get_threshold()[0] == 50_000
    gc.set_threshold(700, 10, 10)
    gc.disable()
    try:
        with young_threshold():
            assert gc.get_threshold()[0] == 700
    finally:
        gc.enable()


def test_a_change_made_meanwhile_is_kept(default_threshold: tuple[int, ...]) -> None:
    with young_threshold():
        gc.set_threshold(1234, 10, 10)
    assert gc.get_threshold()[0] == 1234


def test_garbage_in_cycles_is_still_collected(default_threshold: tuple[int, ...]) -> None:
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        with young_threshold():
            for _ in range(3 * YOUNG_THRESHOLD):
                cycle: list[object] = []
                cycle.append(cycle)  # freed only by the collector
                del cycle
    finally:
        gc.callbacks.remove(count)
    assert sum(collected) >= YOUNG_THRESHOLD  # collections ran on their own, each freeing the cycles


async def test_an_embedded_host_leaves_the_collector_alone_and_its_workers_raise_it(
    tmp_path: Path, default_threshold: tuple[int, ...]
) -> None:
    for plugin_id, isolation in (("here", "none"), ("worker", "process")):
        directory = tmp_path / "plugins" / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\nisolation = "{isolation}"\n')
        (directory / "plugin.py").write_text(PROBE)
    async with Host(tmp_path) as host:
        here = await host.manager.execute("here", "threshold")
        worker = await host.manager.execute("worker", "threshold")
    assert here.success and here.result == default_threshold[0]  # the embedding program's setting
    assert worker.success and worker.result == YOUNG_THRESHOLD  # a worker process is plughost's own
    assert gc.get_threshold() == default_threshold
