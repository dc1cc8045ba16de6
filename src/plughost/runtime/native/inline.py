"""Opt-in: learn which methods may run on the event loop thread instead of a worker thread.

A hop to a worker thread costs tens of microseconds; a trivial native call costs a few.
With a budget set (`NativeSettings.inline_budget_us`), a method that ran `warmup` times on a
worker thread without calling back into the host, within budget + `THREAD_SLACK_US` (timings on a
worker thread include waiting for the GIL and the scheduler; at most a quarter of the runs may be
slower), runs inline from then on. Inline runs are timed exactly: when a quarter of the last
`WINDOW` inline runs were over the budget (single stalls are the OS scheduler, not the plugin),
or one run took longer than `BLOCKED_S`, the method goes back to the worker threads (the third
time for good); a callback bans it at once. An inline call cannot be timed out by the guard —
keep the budget small (≤ 100 µs).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_WARMUP = 32
MAX_DEMOTIONS = 3
THREAD_SLACK_US = 1000.0
WINDOW = 32
BLOCKED_S = 0.1


@dataclass
class _Record:
    fast: int = 0
    slow: int = 0
    demotions: int = 0
    recent_slow: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))


@dataclass
class InlinePolicy:
    budget_us: float = 0.0
    warmup: int = DEFAULT_WARMUP
    _records: dict[str, _Record] = field(default_factory=dict)
    _inline: set[str] = field(default_factory=set)
    _banned: set[str] = field(default_factory=set)

    def allows(self, method: str) -> bool:
        return method in self._inline

    def observe(self, method: str, elapsed_s: float, callbacks: int) -> None:
        """Record one run (called on the event loop thread; `elapsed_s` of the native call)."""
        if self.budget_us <= 0 or method in self._banned:
            return
        if callbacks:
            self._ban(method)
            return
        record = self._records.setdefault(method, _Record())
        if method in self._inline:
            record.recent_slow.append(elapsed_s * 1e6 > self.budget_us)
            if sum(record.recent_slow) * 4 >= WINDOW or elapsed_s > BLOCKED_S:
                self._inline.discard(method)
                record.demotions += 1
                record.fast = record.slow = 0
                record.recent_slow.clear()
                if record.demotions >= MAX_DEMOTIONS:
                    self._ban(method)
            return
        if elapsed_s * 1e6 <= self.budget_us + THREAD_SLACK_US:
            record.fast += 1
        else:
            record.slow += 1
        if record.fast >= self.warmup and record.slow * 4 <= record.fast:
            self._inline.add(method)

    def _ban(self, method: str) -> None:
        self._banned.add(method)
        self._inline.discard(method)
        self._records.pop(method, None)

    @property
    def inline_methods(self) -> frozenset[str]:
        return frozenset(self._inline)
