"""The guard: circuit breaker, timeouts, metrics and events around every plugin call."""

from plughost.guard.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from plughost.guard.guard import Guard, GuardPolicy, error_metadata, execution_result
from plughost.guard.metrics import HandlerMetrics
from plughost.guard.watchdog import LoopWatchdog, PluginOvertime

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Guard",
    "GuardPolicy",
    "HandlerMetrics",
    "LoopWatchdog",
    "PluginOvertime",
    "error_metadata",
    "execution_result",
]
