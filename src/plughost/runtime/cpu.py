"""CPU time per call: what one call's own code used, on whichever threads ran it.

A worker with `limits.cpu_seconds` charges each call with the CPU time of its code — not the
worker's whole life, so start-up and earlier calls never add up against a healthy plugin:

- `metered(coroutine, meter)` runs a call's coroutine and charges `meter` with the CPU time of
  the event loop's thread while it runs a step of it (an async handler, the binding of the
  arguments, a native call made inline);
- while `CURRENT_CALL` is set, the plugin's thread pools wrap what they run with `charged(fn)`,
  which charges the same meter with the time of the pool thread (a sync handler, a native call);
- `CpuWatchdog` looks at the meters of the calls in flight every few milliseconds and reports
  the first one past the limit — also while the call is still running, through the threads'
  CPU clocks.

The event-loop steps of tasks a handler starts (`ctx.spawn`, `asyncio.create_task`) are not
charged to the call; they inherit `CURRENT_CALL`, so sync work they hand to the plugin's threads
is, for as long as the call is in flight.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class CallCpu:
    """The CPU time one call has used so far, across the threads that ran its code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._used = 0.0
        self._running: dict[int, tuple[int, float]] = {}  # token → (thread CPU clock, its reading at entry)
        self._tokens = itertools.count()

    def enter(self) -> int:
        """The calling thread starts running code of the call; the token for `leave`."""
        clock = time.pthread_getcpuclockid(threading.get_ident())
        start = time.clock_gettime(clock)
        token = next(self._tokens)
        with self._lock:
            self._running[token] = (clock, start)
        return token

    def leave(self, token: int) -> None:
        """The calling thread stops running the call's code."""
        with self._lock:
            clock, start = self._running.pop(token)
            self._used += time.clock_gettime(clock) - start

    def seconds(self) -> float:
        """CPU seconds so far, the threads running the call's code right now included."""
        with self._lock:
            total = self._used
            for clock, start in self._running.values():
                with contextlib.suppress(OSError):  # the thread is ending
                    total += time.clock_gettime(clock) - start
        return total


CURRENT_CALL: contextvars.ContextVar[CallCpu | None] = contextvars.ContextVar("plughost_call_cpu", default=None)


def charged(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, charging the current call (if it is metered) with the CPU time of the thread that runs it."""
    meter = CURRENT_CALL.get()
    if meter is None:
        return fn

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        token = meter.enter()
        try:
            return fn(*args, **kwargs)
        finally:
            meter.leave(token)

    return run


class _Metered(Generic[T]):
    """Drives a coroutine step by step, charging `meter` with each step's CPU time."""

    __slots__ = ("_coroutine", "_meter")

    def __init__(self, coroutine: Coroutine[Any, Any, T], meter: CallCpu) -> None:
        self._coroutine = coroutine
        self._meter = meter

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, meter = self._coroutine, self._meter
        value: Any = None
        error: BaseException | None = None
        while True:
            token = meter.enter()
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            finally:
                meter.leave(token)
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # thrown in by the task (cancellation): passed on to the call
                value, error = None, exc


async def metered(coroutine: Coroutine[Any, Any, T], meter: CallCpu) -> T:
    """Await `coroutine` with `meter` as the current call's meter (see the module docstring)."""
    token = CURRENT_CALL.set(meter)
    try:
        return await _Metered(coroutine, meter)
    finally:
        CURRENT_CALL.reset(token)


class CpuWatchdog:
    """A daemon thread that calls `exceeded(meter, seconds)` once a call in flight passes `limit_s`.

    It also keeps the worker's kernel backstop ahead: every round it moves RLIMIT_CPU's soft limit
    to `backstop_s` past the CPU time the process has used, so the kernel stops (SIGXCPU) only a
    worker whose watchdog could not run for that long — a call stuck in C code that holds the GIL.
    """

    def __init__(
        self,
        limit_s: float,
        exceeded: Callable[[CallCpu, float], None],
        *,
        backstop_s: float | None = None,
        interval_s: float = 0.02,
    ) -> None:
        self.limit_s = limit_s
        self.backstop_s = backstop_s
        self.interval_s = interval_s
        self._exceeded = exceeded
        self._calls: set[CallCpu] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="plughost-cpu-watchdog", daemon=True)

    def start(self) -> None:
        if self.backstop_s is not None:
            _push_backstop(self.backstop_s)  # from now on: start-up's allowance is over
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def track(self, meter: CallCpu) -> None:
        with self._lock:
            self._calls.add(meter)

    def untrack(self, meter: CallCpu) -> None:
        with self._lock:
            self._calls.discard(meter)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                calls = list(self._calls)
            for meter in calls:
                used = meter.seconds()
                if used > self.limit_s:
                    self._exceeded(meter, used)
                    return
            if self.backstop_s is not None:
                _push_backstop(self.backstop_s)


def _push_backstop(ahead_s: float) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    target = int(time.process_time() + ahead_s) + 1
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if soft != target:  # lowered after start-up's allowance, raised as a healthy worker goes on
        resource.setrlimit(resource.RLIMIT_CPU, (target, hard))


__all__ = ["CURRENT_CALL", "CallCpu", "CpuWatchdog", "charged", "metered"]
