"""`/metrics`: Prometheus text exposition of plugin calls, latencies, breakers and bot lanes."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from plughost.guard.metrics import LATENCY_BUCKETS_S
from plughost.manage.context import ManageContext, context

router = APIRouter(tags=["host"])
BREAKER_STATES = ("closed", "open", "half_open")
LANE_COUNTERS = ("processed", "answered", "shed", "duplicates", "malformed", "plugin_failures", "send_failures")


class HostCollector(Collector):
    """Reads the guard's and the dispatcher's figures at each scrape (nothing is copied in between)."""

    def __init__(self, ctx: ManageContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        manager = self.ctx.host.manager
        labels = ["plugin", "handler"]
        calls = CounterMetricFamily("plughost_plugin_calls", "Calls per plugin handler.", labels=labels)
        failures = CounterMetricFamily("plughost_plugin_failures", "Failed calls per plugin handler.", labels=labels)
        timeouts = CounterMetricFamily("plughost_plugin_timeouts", "Timed-out calls per plugin handler.", labels=labels)
        latency = HistogramMetricFamily(
            "plughost_plugin_call_seconds", "Call latency per plugin handler.", labels=labels
        )
        breaker = GaugeMetricFamily(
            "plughost_plugin_breaker_state", "1 for the circuit breaker's current state.", labels=["plugin", "state"]
        )
        state = GaugeMetricFamily("plughost_plugin_enabled", "1 when the plugin is enabled.", labels=["plugin"])
        for instance in manager.list_plugins():
            plugin_id = instance.id
            state.add_metric([plugin_id], 1.0 if instance.is_enabled else 0.0)
            current = str(manager.guard.breaker(plugin_id).state)
            for name in BREAKER_STATES:
                breaker.add_metric([plugin_id, name], 1.0 if name == current else 0.0)
            for handler, metrics in manager.guard.metrics(plugin_id).items():
                key = [plugin_id, handler]
                calls.add_metric(key, metrics.calls)
                failures.add_metric(key, metrics.failures)
                timeouts.add_metric(key, metrics.timeouts)
                cumulative = list(accumulate(metrics.buckets))
                buckets = [(str(b), float(n)) for b, n in zip(LATENCY_BUCKETS_S, cumulative, strict=False)]
                buckets.append(("+Inf", float(cumulative[-1])))
                latency.add_metric(key, buckets, metrics.latency_sum_s)
        yield from (calls, failures, timeouts, latency, breaker, state)
        yield from self._lanes()

    def _lanes(self) -> Iterator[Metric]:
        rows = self.ctx.host.dispatcher.status()
        depth = GaugeMetricFamily("plughost_bot_lane_queued", "Events waiting in a bot's lane.", labels=["bot"])
        in_flight = GaugeMetricFamily("plughost_bot_lane_in_flight", "Events being handled.", labels=["bot"])
        counters = {
            name: CounterMetricFamily(f"plughost_bot_{name}", f"Bot events: {name.replace('_', ' ')}.", labels=["bot"])
            for name in LANE_COUNTERS
        }
        for row in rows:
            bot = str(row["bot"])
            depth.add_metric([bot], float(row.get("queued", 0)))
            in_flight.add_metric([bot], float(row.get("in_flight", 0)))
            for name, family in counters.items():
                family.add_metric([bot], float(row.get(name, 0)))
        yield depth
        yield in_flight
        yield from counters.values()


def metrics_registry(ctx: ManageContext) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(ctx))
    return registry


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Annotated[ManageContext, Depends(context)]) -> Response:
    return Response(generate_latest(metrics_registry(ctx)), media_type=CONTENT_TYPE_LATEST)
