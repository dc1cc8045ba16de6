"""`NativeSettings`: the native runtime's per-plugin settings (importable without loading ctypes)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CALL_THREADS = 64
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class NativeSettings:
    """Per-plugin settings of the native runtime."""

    max_call_threads: int = MAX_CALL_THREADS
    stop_grace_s: float = STOP_GRACE_S
    inline_budget_us: float = 0.0  # > 0 enables `InlinePolicy` (see inline.py); off by default
