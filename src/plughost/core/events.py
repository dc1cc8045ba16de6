"""Plugin events: a bounded history and subscribers (sync or async)."""

from __future__ import annotations

import heapq
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from operator import itemgetter
from time import time as wall_clock
from typing import Any

from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger(__name__)
EventHandler = Callable[[PluginEvent], Awaitable[None] | None]
_Record = tuple[str, EventType, float, bool, str, str | None, Mapping[str, Any] | None]
_EXECUTE = EventType.EXECUTE
_AT = itemgetter(2)


class EventBus:
    """Records every `PluginEvent` and hands it to subscribers.

    A handler that raises is logged and never breaks the operation that emitted the event.
    Async handlers run as tasks of the bus's owner and are cancelled by `aclose`. Events are kept
    as plain records and become `PluginEvent` models only when someone looks at them. The
    execute event of every successful call is recorded apart, as `(plugin_id, handler,
    perf_counter)` through `record_execution` (a C-level append the guard calls directly, which
    also notifies subscribers while any wants execute events), and merged into the history by time
    when it is read.
    """

    def __init__(self, history: int = 1000, *, tasks: TaskOwner | None = None) -> None:
        self._limit = history
        self._history: deque[_Record] = deque(maxlen=history)
        self._executions: deque[tuple[str, str, float]] = deque(maxlen=history)
        self.record_execution: Callable[[tuple[str, str, float]], None] = self._executions.append
        """Record one successful call: `(plugin_id, handler, time.perf_counter() when it started)`."""
        self._wall_offset = time.time() - time.perf_counter()
        self._handlers: list[EventHandler] = []
        self._filters: list[frozenset[EventType] | None] = []
        self._by_type: dict[EventType, list[EventHandler]] = {}
        self._tasks = tasks if tasks is not None else TaskOwner("plugin events")

    def add_handler(self, handler: EventHandler, event_types: Iterable[EventType] | None = None) -> None:
        """Subscribe `handler` to every event, or only to `event_types` (then other events stay cheap)."""
        self._handlers.append(handler)
        self._filters.append(frozenset(event_types) if event_types is not None else None)
        self._subscriptions_changed()

    def remove_handler(self, handler: EventHandler) -> None:
        index = self._handlers.index(handler)
        del self._handlers[index], self._filters[index]
        self._subscriptions_changed()

    def _subscriptions_changed(self) -> None:
        self._by_type.clear()
        watched = any(f is None or _EXECUTE in f for f in self._filters)
        self.record_execution = self._record_and_notify if watched else self._executions.append

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

    def _record_and_notify(self, entry: tuple[str, str, float], /) -> None:
        """`record_execution` while someone wants execute events: record, then hand it to them."""
        self._executions.append(entry)
        plugin_id, handler, started = entry
        self.emit_record((plugin_id, _EXECUTE, started + self._wall_offset, True, handler, None, None))

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
        """Recorded events (the newest `history` of them), oldest first, optionally filtered."""
        offset = self._wall_offset
        executions = [(p, _EXECUTE, at + offset, True, h, None, None) for p, h, at in self._executions]
        records = list(heapq.merge(self._history, executions, key=_AT))[-self._limit :]
        return [
            _event(r)
            for r in records
            if (plugin_id is None or r[0] == plugin_id) and (event_type is None or r[1] == event_type)
        ]

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Let pending async handlers finish for up to `grace_s`, then cancel the rest."""
        await self._tasks.aclose(grace=grace_s, timeout=grace_s)

    def _deliver(self, handler: EventHandler, event: PluginEvent) -> None:
        try:
            result = handler(event)
        except Exception:
            log.exception("event handler %r failed on %s of %s", handler, event.event_type, event.plugin_id)
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
            log.exception("event handler %r failed on %s of %s", handler, event.event_type, event.plugin_id)


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
