"""Continuing a coroutine whose first step already ran (`Resume`, `resumed`): it behaves as if it
had been awaited from the start — its answer, its errors, cancellation and closing reach it."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from plughost.sdk.stepping import Resume, resumed

Continue = Callable[[Coroutine[Any, Any, Any], Any], Awaitable[Any]]
WAYS: dict[str, Continue] = {
    "resumed": resumed,
    "Resume": Resume,
    "Resume in a context": lambda coro, yielded: Resume(coro, yielded, contextvars.copy_context()),
}


def started(coro: Coroutine[Any, Any, Any]) -> tuple[Coroutine[Any, Any, Any], Any]:
    """Run the coroutine's first step as the guard does; it must suspend."""
    return coro, coro.send(None)


@pytest.fixture(params=list(WAYS))
def way(request: pytest.FixtureRequest) -> Continue:
    return WAYS[request.param]


async def test_the_answer_of_a_coroutine_that_suspends_more_than_once_arrives(way: Continue) -> None:
    async def steps() -> int:
        total = 0
        for n in range(3):
            await asyncio.sleep(0)
            total += n
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, 10)
        return total + await future

    assert await way(*started(steps())) == 13


async def test_an_error_after_the_first_suspension_is_raised_where_it_is_awaited(way: Continue) -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("late")

    with pytest.raises(ValueError, match="late"):
        await way(*started(fails()))


async def test_a_failed_future_raises_inside_the_coroutine_which_may_handle_it(way: Continue) -> None:
    async def handles() -> str:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_exception, KeyError("k"))
        try:
            await future
        except KeyError:
            return "handled inside"
        return "not reached"

    assert await way(*started(handles())) == "handled inside"


async def test_cancellation_while_it_waits_reaches_the_coroutine(way: Continue) -> None:
    seen: list[str] = []
    first_wait = asyncio.Event()

    async def waits() -> None:
        try:
            first_wait.set()
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise
        finally:
            seen.append("cleaned up")

    async def caller() -> Any:
        return await way(*started(waits()))

    task = asyncio.create_task(caller())
    await first_wait.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled inside", "cleaned up"]


async def test_a_coroutine_that_swallows_its_cancellation_answers(way: Continue) -> None:
    asleep = asyncio.Event()

    async def stubborn() -> str:
        try:
            asleep.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # and suspends again on its way out
            return "answered anyway"
        return "not reached"

    async def caller() -> Any:
        return await way(*started(stubborn()))

    task = asyncio.create_task(caller())
    await asleep.wait()
    task.cancel()
    assert await task == "answered anyway"


async def test_closing_the_awaiting_coroutine_closes_the_continued_one(way: Continue) -> None:
    closed: list[bool] = []

    async def inner() -> None:
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        finally:
            closed.append(True)

    outer = _await(way(*started(inner())))
    outer.send(None)  # waits in the continued coroutine
    outer.close()
    assert closed == [True]


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
