"""The guard: circuit breaker, timeouts, metrics and events around every plugin call."""

from plughost.guard.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from plughost.guard.guard import CallFailed, Guard, GuardPolicy
from plughost.guard.metrics import HandlerMetrics

__all__ = ["BreakerPolicy", "BreakerState", "CallFailed", "CircuitBreaker", "Guard", "GuardPolicy", "HandlerMetrics"]
