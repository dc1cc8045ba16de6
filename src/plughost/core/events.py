"""Plugin events: a bounded history and subscribers (sync or async)."""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import time as wall_clock
from typing import Any

from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger(__name__)
EventHandler = Callable[[PluginEvent], Awaitable[None] | None]
_Record = tuple[str, EventType, float, bool, str, str | None, Mapping[str, Any] | None]
_EXECUTE = EventType.EXECUTE


class EventBus:
    """Records every `PluginEvent` and hands it to subscribers.

    A handler that raises is logged and never breaks the operation that emitted the event.
    Async handlers run as tasks of the bus's owner and are cancelled by `aclose`. Events are kept
    as plain records and become `PluginEvent` models only when someone looks at them, so the
    execute event of every call stays cheap.
    """

    def __init__(self, history: int = 1000, *, tasks: TaskOwner | None = None) -> None:
        self._history: deque[_Record] = deque(maxlen=history)
        self._handlers: list[EventHandler] = []
        self._filters: list[frozenset[EventType] | None] = []
        self._by_type: dict[EventType, list[EventHandler]] = {}
        self._tasks = tasks if tasks is not None else TaskOwner("plugin events")

    def add_handler(self, handler: EventHandler, event_types: Iterable[EventType] | None = None) -> None:
        """Subscribe `handler` to every event, or only to `event_types` (then other events stay cheap)."""
        self._handlers.append(handler)
        self._filters.append(frozenset(event_types) if event_types is not None else None)
        self._by_type.clear()

    def remove_handler(self, handler: EventHandler) -> None:
        index = self._handlers.index(handler)
        del self._handlers[index], self._filters[index]
        self._by_type.clear()

    def emit(
        self,
        plugin_id: str,
        event_type: EventType,
        success: bool = True,
        message: str = "",
        error: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        record: _Record = (plugin_id, event_type, wall_clock(), success, message, error, metadata)
        self._history.append(record)
        self.emit_record(record)

    def executed(self, plugin_id: str, handler: str) -> None:
        """`emit(plugin_id, EXECUTE, True, handler)`, shortened for the hot path of every call."""
        record: _Record = (plugin_id, _EXECUTE, wall_clock(), True, handler, None, None)
        self._history.append(record)
        handlers = self._by_type.get(_EXECUTE)
        if handlers is None or handlers:
            self.emit_record(record)

    def emit_record(self, record: _Record) -> None:
        """Hand an already recorded event to its subscribers."""
        event_type = record[1]
        handlers = self._by_type.get(event_type)
        if handlers is None:
            handlers = self._by_type[event_type] = [
                h
                for h, wanted in zip(self._handlers, self._filters, strict=True)
                if wanted is None or event_type in wanted
            ]
        if handlers:
            event = _event(record)
            for handler in list(handlers):
                self._deliver(handler, event)

    def history(self, plugin_id: str | None = None, event_type: EventType | None = None) -> list[PluginEvent]:
        """Recorded events, oldest first, optionally filtered by plugin and type."""
        return [
            _event(r)
            for r in self._history
            if (plugin_id is None or r[0] == plugin_id) and (event_type is None or r[1] == event_type)
        ]

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Let pending async handlers finish for up to `grace_s`, then cancel the rest."""
        await self._tasks.aclose(grace=grace_s, timeout=grace_s)

    def _deliver(self, handler: EventHandler, event: PluginEvent) -> None:
        try:
            result = handler(event)
        except Exception:
            log.exception("event handler %r failed on %s of %s", handler, event.event_type, event.plugin_name)
            return
        if inspect.isawaitable(result):
            try:
                task = self._tasks.spawn(self._await_handler(handler, result, event), name="event-handler")
            except RuntimeError:  # the bus is closed: the host is shutting down
                if inspect.iscoroutine(result):
                    result.close()
                return
            if inspect.iscoroutine(result):  # cancelled before it started: close it quietly
                coro = result
                task.add_done_callback(lambda t: coro.close() if t.cancelled() else None)

    @staticmethod
    async def _await_handler(handler: EventHandler, result: Awaitable[None], event: PluginEvent) -> None:
        try:
            await result
        except Exception:
            log.exception("event handler %r failed on %s of %s", handler, event.event_type, event.plugin_name)


def _event(record: _Record) -> PluginEvent:
    plugin_id, event_type, timestamp, success, message, error, metadata = record
    return PluginEvent(
        plugin_name=plugin_id,
        event_type=event_type,
        timestamp=timestamp,
        success=success,
        message=message,
        error=error,
        metadata=dict(metadata) if metadata else {},
    )
