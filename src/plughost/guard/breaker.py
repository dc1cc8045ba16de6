"""QimenBot's circuit breaker: N consecutive failures isolate a plugin, then one trial call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """How many consecutive failures open the circuit, and for how long."""

    failure_threshold: int = 3
    cooldown_s: float = 60.0


class CircuitBreaker:
    """Per-plugin breaker. Not thread-safe: used from the event loop only."""

    __slots__ = ("_clock", "consecutive_failures", "isolated_until", "policy", "state", "total_isolations")

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.isolated_until: float | None = None
        self.total_isolations = 0

    def allow(self) -> bool:
        """May a call go through now? An expired isolation lets exactly one trial call pass."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self.isolated_until is not None and self._clock() >= self.isolated_until:
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def record_success(self) -> bool:
        """Count a success; True when this closed an open/half-open circuit (recovery)."""
        recovered = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.isolated_until = None
        return recovered

    def record_failure(self) -> bool:
        """Count a failure; True when this opened the circuit (isolation)."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.policy.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self.isolated_until = self._clock() + self.policy.cooldown_s
            self.total_isolations += 1
            return True
        return False

    def clear(self) -> None:
        """Reset by hand (`/dynamic-errors clear`)."""
        self.record_success()

    def isolate(self, seconds: float) -> bool:
        """Open the circuit by hand for `seconds` (another host of a cluster isolated the plugin);
        True when it was not open."""
        opened = self.state is not BreakerState.OPEN
        self.state = BreakerState.OPEN
        self.isolated_until = self._clock() + seconds
        if opened:
            self.total_isolations += 1
        return opened

    def seconds_left(self) -> float:
        if self.state is not BreakerState.OPEN or self.isolated_until is None:
            return 0.0
        return max(0.0, self.isolated_until - self._clock())
