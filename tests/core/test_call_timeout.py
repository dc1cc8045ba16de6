"""The guard's `CallTimeout` behaves as `asyncio.timeout` does, as a plain context manager."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from plughost.guard.call_timeout import CallTimeout
from plughost.guard.guard import Guard
from plughost.sdk.call import Call, Outcome
from plughost.sdk.deadlines import DeadlineClock, TimeoutDeadline, deadline_passed


async def test_a_passed_deadline_becomes_timeout_error_and_leaves_the_task_uncancelled() -> None:
    with pytest.raises(TimeoutError), CallTimeout(0.01) as scope:
        await asyncio.Event().wait()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0 and scope.expired()
    await asyncio.sleep(0)  # no cancellation is left pending on the task


async def test_a_block_that_ends_in_time_is_untouched_and_its_timer_is_gone() -> None:
    with CallTimeout(0.01) as scope:
        await asyncio.sleep(0)
    assert not scope.expired()
    await asyncio.sleep(0.05)  # past the deadline that was: nothing cancels this task now
    assert not scope.expired()


async def test_a_cancellation_from_elsewhere_passes_through() -> None:
    entered = asyncio.Event()

    async def waiting() -> None:
        with CallTimeout(30):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(waiting())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_the_code_inside_tells_a_passed_deadline_from_a_caller_that_went_away() -> None:
    """A worker's handle kills its process for the first and not for the second."""
    seen: list[bool] = []

    async def waiting(entered: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError), CallTimeout(seconds):
            try:
                entered.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError as cancelled:
                seen.append(deadline_passed(cancelled))
                raise

    await waiting(asyncio.Event(), 0.01)  # the deadline passes
    entered = asyncio.Event()
    task = asyncio.get_running_loop().create_task(waiting(entered, 30))
    await entered.wait()
    task.cancel()  # the caller goes away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [True, False]


async def test_an_outer_timeout_that_fires_first_is_the_outer_ones() -> None:
    inner_saw: list[str] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            try:
                with CallTimeout(30):
                    await asyncio.Event().wait()
            except BaseException as exc:
                inner_saw.append(type(exc).__name__)
                raise
    assert inner_saw == ["CancelledError"]  # not turned into this timeout's TimeoutError


async def test_a_paused_deadline_stands_still_and_goes_on_with_the_time_it_had() -> None:
    loop = asyncio.get_running_loop()
    with CallTimeout(30) as scope:
        deadline = TimeoutDeadline(scope)
        before = scope.when()
        assert before is not None and before - loop.time() <= 30
        deadline.pause()
        assert scope.when() is None  # no timer while a person is asked
        deadline.resume()
        resumed = scope.when()
        assert resumed is not None and 0 < resumed - loop.time() <= 30  # armed again with the time it had left
    with pytest.raises(TimeoutError), CallTimeout(30) as scope:  # rescheduled into the past: expires at once
        scope.reschedule(loop.time() - 1)
        await asyncio.Event().wait()


async def test_a_scope_whose_block_ended_is_not_armed_again() -> None:
    with CallTimeout(30) as scope:
        pass
    scope.reschedule(asyncio.get_running_loop().time() - 1)  # would expire at once if it were armed
    await asyncio.sleep(0)
    assert not scope.expired()


async def test_timeouts_sharing_a_clock_each_end_their_own_block_at_their_own_time() -> None:
    clock = DeadlineClock(asyncio.get_running_loop())
    long_entered, ended = asyncio.Event(), asyncio.Event()

    async def block(delay: float, entered: asyncio.Event | None = None) -> str:
        try:
            with CallTimeout(delay, clock):
                if entered is not None:
                    entered.set()
                await ended.wait()
        except TimeoutError:
            return "timed out"
        return "ended"

    long = asyncio.create_task(block(60, long_entered))
    await long_entered.wait()  # the clock's timer now waits for the 60 s deadline
    assert await asyncio.wait_for(block(0.05), 30) == "timed out"  # a shorter one, later: on time
    assert not long.done()
    ended.set()
    assert await asyncio.wait_for(long, 5) == "ended"
    for _ in range(100):  # blocks that end leave nothing on the clock
        assert await block(30) == "ended"
    assert not clock._items


async def test_a_guard_shares_one_clock_across_the_calls_that_suspend() -> None:
    class Suspends:
        async def call(self, call: Call) -> Outcome:
            await asyncio.sleep(0)
            return Outcome(call.handler)

    guard = Guard()
    outcomes = await asyncio.gather(*(guard.call("p", Suspends(), Call(f"h{n}"), timeout=5) for n in range(50)))
    assert [o.value for o in outcomes] == [f"h{n}" for n in range(50)]
    clock = guard._timeouts
    assert clock is not None and not clock._items
    slow = await guard.call("p", _Sleeps(), Call("slow"), timeout=0.05)
    assert slow.error is not None and slow.error.code == "timed_out"
    assert guard._timeouts is clock


class _Sleeps:
    async def call(self, call: Call) -> Outcome:
        await asyncio.Event().wait()
        return Outcome()
