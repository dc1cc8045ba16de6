"""Run a coroutine's first step eagerly; arm a timeout only if it really suspends.

Arming `asyncio.timeout` costs more than calling a trivial handler, and an in-process step
that never suspends cannot be interrupted anyway. So the guard sends the first step itself and
hands the still-running coroutine on to a timeout only when it yields.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class Suspended(Exception):
    """Raised by `first_step` when the coroutine yielded; carries what it yielded."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded


def first_step(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` up to its first suspension; return its result if it finished."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise Suspended(coro, yielded)


class Resume:
    """Awaitable that continues a coroutine suspended by `first_step`."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, suspended: Suspended) -> None:
        self._coro = suspended.coro
        self._yielded = suspended.yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._yielded
        self._yielded = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and other throws go to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
