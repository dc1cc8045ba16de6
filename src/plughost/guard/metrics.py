"""Per plugin and handler: calls, failures, last/recent errors, latency percentiles."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

RECENT_ERRORS = 10
LATENCY_WINDOW = 2048
LATENCY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
"""Upper bounds of the latency histogram (seconds); the last bucket counts everything slower."""


@dataclass(frozen=True)
class RecordedError:
    timestamp: float
    handler: str
    message: str
    error_id: str = ""  # what a chat user was shown, to find the detail
    at: str = ""  # where in the plugin it was raised (`file:line`), when known


@dataclass(slots=True)
class HandlerMetrics:
    """Counters for one handler of one plugin (of calls that ended); latencies kept over a sliding window."""

    failures: int = 0
    timeouts: int = 0
    last_error: str | None = None
    recent_errors: deque[RecordedError] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    """Calls per latency bucket (not cumulative), over the whole lifetime."""
    latency_sum_s: float = 0.0

    @property
    def calls(self) -> int:
        """Calls that ended, failed ones included (every call lands in one latency bucket)."""
        return sum(self.buckets)

    def percentile(self, q: float) -> float | None:
        """Latency percentile in seconds over the window (q in 0..100)."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))
        return ordered[index]

    def record_error(self, handler: str, message: str, error_id: str = "", at: str = "") -> None:
        self.failures += 1
        self.last_error = message
        self.recent_errors.append(RecordedError(time.time(), handler, message, error_id, at))

    def snapshot(self) -> dict[str, Any]:
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "last_error": self.last_error,
            "recent_errors": [e.__dict__ for e in self.recent_errors],
            "p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3),
        }
