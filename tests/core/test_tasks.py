"""`TaskOwner`: the one owner of background tasks (host, manager, dispatcher, adapters, plugins)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from plughost.sdk.tasks import SWEEP_EVERY, TaskOwner


async def test_aclose_cancels_and_awaits_tasks_and_children() -> None:
    cleaned: list[str] = []
    running: list[str] = []
    all_running = asyncio.Event()

    async def forever(name: str) -> None:
        running.append(name)
        if len(running) == 3:
            all_running.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # a cleanup that awaits: aclose waits for it
            cleaned.append(name)

    owner = TaskOwner("parent")
    child = owner.child("child")
    grandchild = child.child("grandchild")
    tasks = [owner.spawn(forever("own")), child.spawn(forever("child")), grandchild.spawn(forever("grandchild"))]
    assert list(owner) == [tasks[0]]
    await asyncio.wait_for(all_running.wait(), 5)
    await owner.aclose()
    assert all(t.cancelled() for t in tasks)
    assert cleaned == ["own", "child", "grandchild"]  # own tasks first, then the children's
    assert owner.closed and child.closed and grandchild.closed


async def test_a_closed_owner_starts_nothing_and_closes_the_work() -> None:
    owner = TaskOwner("closed")
    await owner.aclose()
    work = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        owner.spawn(work)
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED  # no "never awaited" warning
    assert owner.child("late").closed


async def test_finished_tasks_are_forgotten_and_one_cancelled_before_it_ran_closes_its_work() -> None:
    owner = TaskOwner("calls")
    done = owner.spawn(asyncio.sleep(0))
    await done
    assert "0 tasks" in repr(owner)  # a task that ran removes itself
    work = asyncio.Event().wait()
    never_ran = owner.spawn(work)
    never_ran.cancel()  # before its first step: it cannot remove itself
    await asyncio.wait([never_ran])
    for _ in range(SWEEP_EVERY):  # later spawns look for it now and then
        await owner.spawn(asyncio.sleep(0))
    assert "0 tasks" in repr(owner)
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED  # no "never awaited" warning
    last = owner.spawn(asyncio.Event().wait())
    last.cancel()
    await owner.aclose()  # and so does closing the owner
    assert "closed" in repr(owner) and not owner._tasks


async def test_a_child_closed_on_its_own_leaves_its_parent() -> None:
    owner = TaskOwner("parent")
    child = owner.child("plugin")
    task = child.spawn(asyncio.Event().wait())
    await child.aclose()
    assert task.cancelled() and not owner.closed
    assert "0 children" in repr(owner)
    await owner.aclose()


async def test_a_failing_task_is_logged_and_spares_its_siblings(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> int:
        raise ValueError("broken")

    async with TaskOwner("owner") as owner:
        sibling = owner.spawn(asyncio.Event().wait())
        failed = owner.spawn(boom(), name="boom")
        assert await failed is None
        assert not sibling.done()
    assert sibling.cancelled()
    record = next(r for r in caplog.records if "owner: task boom failed" in r.getMessage())
    assert record.exc_info is not None and "broken" in str(record.exc_info[1])


async def test_grace_lets_tasks_finish_before_they_are_cancelled() -> None:
    finishing, stuck = asyncio.Event(), asyncio.Event()
    owner = TaskOwner("graceful")
    quick = owner.spawn(finishing.wait())
    slow = owner.spawn(stuck.wait())
    finishing.set()
    await owner.aclose(grace=0.05)
    assert quick.done() and not quick.cancelled()
    assert slow.cancelled()


async def test_a_task_that_ignores_cancellation_is_abandoned_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # swallows the cancellation

    owner = TaskOwner("stubborn owner")
    task = owner.spawn(stubborn(), name="stubborn")
    await asyncio.wait_for(started.wait(), 5)
    await owner.aclose(timeout=0.05)
    assert "stubborn owner: 1 task(s) did not stop" in caplog.text and "stubborn" in caplog.text
    release.set()
    await task


async def test_a_cancellation_swallowed_by_library_code_is_delivered_again() -> None:
    """Like Python 3.11's `asyncio.wait_for` finishing as it is cancelled: the task goes on waiting."""
    started = asyncio.Event()
    swallowed = 0

    async def swallows_once() -> None:
        nonlocal swallowed
        started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    owner = TaskOwner("owner")
    task = owner.spawn(swallows_once(), name="swallows once")
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(owner.aclose(), 30)  # no timeout of its own: waits until the task ends
    assert task.cancelled() and swallowed == 1


async def test_tasks_of_a_root_in_a_task_group_run_in_that_group() -> None:
    """The host's layout: the root owner starts every task (its children's too) in its TaskGroup;
    a failing task does not cancel the group's body."""

    async def boom() -> None:
        raise RuntimeError("bug")

    root = TaskOwner("host")
    child = root.child("component")
    async with asyncio.TaskGroup() as group:
        root.use_group(group)
        waiting = child.spawn(asyncio.Event().wait())
        await child.spawn(boom())
        assert not waiting.done()  # the body is still running: the group was not aborted
        await root.aclose()
    assert waiting.cancelled()
