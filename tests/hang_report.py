"""Before pytest-timeout ends a hung test (it dumps only threads), print every asyncio task's stack:
a hung async test idles in `select()`, and the task that waits forever is what tells why."""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

LEAD_S = 15.0
"""How long before the test's timeout the tasks are printed."""


def running_loops() -> list[asyncio.AbstractEventLoop]:
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def awaited_frames(coro: object) -> Iterator[FrameType]:
    """The frames of a suspended coroutine and of everything it awaits, outermost first."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def print_tasks() -> None:
    out = io.StringIO()
    for loop in running_loops():
        tasks = list(asyncio.all_tasks(loop))
        print(f"\n~~~~~~~~~~ {len(tasks)} asyncio task(s) of {loop!r} ~~~~~~~~~~", file=out)
        for task in tasks:
            print(f"{task!r} awaits:", file=out)
            for frame in awaited_frames(task.get_coro()):
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=out)
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


@contextmanager
def report_if_hung(timeout_s: float) -> Iterator[None]:
    """Print the asyncio tasks when the block is still running `LEAD_S` before `timeout_s`."""
    if timeout_s <= LEAD_S:
        yield
        return
    timer = threading.Timer(timeout_s - LEAD_S, print_tasks)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
