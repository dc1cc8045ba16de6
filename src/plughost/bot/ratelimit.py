"""A token bucket: `rate` tokens per second, up to `burst` saved; `acquire()` waits for a token."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Per-bot limit on outgoing sends. `rate <= 0` means unlimited."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.waited = 0

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token if one is available now."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a token, waiting (in order of arrival) until one is available."""
        if self.unlimited:
            return
        async with self._lock:
            while not self.try_acquire():
                self.waited += 1
                await asyncio.sleep((1 - self._tokens) / self.rate)
