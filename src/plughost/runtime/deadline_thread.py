"""Plugin code that runs before the plugin can be guarded (its import) runs on a thread of its own
with a deadline: module-level code that loops or waits cannot freeze the host.

When the deadline passes, the thread is interrupted (`ImportOvertime` is raised in it the next
time it runs Python code: at once in a loop, when a blocking C call such as `time.sleep` returns)
and the caller gets a `TimeoutError` at once; the thread, a daemon, ends by itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ImportOvertime(BaseException):
    """Raised in plugin code that ran past its deadline before the plugin was loaded."""


async def run_with_deadline(work: Callable[[], T], timeout_s: float, *, name: str) -> T:
    """`work()` on a new daemon thread named `name`; its result or exception, or `TimeoutError`
    after `timeout_s` (the thread is then interrupted). Cancelling the caller interrupts it too."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            try:
                result = work()
            except BaseException as exc:  # handed to the caller as it is
                loop.call_soon_threadsafe(settle, None, exc)
            else:
                loop.call_soon_threadsafe(settle, result, None)
        except (ImportOvertime, RuntimeError):  # interrupted as it ended, or the loop is closed
            pass

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(run,), name=name, daemon=True)
    thread.start()
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(done)
    except BaseException:
        if not done.done() and thread.ident is not None:
            done.cancel()  # what the thread still ends with is nobody's
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(ImportOvertime))
        raise
