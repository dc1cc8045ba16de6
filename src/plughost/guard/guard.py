"""Every call into a plugin passes the guard: breaker → timeout → call → metrics + event.

`Guard.call` answers an `Outcome` and never raises (only the caller's own cancellation
propagates); `execution_result` turns an outcome into LurkBot's `PluginExecutionResult`.
"""

from __future__ import annotations

import asyncio
import bisect
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from plughost.guard.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from plughost.guard.call_timeout import CallTimeout
from plughost.guard.metrics import LATENCY_BUCKETS_S, HandlerMetrics
from plughost.guard.watchdog import LoopWatchdog
from plughost.sdk.call import ISOLATED, PLUGIN_ERROR, TIMED_OUT, UNAVAILABLE, Call, Outcome, PluginError
from plughost.sdk.deadlines import DeadlineClock, TimeoutDeadline, deadlines_of
from plughost.sdk.models import EventType, PluginExecutionResult
from plughost.sdk.stepping import resumed

DEFAULT_TIMEOUT_S = 30.0
# Enum members looked up once: attribute access on an Enum class is slow on the hot path.
_CLOSED = BreakerState.CLOSED
_perf_counter = time.perf_counter
_bucket = bisect.bisect_left
_BUCKETS = LATENCY_BUCKETS_S
_FASTEST = LATENCY_BUCKETS_S[0]  # most calls end in the first bucket: one comparison instead of a bisect


