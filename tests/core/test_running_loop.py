"""`running_loop`: the running loop without 3.11's system call, and never a loop that is not running here."""

from __future__ import annotations

import asyncio
import threading

import pytest

from plughost.sdk.deadlines import DeadlineClock
from plughost.sdk.running import running_loop
from plughost.sdk.tasks import TaskOwner


async def test_the_known_loop_is_returned_while_it_runs_here() -> None:
    loop = asyncio.get_running_loop()
    assert running_loop(loop) is loop
    assert running_loop(None) is loop


async def test_a_loop_that_is_not_running_is_never_taken_for_the_running_one() -> None:
    stale = asyncio.new_event_loop()
    try:
        assert running_loop(stale) is asyncio.get_running_loop()
    finally:
        stale.close()


async def test_a_loop_running_in_another_thread_is_not_this_threads_loop() -> None:
    elsewhere = asyncio.new_event_loop()
    started = threading.Event()
    elsewhere.call_soon(started.set)
    thread = threading.Thread(target=elsewhere.run_forever)
    thread.start()
    try:
        assert started.wait(10)
        assert running_loop(elsewhere) is asyncio.get_running_loop()
    finally:
        elsewhere.call_soon_threadsafe(elsewhere.stop)
        thread.join(10)
        elsewhere.close()


def test_without_a_running_loop_it_raises_as_asyncio_does() -> None:
    stale = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="no running event loop"):
            running_loop(stale)
    finally:
        stale.close()


def test_an_owner_and_a_clock_used_on_a_second_loop_follow_it() -> None:
    """Objects that remember a loop (a task owner, the guard's deadline clock) move on with the next one."""
    owner = TaskOwner("twice")
    clocks: list[DeadlineClock] = []

    async def once() -> asyncio.AbstractEventLoop:
        task = owner.spawn(asyncio.sleep(0, result="done"))
        assert await task == "done"
        clocks.append(DeadlineClock.of(clocks[-1] if clocks else None))
        return asyncio.get_running_loop()

    first = asyncio.run(once())
    second = asyncio.run(once())
    assert first is not second
    assert clocks[0].loop is first and clocks[1].loop is second
    assert list(owner) == []
