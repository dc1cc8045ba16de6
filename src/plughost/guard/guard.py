"""Every call into a plugin passes the guard: breaker → timeout → call → metrics + event.

Exceptions never escape: `invoke` turns them into `PluginExecutionResult(success=False)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from plughost.guard.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from plughost.guard.metrics import HandlerMetrics
from plughost.guard.stepping import Resume
from plughost.sdk.models import EventType, PluginExecutionResult

DEFAULT_TIMEOUT_S = 30.0
# Enum members looked up once: attribute access on an Enum class is slow on the hot path.
_CLOSED = BreakerState.CLOSED
_EXECUTE = EventType.EXECUTE


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


class Invocable(Protocol):
    def invoke(self, name: str, request: Any) -> Coroutine[Any, Any, Any]: ...


@dataclass(frozen=True)
class GuardPolicy:
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    default_timeout_s: float = DEFAULT_TIMEOUT_S


class CallFailed(Exception):
    """Raised by `Guard.call`: the call did not succeed; `metadata` says why."""

    def __init__(self, message: str, metadata: dict[str, Any]) -> None:
        super().__init__(message)
        self.metadata = metadata


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
        self._clock = clock
        self._on_breaker_change: Callable[[str, bool], None] = _ignore_change
        self._breakers: dict[str, CircuitBreaker] = {}
        self._metrics: dict[str, dict[str, HandlerMetrics]] = {}

    def set_event_sink(self, emit: EventSink, *, on_breaker_change: Callable[[str, bool], None] | None = None) -> None:
        """Where events go, and who hears of isolation (True) and recovery (False)."""
        self._emit = emit
        if on_breaker_change is not None:
            self._on_breaker_change = on_breaker_change

    # state ------------------------------------------------------------------------------------
    def breaker(self, plugin_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(plugin_id)
        if breaker is None:
            breaker = self._breakers[plugin_id] = CircuitBreaker(self.policy.breaker, self._clock)
        return breaker

    def metrics(self, plugin_id: str) -> dict[str, HandlerMetrics]:
        """Metrics of one plugin, by handler name."""
        return self._metrics.setdefault(plugin_id, {})

    def forget(self, plugin_id: str) -> None:
        """Drop a plugin's breaker and metrics (after unload)."""
        self._breakers.pop(plugin_id, None)
        self._metrics.pop(plugin_id, None)

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
    async def invoke(
        self, plugin_id: str, handle: Invocable, name: str, request: Any, *, timeout: float | None = None
    ) -> PluginExecutionResult:
        """Guarded call; never raises (except cancellation of the caller)."""
        started = time.perf_counter()
        try:
            value = await self.call(plugin_id, handle, name, request, timeout=timeout)
        except CallFailed as failed:
            return PluginExecutionResult(
                success=False,
                error=str(failed),
                execution_time=time.perf_counter() - started,
                metadata=failed.metadata,
            )
        return PluginExecutionResult(success=True, result=value, execution_time=time.perf_counter() - started)

    async def call(
        self, plugin_id: str, handle: Invocable, name: str, request: Any, *, timeout: float | None = None
    ) -> Any:
        """Guarded call returning the handler's value; raises `CallFailed` on any failure.

        This is the hot path of every plugin call: the handler's first step runs eagerly and a
        timeout is armed only if it suspends (an in-process step cannot be interrupted anyway).
        """
        breaker = self._breakers.get(plugin_id) or self.breaker(plugin_id)
        if breaker.state is not _CLOSED and not breaker.allow():
            left = breaker.seconds_left()
            message = f"plugin '{plugin_id}' is isolated by its circuit breaker for {left:.1f} s more"
            raise CallFailed(message, {"isolated": True, "retry_after_s": round(left, 3)})
        handlers = self._metrics.get(plugin_id) or self.metrics(plugin_id)
        metrics = handlers.get(name) or handlers.setdefault(name, HandlerMetrics())
        metrics.calls += 1
        started = time.perf_counter()
        try:
            coro = handle.invoke(name, request)
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                value = stop.value
            else:
                async with asyncio.timeout(timeout if timeout is not None else self.policy.default_timeout_s):
                    value = await Resume(coro, yielded)
        except TimeoutError:
            limit = timeout if timeout is not None else self.policy.default_timeout_s
            metrics.timeouts += 1
            self._failed(plugin_id, name, breaker, metrics, f"timed out after {limit:g} s", "TimeoutError", True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(plugin_id, name, breaker, metrics, str(exc) or type(exc).__name__, type(exc).__name__)
        metrics.latencies.append(time.perf_counter() - started)
        if breaker.consecutive_failures and breaker.record_success():
            self._emit(plugin_id, EventType.RECOVER, True, "circuit closed after a successful call", None, None)
            self._on_breaker_change(plugin_id, False)
        self._emit(plugin_id, _EXECUTE, True, name, None, None)
        return value

    def _failed(
        self,
        plugin_id: str,
        name: str,
        breaker: CircuitBreaker,
        metrics: HandlerMetrics,
        message: str,
        exception_type: str,
        timed_out: bool = False,
    ) -> None:
        metrics.record_error(name, message)
        isolated = breaker.record_failure()
        metadata: dict[str, Any] = {"exception_type": exception_type, "timed_out": timed_out, "handler": name}
        self._emit(plugin_id, EventType.ERROR, False, name, message, metadata)
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
        raise CallFailed(f"{exception_type}: {message}" if not timed_out else message, metadata)
