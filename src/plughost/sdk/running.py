"""The running event loop, known without asking the system.

On Python 3.11 `asyncio.get_running_loop()` (and `asyncio.current_task()` without a loop) makes a
`getpid` system call every time, to notice a fork. On the hot path of a call that is a measurable
share of the work, so code that already holds the loop checks it is still the one running here.
Like asyncio's loops, objects that remember a loop this way (task owners, the guard's deadline
clock) are not for a forked child: a child makes its own.
"""

from __future__ import annotations

import asyncio
import threading


def running_loop(known: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    """The running loop: `known` when it is the loop running in this thread, else asked for.

    `RuntimeError` when no loop runs, as `asyncio.get_running_loop()`.
    """
    if known is not None and getattr(known, "_thread_id", None) == threading.get_ident():
        return known  # a loop that runs in this thread is the running loop: only one can
    return asyncio.get_running_loop()


__all__ = ["running_loop"]
