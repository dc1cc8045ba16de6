"""Event subscribers filtered by type receive only those events."""

from __future__ import annotations

from plughost.core.events import EventBus
from plughost.sdk.models import EventType, PluginEvent


def test_filtered_handlers_only_see_their_types() -> None:
    bus = EventBus()
    everything: list[PluginEvent] = []
    lifecycle: list[PluginEvent] = []
    bus.add_handler(everything.append)
    bus.add_handler(lifecycle.append, {EventType.LOAD, EventType.UNLOAD})
    bus.emit("p", EventType.EXECUTE, message="call")
    bus.emit("p", EventType.LOAD)
    bus.add_handler(lambda e: None, {EventType.EXECUTE})  # adding a handler refreshes the routing
    bus.emit("p", EventType.UNLOAD)
    assert [e.event_type for e in everything] == [EventType.EXECUTE, EventType.LOAD, EventType.UNLOAD]
    assert [e.event_type for e in lifecycle] == [EventType.LOAD, EventType.UNLOAD]
    bus.remove_handler(lifecycle.append)
    bus.emit("p", EventType.LOAD)
    assert len(lifecycle) == 2 and len(everything) == 4
    assert len(bus.history()) == 4
