"""Numbered, bounded histories with live followers: the event and log streams the API serves.

Every item gets the next id (1, 2, …). A follower asks for what came after the last id it saw
(`after`) and waits for more (`wait`); Server-Sent Events resume from `Last-Event-ID` this way.
When a follower asks for ids the history no longer holds, `after` says how many it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from plughost.sdk.models import EventType, PluginEvent

PLUGIN_LOGGER_PREFIX = "plughost.plugin."


class Entry:
    """One item of a feed with its id; its Server-Sent Events form is encoded once, when first sent."""

    __slots__ = ("_wire", "id", "item")

    def __init__(self, item_id: int, item: dict[str, Any]) -> None:
        self.id = item_id
        self.item = item
        self._wire: bytes | None = None

    def as_json(self) -> dict[str, Any]:
        return self.item | {"id": self.id}

    @property
    def wire(self) -> bytes:
        """`id: …` and `data: …` lines of this item as one SSE event."""
        if self._wire is None:
            data = json.dumps(self.as_json(), default=str, ensure_ascii=False, separators=(",", ":"))
            self._wire = f"id: {self.id}\ndata: {data}\n\n".encode()
        return self._wire


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a follower gets: items after its last id, and how many it missed (aged out)."""

    items: list[Entry]
    missed: int = 0


class Feed:
    """A bounded history of JSON-shaped items with increasing ids, and waiters for new ones."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Entry] = deque(maxlen=limit)
        self._next_id = 1
        self._arrived: asyncio.Event | None = None
        self.closed = False

    def close(self) -> None:
        """Wake every waiter for good: followers end (the server is stopping)."""
        self.closed = True
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            arrived.set()

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def publish(self, item: dict[str, Any]) -> int:
        """Record `item`; wakes every waiter. Call on the event loop's thread."""
        item_id = self._next_id
        self._next_id += 1
        self._items.append(Entry(item_id, item))
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            arrived.set()
        return item_id

    def after(self, last_id: int, limit: int | None = None) -> Backlog:
        """Items with ids above `last_id`, oldest first (at most `limit`)."""
        if not self._items or last_id >= self.last_id:
            return Backlog([])
        first = self._items[0].id
        missed = max(0, first - last_id - 1)
        start = max(0, last_id + 1 - first)
        stop = len(self._items) if limit is None else min(len(self._items), start + limit)
        return Backlog([self._items[i] for i in range(start, stop)], missed)

    def recent(self, limit: int, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[Entry]:
        """The newest `limit` items that `keep` accepts, oldest first."""
        chosen: list[Entry] = []
        for entry in reversed(self._items):
            if keep is None or keep(entry.item):
                chosen.append(entry)
                if len(chosen) >= limit:
                    break
        chosen.reverse()
        return chosen

    async def wait(self, last_id: int, timeout: float) -> bool:
        """Wait up to `timeout` s for an item with an id above `last_id`; True when one is there."""
        if self.last_id > last_id or self.closed:
            return self.last_id > last_id
        if self._arrived is None:
            self._arrived = asyncio.Event()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return self.last_id > last_id


def event_item(event: PluginEvent) -> dict[str, Any]:
    """The JSON shape of a plugin event in the API."""
    return {
        "plugin_id": event.plugin_name,
        "type": str(event.event_type),
        "timestamp": event.timestamp,
        "success": event.success,
        "message": event.message,
        "error": event.error,
        "metadata": event.metadata,
    }


LIFECYCLE_EVENTS = frozenset(EventType) - {EventType.EXECUTE}
"""Plugin events the feed always records (executions are counted in /metrics instead)."""


class LogRing(logging.Handler):
    """A logging handler that keeps the newest records in a `Feed` (plugin ids read from logger names).

    Records may come from any thread; they are handed to the feed on the event loop.
    """

    def __init__(self, feed: Feed, loop: asyncio.AbstractEventLoop, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.feed = feed
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = log_item(record, self.format(record) if self.formatter else record.getMessage())
        except Exception:
            self.handleError(record)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self.feed.publish(item)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.feed.publish, item)


def log_item(record: logging.LogRecord, message: str) -> dict[str, Any]:
    plugin = ""
    if record.name.startswith(PLUGIN_LOGGER_PREFIX):
        plugin = record.name[len(PLUGIN_LOGGER_PREFIX) :].split(".", 1)[0]
    item: dict[str, Any] = {
        "timestamp": record.created,
        "level": record.levelname.lower(),
        "logger": record.name,
        "plugin_id": plugin or None,
        "message": message,
    }
    if record.exc_info and record.exc_info[1] is not None:
        item["exception"] = logging.Formatter().formatException(record.exc_info)
    return item


LEVELS: Mapping[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
