"""`asyncio.timeout` for a guarded call that suspended, at a third of its cost.

`asyncio.timeout` is an async context manager: entering and leaving it are coroutines, on top of
its timer (5.8 µs per use on the development machine, more than a whole in-process call). A call
into a worker, a native plugin's thread or a Go plugin suspends every time, so the guard arms
`CallTimeout` instead: a plain context manager on a `DeadlineClock`, the one timer of many calls
(1.4 µs per use; 4.3 µs with a timer of its own), with the same semantics.
When the deadline passes, the task is cancelled (with the message `DEADLINE_PASSED`, so that a
worker's handle knows the call was abandoned) and the cancellation becomes `TimeoutError` where
the block ends; a cancellation from anywhere else passes through untouched.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from plughost.sdk.deadlines import DEADLINE_PASSED, DeadlineClock


class CallTimeout:
    """`with CallTimeout(seconds):` inside a task. Also a deadline `TimeoutDeadline` can pause
    (`when`, `expired`, `reschedule`, as `asyncio.Timeout` has them). Its timer is `clock`'s, one
    for many deadlines (a clock of its own when none is given, or one of another loop)."""

    __slots__ = ("_cancelling", "_ended", "_expired", "_task", "clock", "due")

    def __init__(self, delay: float, clock: DeadlineClock | None = None) -> None:
        self.clock = clock = DeadlineClock.of(clock)
        task = asyncio.current_task(clock.loop)
        if task is None:
            raise RuntimeError("CallTimeout is used inside a task")
        self._task = task
        self.due: float | None = clock.loop.time() + delay
        self._expired = False
        self._ended = False
        self._cancelling = 0

    def __enter__(self) -> CallTimeout:
        self._cancelling = self._task.cancelling()
        self.clock.add(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ended = True
        self.clock.discard(self)
        # as asyncio.Timeout: only the cancellation this timeout asked for becomes TimeoutError
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def when(self) -> float | None:
        """The loop time of the deadline (None: none, while paused)."""
        return self.due

    def expired(self) -> bool:
        return self._expired

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to loop time `when` (None: no deadline) unless it already passed or
        the block ended."""
        if self._expired or self._ended:
            return
        self.due = when
        if when is not None:
            self.clock.watch(when)

    def fire(self) -> None:
        """The deadline passed: cancel the task (the block's end turns that into `TimeoutError`)."""
        if not self._expired and not self._ended:
            self._expired = True
            self._task.cancel(DEADLINE_PASSED)


__all__ = ["CallTimeout"]
