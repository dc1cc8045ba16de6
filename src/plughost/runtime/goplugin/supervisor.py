"""Restart policy and the events a supervised plugin process reports."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

ProcessEventKind = Literal[
    "started",
    "crashed",
    "restarted",
    "restart_failed",
    "gave_up",
    "unhealthy",
    "stopped",
    "late_answer",
    "disconnected",
    "reconnected",
    "reconnect_failed",
]
"""`late_answer`: a call abandoned at its deadline returned within its grace (no restart needed).
`disconnected`, `reconnected`, `reconnect_failed`: the link to a remote plugin (`[remote]`)."""


@dataclass(frozen=True)
class ProcessEvent:
    """Something that happened to a plugin process (for logs, the manager's events, the breaker)."""

    plugin_id: str
    kind: ProcessEventKind
    message: str
    exit_code: int | None = None
    stderr_tail: str = ""
    pid: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts, at most `max_restarts` within `window_s`."""

    initial_delay_s: float = 0.1
    max_delay_s: float = 10.0
    factor: float = 2.0
    max_restarts: int = 5
    window_s: float = 60.0
    stable_after_s: float = 30.0


@dataclass
class RestartBudget:
    """Tracks restarts against a `RestartPolicy`."""

    policy: RestartPolicy
    _times: deque[float] = field(default_factory=deque)
    _streak: int = 0

    def allow(self) -> bool:
        now = time.monotonic()
        while self._times and now - self._times[0] > self.policy.window_s:
            self._times.popleft()
        return len(self._times) < self.policy.max_restarts

    def next_delay(self) -> float:
        """Record one restart and return how long to wait before it."""
        self._times.append(time.monotonic())
        delay = min(self.policy.max_delay_s, self.policy.initial_delay_s * self.policy.factor**self._streak)
        self._streak += 1
        return delay

    def crashed_after(self, uptime_s: float) -> None:
        """A process that ran stably for `stable_after_s` starts the backoff over."""
        if uptime_s >= self.policy.stable_after_s:
            self._streak = 0

    @property
    def exhausted_reason(self) -> str:
        """Why restarting stopped, for the error message."""
        return f"gave up after {self.policy.max_restarts} restarts within {self.policy.window_s:g} s"

    async def restart(
        self,
        start: Callable[[], Awaitable[T]],
        failed: Callable[[Exception], None],
        stopping: Callable[[], bool],
    ) -> T | None:
        """Wait out the backoff and `start` again until it succeeds (its result); None when the budget
        is spent or `stopping()` turns true. A failed start counts against the budget (`failed` hears of it)."""
        while not stopping():
            if not self.allow():
                return None
            await asyncio.sleep(self.next_delay())
            try:
                return await start()
            except Exception as exc:  # any failure to start counts against the restart budget
                failed(exc)
        return None
