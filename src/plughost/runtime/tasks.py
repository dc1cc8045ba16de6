"""Stopping tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None], timeout: float | None = None) -> None:
    """Cancel `tasks` and wait (up to `timeout`) until they have finished.

    Unlike `task.cancel(); with suppress(CancelledError): await task`, a cancellation of the
    *caller* while it waits is not mistaken for the task's and still propagates.
    """
    pending = {t for t in tasks if t is not None and t is not asyncio.current_task()}
    for task in pending:
        task.cancel()
    await wait_quietly(pending, timeout)


async def wait_quietly(tasks: Iterable[asyncio.Future[Any] | None], timeout: float | None = None) -> None:
    """Wait for `tasks` to finish (up to `timeout`), consuming their results and exceptions."""
    pending = {t for t in tasks if t is not None}
    if not pending:
        return
    done, _ = await asyncio.wait(pending, timeout=timeout)
    for task in done:
        if not task.cancelled():
            task.exception()  # mark retrieved: no "exception was never retrieved" noise
