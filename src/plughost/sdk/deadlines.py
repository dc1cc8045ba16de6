"""Deadlines of a call that stop while it waits for a person, not for the plugin.

A handler that asks the user something (`ctx.prompt`) waits as long as the prompt's own timeout
allows; that wait must not eat into the call's timeout. A call's bot may carry `CallDeadlines`:
the guard adds its timeout there when it arms it, a worker's invoke lane its own deadline, and the
host's conversation code holds them (`paused()`) while it waits for the answer. Each deadline
then goes on with the time it had left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from plughost.sdk.running import running_loop

DEADLINE_PASSED = "the call passed its deadline"
"""The message of the cancellation a call's timeout sends (`task.cancel(DEADLINE_PASSED)`): a
handle tells an abandoned call from a caller that merely lost interest by it (`deadline_passed`)."""


def deadline_passed(cancelled: asyncio.CancelledError) -> bool:
    """True when `cancelled` came from a call's timeout rather than from its caller going away."""
    return cancelled.args == (DEADLINE_PASSED,)


class Pausable(Protocol):
    """A deadline that can stop and go on with the time it had left."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Reschedulable(Protocol):
    """A timeout scope whose deadline can move: `asyncio.Timeout`, the guard's `CallTimeout`."""

    def when(self) -> float | None: ...

    def expired(self) -> bool: ...

    def reschedule(self, when: float | None) -> None: ...


class TimeoutDeadline:
    """A timeout scope (`asyncio.timeout`'s, or one like it) as a `Pausable`."""

    __slots__ = ("_left", "_paused_at", "_scope", "paused_s")

    def __init__(self, scope: Reschedulable) -> None:
        self._scope = scope
        self._left: float | None = None
        self._paused_at = 0.0
        self.paused_s = 0.0
        """How long the deadline stood still, in all (the call's time minus this is the plugin's)."""

    def pause(self) -> None:
        when = self._scope.when()
        if when is not None and not self._scope.expired():
            self._paused_at = now = asyncio.get_running_loop().time()
            self._left = when - now
            self._scope.reschedule(None)

    def resume(self) -> None:
        if self._left is not None:
            now = asyncio.get_running_loop().time()
            self.paused_s += now - self._paused_at
            self._scope.reschedule(now + max(self._left, 0.0))
            self._left = None


class CallDeadlines:
    """The deadlines of one call, held together while the call waits for a person."""

    __slots__ = ("_held", "_items")

    def __init__(self) -> None:
        self._items: list[Pausable] = []
        self._held = 0

    def add(self, deadline: Pausable) -> None:
        """Track `deadline` (paused at once when the call is already waiting)."""
        self._items.append(deadline)
        if self._held:
            deadline.pause()

    def remove(self, deadline: Pausable) -> None:
        if deadline in self._items:
            self._items.remove(deadline)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop every deadline of the call for the duration of the block."""
        self._held += 1
        if self._held == 1:
            for deadline in self._items:
                deadline.pause()
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                for deadline in reversed(self._items):
                    deadline.resume()


class Due(Protocol):
    """A deadline a `DeadlineClock` keeps: `due` is its loop time (None: paused), `fire` its end."""

    due: float | None

    def fire(self) -> None: ...


class FutureDeadline:
    """Fails `future` with `TimeoutError` when it is due (`due`: a loop time) on a `DeadlineClock`."""

    __slots__ = ("due", "future")

    def __init__(self, future: asyncio.Future[Any], due: float) -> None:
        self.future = future
        self.due: float | None = due

    def fire(self) -> None:
        expire(self.future)


class DeadlineClock:
    """Deadlines of one event loop under a single timer, armed for the earliest of them.

    A timer per call (`loop.call_at`) costs more than the rest of a short call. Calls mostly share
    their timeout, so a new deadline is later than the one the timer waits for and needs no timer;
    a deadline that ends is only forgotten. When the timer fires it fires every deadline that is
    due and waits for the earliest one still pending.
    """

    __slots__ = ("_items", "_timer", "_timer_at", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._items: dict[Due, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def expire_after(self, future: asyncio.Future[Any], seconds: float) -> FutureDeadline:
        """Fail `future` with `TimeoutError` after `seconds` (`discard` the answer to stop that)."""
        deadline = FutureDeadline(future, self.loop.time() + seconds)
        self.add(deadline)
        return deadline

    @classmethod
    def of(cls, clock: DeadlineClock | None) -> DeadlineClock:
        """`clock` when it belongs to the running loop, else a new clock for it."""
        loop = running_loop(clock.loop if clock is not None else None)
        return clock if clock is not None and clock.loop is loop else cls(loop)

    def add(self, item: Due) -> None:
        """Fire `item` once its `due` time passes (unless it is discarded first)."""
        self._items[item] = None
        if item.due is not None:
            self.watch(item.due)

    def discard(self, item: Due) -> None:
        self._items.pop(item, None)

    def watch(self, when: float) -> None:
        """Make sure the timer fires by loop time `when` (a deadline moved or resumed)."""
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self.loop.call_at(when, self._fire)

    def close(self) -> None:
        """Forget every deadline and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._items.clear()

    def _fire(self) -> None:
        self._timer = None
        now = self.loop.time()
        earliest: float | None = None
        for item in list(self._items):
            due = item.due
            if due is None:
                continue  # paused: watched again when it resumes
            if due <= now:
                del self._items[item]
                item.fire()
            elif earliest is None or due < earliest:
                earliest = due
        if earliest is not None:
            self.watch(earliest)


def deadlines_of(bot: object) -> CallDeadlines | None:
    """The `CallDeadlines` a call's bot carries (`bot.deadlines`), if any."""
    deadlines = getattr(bot, "deadlines", None)
    return deadlines if isinstance(deadlines, CallDeadlines) else None


def expire(future: asyncio.Future[Any]) -> None:
    """Fail `future` with `TimeoutError` unless it is done: a `loop.call_later` callback, the cheap
    deadline of a call that waits on one future (`asyncio.timeout` costs more per call)."""
    if not future.done():
        future.set_exception(TimeoutError())


__all__ = [
    "DEADLINE_PASSED",
    "CallDeadlines",
    "DeadlineClock",
    "Due",
    "FutureDeadline",
    "Pausable",
    "Reschedulable",
    "TimeoutDeadline",
    "deadline_passed",
    "deadlines_of",
    "expire",
]