class EventSink(Protocol):
    """Where the guard reports execute/error/isolate/recover events."""

    def __call__(
        self,
        plugin_id: str,
        event_type: EventType,
        success: bool,
        message: str,
        error: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> None: ...


class ExecutionLog(Protocol):
    """Where the execute event of every successful call is recorded (the manager's event bus)."""

    def record_execution(self, entry: tuple[str, str, float], /) -> None:
        """Record `(plugin_id, handler, perf_counter() when it started)` (and tell whoever listens)."""
        ...


class _NoExecutionLog:
    def record_execution(self, entry: tuple[str, str, float], /) -> None:
        return None


_UNRECORDED = _NoExecutionLog()


class _Guarded:
    """The guard's state of one plugin: its breaker and its metrics by handler."""

    __slots__ = ("breaker", "handlers")

    def __init__(self, breaker: CircuitBreaker, handlers: dict[str, HandlerMetrics]) -> None:
        self.breaker = breaker
        self.handlers = handlers


class CallTarget(Protocol):
    """What the guard calls: a plugin handle. A handle that ends every call itself once a deadline
    passes (a worker's invoke lane, a gRPC deadline) says so with `call_deadline_s` (see `DeadlineKeeper`)."""

    def call(self, call: Call) -> Coroutine[Any, Any, Outcome]: ...


class DeadlineKeeper(Protocol):
    """A handle whose calls end with a `timed_out` outcome after `call_deadline_s` seconds. When
    that is not later than the guard's limit and the call cannot prompt the user (its bot has no
    `CallDeadlines`), the guard arms no timeout of its own: one deadline per call, not two."""

    call_deadline_s: float


@dataclass(frozen=True)
class GuardPolicy:
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    default_timeout_s: float = DEFAULT_TIMEOUT_S


def _ignore_event(*_: Any) -> None:
    return None


def _ignore_change(plugin_id: str, isolated: bool) -> None:
    return None


class Guard:
    """Holds a breaker per plugin and metrics per (plugin, handler)."""

    def __init__(
        self,
        policy: GuardPolicy | None = None,
        *,
        emit: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or GuardPolicy()
        self._emit: EventSink = emit if emit is not None else _ignore_event  # type: ignore[assignment]
        self._executions: ExecutionLog = _UNRECORDED
        self._clock = clock
        self._on_breaker_change: Callable[[str, bool], None] = _ignore_change
        self._plugins: dict[str, _Guarded] = {}
        self._timeouts: DeadlineClock | None = None  # the timer of calls that suspended (its loop's)
        self.watchdog = LoopWatchdog(Guard.call.__code__)
        """Interrupts in-process plugin code that holds the event loop past its call's deadline."""

    @property
    def policy(self) -> GuardPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: GuardPolicy) -> None:
        self._policy = policy
        self._default_timeout = policy.default_timeout_s

    def set_event_sink(
        self,
        emit: EventSink,
        *,
        executions: ExecutionLog | None = None,
        on_breaker_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        """Where events go (`executions` records the execute event of every successful call,
        the hot path's own shortcut), and who hears of isolation (True) and recovery (False)."""
        self._emit = emit
        self._executions = executions or _UNRECORDED
        if on_breaker_change is not None:
            self._on_breaker_change = on_breaker_change

    # state ------------------------------------------------------------------------------------
    def _guarded(self, plugin_id: str) -> _Guarded:
        guarded = self._plugins.get(plugin_id)
        if guarded is None:
            guarded = self._plugins[plugin_id] = _Guarded(CircuitBreaker(self.policy.breaker, self._clock), {})
        return guarded

    def breaker(self, plugin_id: str) -> CircuitBreaker:
        return self._guarded(plugin_id).breaker

    def metrics(self, plugin_id: str) -> dict[str, HandlerMetrics]:
        """Metrics of one plugin, by handler name."""
        return self._guarded(plugin_id).handlers

    def clear(self, plugin_id: str) -> bool:
        """Close a plugin's circuit by hand (`/dynamic-errors clear`); an isolated plugin recovers
        at once (a `recover` event). True when the circuit was not closed."""
        breaker = self.breaker(plugin_id)
        was_open = breaker.state is not _CLOSED
        breaker.clear()
        if was_open:
            self._emit(plugin_id, EventType.RECOVER, True, "circuit closed by hand", None, None)
            self._on_breaker_change(plugin_id, False)
        return was_open

    def isolate(self, plugin_id: str, seconds: float, reason: str) -> bool:
        """Open a plugin's circuit by hand for `seconds` (an `isolate` event saying `reason`);
        True when it was not open."""
        opened = self.breaker(plugin_id).isolate(seconds)
        if opened:
            self._emit(plugin_id, EventType.ISOLATE, False, reason, None, {"isolated_for_s": round(seconds, 3)})
            self._on_breaker_change(plugin_id, True)
        return opened

    def forget(self, plugin_id: str) -> None:
        """Drop a plugin's breaker and metrics (after unload)."""
        self._plugins.pop(plugin_id, None)

    def snapshot(self, plugin_id: str) -> dict[str, Any]:
        breaker = self.breaker(plugin_id)
        return {
            "breaker": {
                "state": str(breaker.state),
                "consecutive_failures": breaker.consecutive_failures,
                "isolated_for_s": round(breaker.seconds_left(), 3),
                "isolations": breaker.total_isolations,
            },
            "handlers": {name: m.snapshot() for name, m in self.metrics(plugin_id).items()},
        }

    # calls ------------------------------------------------------------------------------------
    async def call(self, plugin_id: str, handle: CallTarget, call: Call, timeout: float | None = None) -> Outcome:
        """Guarded call; failures are in the outcome, never raised.

        This is the hot path of every plugin call: the handler's first step runs eagerly and a
        timeout is armed only if it suspends. A step that overran the limit without suspending
        is a timeout too: a late result is never a success.
        """
        guarded = self._plugins.get(plugin_id) or self._guarded(plugin_id)
        breaker = guarded.breaker
        if breaker.state is not _CLOSED and not breaker.allow():
            return _isolated(plugin_id, breaker)
        name = call.handler
        metrics = guarded.handlers.get(name) or guarded.handlers.setdefault(name, HandlerMetrics())
        limit = timeout if timeout is not None else self._default_timeout
        started = _perf_counter()
        waited = 0.0  # time a prompt to the user stopped the clock: not the plugin's
        try:
            coro = handle.call(call)
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                outcome: Outcome = stop.value
            else:
                if _keeps_deadline(handle, limit, call):
                    outcome = await resumed(coro, yielded)
                else:
                    timeout_scope = CallTimeout(limit, self._timeouts)
                    self._timeouts = timeout_scope.clock  # shared by the calls that suspend (a new loop: a new one)
                    outcome, waited = await _rest_under_timeout(coro, yielded, timeout_scope, call)
        except TimeoutError:
            outcome = Outcome.failed(TIMED_OUT, f"timed out after {limit:g} s", timeout_s=limit)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            outcome = Outcome.failed(PLUGIN_ERROR, "the handler cancelled itself (CancelledError)")
        except BaseException as exc:  # a runtime's bug must not reach the host either
            outcome = Outcome(None, (), PluginError.from_exception(exc))
        elapsed = _perf_counter() - started - waited
        metrics.latencies.append(elapsed)
        metrics.buckets[0 if elapsed <= _FASTEST else _bucket(_BUCKETS, elapsed)] += 1
        metrics.latency_sum_s += elapsed
        error = outcome.error
        if error is None and elapsed > limit:
            message = f"timed out after {limit:g} s (the handler ran {elapsed:.2f} s without yielding)"
            outcome = Outcome.failed(TIMED_OUT, message, sends=outcome.sends, timeout_s=limit)
            error = outcome.error
        if error is not None and error.counts_as_failure:
            error = replace(error, detail={**error.detail, "error_id": secrets.token_hex(4)})
            self._failed(plugin_id, name, breaker, metrics, error)
            return Outcome(None, outcome.sends, error)
        if breaker.consecutive_failures and breaker.record_success():
            self._emit(plugin_id, EventType.RECOVER, True, "circuit closed after a successful call", None, None)
            self._on_breaker_change(plugin_id, False)
        self._executions.record_execution((plugin_id, name, started))
        return outcome

    def _failed(
        self, plugin_id: str, name: str, breaker: CircuitBreaker, metrics: HandlerMetrics, error: PluginError
    ) -> None:
        message = str(error)
        detail = error.detail
        metrics.record_error(name, error.message, str(detail.get("error_id", "")), str(detail.get("at", "")))
        if error.code == TIMED_OUT:
            metrics.timeouts += 1
        isolated = breaker.record_failure()
        self._emit(plugin_id, EventType.ERROR, False, name, message, error_metadata(error, name))
        if isolated:
            self._emit(
                plugin_id,
                EventType.ISOLATE,
                False,
                f"isolated for {breaker.policy.cooldown_s:g} s after {breaker.consecutive_failures} failures",
                message,
                {"failures": breaker.consecutive_failures},
            )
            self._on_breaker_change(plugin_id, True)


def _isolated(plugin_id: str, breaker: CircuitBreaker) -> Outcome:
    left = breaker.seconds_left()
    message = f"plugin '{plugin_id}' is isolated by its circuit breaker for {left:.1f} s more"
    return Outcome.failed(ISOLATED, message, retry_after_s=round(left, 3))


def _keeps_deadline(handle: CallTarget, limit: float, call: Call) -> bool:
    """True when `handle` ends `call` by `limit` itself (a `DeadlineKeeper`) and no prompt to the
    user can stop the call's clock (its bot has no `CallDeadlines`): the guard's timeout is not needed."""
    kept = getattr(handle, "call_deadline_s", None)
    return kept is not None and kept <= limit and (call.bot is None or deadlines_of(call.bot) is None)


async def _rest_under_timeout(
    coro: Coroutine[Any, Any, Outcome], yielded: Any, timeout: CallTimeout, call: Call
) -> tuple[Outcome, float]:
    """The rest of a call that suspended, under its timeout, and how long its clock stood still: a
    prompt to the user stops it (`plughost.sdk.deadlines`)."""
    with timeout as scope:
        deadlines = deadlines_of(call.bot) if call.bot is not None else None
        if deadlines is None:
            outcome: Outcome = await resumed(coro, yielded)
            return outcome, 0.0
        deadline = TimeoutDeadline(scope)
        deadlines.add(deadline)
        try:
            outcome = await resumed(coro, yielded)
        finally:
            deadlines.remove(deadline)
        return outcome, deadline.paused_s


def error_metadata(error: PluginError, handler: str) -> dict[str, Any]:
    """What `PluginExecutionResult.metadata` and error events say about a failed call."""
    return {
        "code": error.code,
        "exception_type": error.type or None,
        "timed_out": error.code == TIMED_OUT,
        "isolated": error.code == ISOLATED,
        "unavailable": error.code == UNAVAILABLE,
        "retryable": error.retryable,
        "handler": handler,
        **error.detail,
    }


def execution_result(outcome: Outcome, elapsed: float, handler: str) -> PluginExecutionResult:
    """LurkBot's result of a call: success and result, or the error text and its metadata."""
    error = outcome.error
    if error is None:
        return PluginExecutionResult(success=True, result=outcome.value, execution_time=elapsed)
    return PluginExecutionResult(
        success=False, error=str(error), execution_time=elapsed, metadata=error_metadata(error, handler)
    )
