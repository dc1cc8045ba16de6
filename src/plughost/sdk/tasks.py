"""`TaskOwner`: every background task has an owner that cancels and awaits it when it stops.

The host's root owner starts its tasks in the host's `asyncio.TaskGroup`; the manager, the
dispatcher and each bot lane, each adapter, each plugin handle (and a plugin's `ctx.spawn`) own a
child. Closing an owner cancels and awaits its tasks and its children's; a closed owner starts
nothing more. A task that fails is logged with its owner's name, so a background failure is
never silent and never takes its siblings or the host down; its result is then None. Owners
construct without a running loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

from plughost.sdk.running import running_loop

T = TypeVar("T")

RECANCEL_S = 0.25
"""How often a task that was cancelled and still runs is cancelled again."""
SWEEP_EVERY = 1024
"""Tasks started between two looks for tasks that were cancelled before they ever ran."""
log = logging.getLogger("plughost.tasks")


class TaskOwner:
    """Owns background tasks: `spawn` starts one, `aclose` cancels and awaits them all.

    Usable as `async with TaskOwner("name") as tasks:` for a scope, or held by a component that
    closes it when it stops. Iterating yields the owner's own running tasks.
    """

    def __init__(self, name: str, *, logger: logging.Logger | None = None) -> None:
        self.name = name
        self.logger = logger or log
        self._tasks: dict[asyncio.Task[Any], Awaitable[Any]] = {}  # task → the work it runs
        self._children: dict[TaskOwner, None] = {}  # insertion order: closed newest first
        self._parent: TaskOwner | None = None
        self._group: asyncio.TaskGroup | None = None
        self._closed = False
        self._spawned = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the last spawn

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tasks)} tasks, {len(self._children)} children"
        return f"<TaskOwner {self.name!r} {state}>"

    async def __aenter__(self) -> TaskOwner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter([t for t in self._tasks if not t.done()])

    @property
    def closed(self) -> bool:
        return self._closed

    def use_group(self, group: asyncio.TaskGroup) -> None:
        """Start this owner's tasks, and its children's, in `group` (the host's task group)."""
        self._group = group

    def child(self, name: str, *, logger: logging.Logger | None = None) -> TaskOwner:
        """An owner closed together with this one (after this one's own tasks), or on its own."""
        child = TaskOwner(name, logger=logger or self.logger)
        if self._closed:
            child._closed = True
        else:
            child._parent = self
            self._children[child] = None
        return child

    def spawn(self, work: Awaitable[T], *, name: str | None = None) -> asyncio.Task[T | None]:
        """Start `work` as a task owned by this owner (a failure is logged and the result is None).

        Raises `RuntimeError` when the owner is closed (the work is then closed, never started).
        """
        try:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed: it starts no more tasks ({name or 'unnamed'})")
            group = self._root()._group
            self._loop = loop = running_loop(self._loop)
        except RuntimeError:
            _close(work)
            raise
        runner = self._run(work, loop)
        task = group.create_task(runner, name=name) if group is not None else loop.create_task(runner, name=name)
        if not task.done():  # (an eager task factory may have run it to its end already)
            self._tasks[task] = work  # removed by the task itself as it ends (cheaper than a done callback)
            self._spawned += 1
            if not self._spawned % SWEEP_EVERY:
                self._sweep()
        return task

    def _sweep(self) -> None:
        """Forget tasks that ended without running: cancelled before their first step, they never
        removed themselves (their work is closed quietly: it was never awaited)."""
        for task in [t for t in self._tasks if t.done()]:
            _close(self._tasks.pop(task))

    async def aclose(self, *, grace: float = 0.0, timeout: float | None = None) -> None:
        """Stop every task: this owner's own tasks first, then its children's (newest child first).

        Tasks get `grace` seconds to finish by themselves, then are cancelled (again every
        `RECANCEL_S` while they run) and awaited for up to `timeout` seconds (None: until they
        end); any still running then are logged and abandoned.
        Idempotent. The calling task is never cancelled by it, and its own cancellation propagates.
        """
        self._closed = True
        await self._stop_tasks(grace, timeout)
        self._sweep()
        for child in reversed(list(self._children)):
            await child.aclose(grace=grace, timeout=timeout)
        if self._parent is not None:
            self._parent._children.pop(self, None)
            self._parent = None

    async def _stop_tasks(self, grace: float, timeout: float | None) -> None:
        tasks = set(self._tasks) - {asyncio.current_task()}
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        stuck = {t for t in tasks if not t.done()}
        if not stuck:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            # cancelled again until they end: library code can swallow a cancellation (Python 3.11's
            # `asyncio.wait_for` does when the awaited operation finishes at the same moment)
            for task in stuck:
                task.cancel()
            left = RECANCEL_S if deadline is None else max(min(deadline - loop.time(), RECANCEL_S), 0)
            _, stuck = await asyncio.wait(stuck, timeout=left)
            if not stuck or (deadline is not None and loop.time() >= deadline):
                break
        if stuck:
            self.logger.warning(
                "%s: %d task(s) did not stop within %g s of being cancelled and were abandoned: %s",
                self.name, len(stuck), timeout, ", ".join(sorted(t.get_name() for t in stuck)),
            )  # fmt: skip

    def _root(self) -> TaskOwner:
        owner = self
        while owner._parent is not None:
            owner = owner._parent
        return owner

    async def _run(self, work: Awaitable[T], loop: asyncio.AbstractEventLoop) -> T | None:
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except BaseException:  # SystemExit from plugin code included: no task stops the host
            task = asyncio.current_task(loop)
            self.logger.exception("%s: task %s failed", self.name, task.get_name() if task else "?")
            return None
        finally:
            self._tasks.pop(asyncio.current_task(loop), None)  # type: ignore[arg-type]


def _close(work: Awaitable[Any]) -> None:
    if inspect.iscoroutine(work):
        work.close()


__all__ = ["TaskOwner"]
