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


def deadlines_of(bot: object) -> CallDeadlines | None:
    """The `CallDeadlines` a call's bot carries (`bot.deadlines`), if any."""
    deadlines = getattr(bot, "deadlines", None)
    return deadlines if isinstance(deadlines, CallDeadlines) else None


def expire(future: asyncio.Future[Any]) -> None:
    """Fail `future` with `TimeoutError` unless it is done: a `loop.call_later` callback, the cheap
    deadline of a call that waits on one future (`asyncio.timeout` costs more per call)."""
    if not future.done():
        future.set_exception(TimeoutError())


__all__ = ["CallDeadlines", "Pausable", "Reschedulable", "TimeoutDeadline", "deadlines_of", "expire"]
