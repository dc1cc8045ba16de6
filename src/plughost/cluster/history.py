"""`SharedEventHistory`: the plugin events of every host of a cluster, in one capped Redis stream.

Each host appends its plugin events (all but `execute`: calls are counted in metrics) to the
stream `<prefix>:events` (capped near `[host] event_history` entries, `XADD MAXLEN ~`) and reads
the others' from it: they are kept beside the local history (`remote_events`, bounded the same
way) and handed to `remote_event_handlers` as they arrive — the management API merges them into
`/api/v1/events`, each with `metadata.node` naming the host it happened on. A host started later
first takes the stream's backlog. Each host keeps its own history as before; the stream only
adds the others'.

While Redis is unreachable, events are kept locally only: at most `PENDING_LIMIT` wait to be
appended (older ones are dropped and counted in `dropped`), and events other hosts appended
meanwhile are read once the connection is back (the stream is read from the last id seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.cluster.redis_backend import RedisBackend
    from plughost.core.events import EventBus

log = logging.getLogger(__name__)
PENDING_LIMIT = 1000
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FOLLOW_BLOCK_MS = 1000  # a read returns at least this often, so a stopping loop sees `_closing`
SHARED_EVENTS = frozenset(EventType) - {EventType.EXECUTE}
RemoteEventHandler = Callable[[PluginEvent], None]


def raise_if_cancelled() -> None:
    """Raise `CancelledError` when the current task is being cancelled (redis-py can replace the
    `CancelledError` of an interrupted command by a connection error: a retry loop must not go on)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SharedEventHistory:
    """Appends this host's plugin events to the cluster's stream and follows the others' (module docstring)."""

    def __init__(self, backend: RedisBackend, events: EventBus, *, limit: int, tasks: TaskOwner) -> None:
        self.backend = backend
        self.events = events
        self.stream = backend.key("events")
        self.limit = limit
        self.tasks = tasks
        self.node_id = backend.host_id
        self.remote_events: deque[PluginEvent] = deque(maxlen=limit)
        """Events of the other hosts, oldest first (each with `metadata["node"]`)."""
        self.remote_event_handlers: list[RemoteEventHandler] = []
        self.dropped = 0
        """Events of this host that were never appended (Redis unreachable and `PENDING_LIMIT` reached)."""
        self._pending: deque[PluginEvent] = deque()
        self._wanted = asyncio.Event()
        self._closing = False  # the loops also stop on this: redis-py can swallow a cancellation

    async def start(self) -> None:
        """Take the stream's backlog, then append this host's events and follow the others'."""
        last_id = await self._read_backlog()
        self.events.add_handler(self._on_event, SHARED_EVENTS)
        self.tasks.spawn(self._append(), name="cluster events: append")
        self.tasks.spawn(self._follow(last_id), name="cluster events: follow")

    async def aclose(self) -> None:
        """Stop appending and following (events not appended yet stay local)."""
        with contextlib.suppress(ValueError):  # not added when `start` was not reached
            self.events.remove_handler(self._on_event)
        self._closing = True
        self._wanted.set()
        await self.tasks.aclose()

    def _on_event(self, event: PluginEvent) -> None:
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(event)
        self._wanted.set()

    async def _append(self) -> None:
        failures = 0
        while not self._closing:
            await self._wanted.wait()
            self._wanted.clear()
            while self._pending and not self._closing:
                batch = list(self._pending)
                try:
                    async with self.backend.client.pipeline(transaction=False) as pipe:
                        for event in batch:
                            pipe.xadd(self.stream, {"node": self.node_id, "event": event.model_dump_json()},
                                      maxlen=self.limit, approximate=True)  # fmt: skip
                        await pipe.execute()
                except (*CONNECTION_ERRORS, RedisError) as exc:
                    raise_if_cancelled()
                    if not failures:
                        log.warning("cluster: plugin events are not shared while Redis at %s is unreachable (%s)",
                                    self.backend.where, exc)  # fmt: skip
                    failures += 1
                    await asyncio.sleep(RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1])
                    continue
                failures = 0
                for _ in batch:
                    self._pending.popleft()

    async def _read_backlog(self) -> str:
        """The stream's newest `limit` entries into `remote_events`; the id to follow from."""
        try:
            entries: list[tuple[bytes, dict[bytes, bytes]]] = await self.backend.client.xrevrange(
                self.stream, count=self.limit
            )  # type: ignore[assignment]  # redis-py's union of every reply type
        except (*CONNECTION_ERRORS, RedisError) as exc:
            log.warning("cluster: the event history of the other hosts is not available (%s)", exc)
            return "$"
        for _, fields in reversed(entries):
            self._take(fields)
        return entries[0][0].decode() if entries else "0-0"

    async def _follow(self, last_id: str) -> None:
        failures = 0
        while not self._closing:
            try:
                if last_id == "$":  # the backlog could not be read: from now on
                    last_id = await self._read_backlog()
                    if last_id == "$":
                        raise ConnectionError("Redis is unreachable")
                answer: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] = await self.backend.client.xread(
                    {self.stream: last_id}, block=FOLLOW_BLOCK_MS, count=500
                )  # type: ignore[assignment]
                answer = answer or []
                failures = 0
                for _, entries in answer:
                    for entry_id, fields in entries:
                        last_id = entry_id.decode()
                        event = self._take(fields)
                        if event is not None:
                            for handler in list(self.remote_event_handlers):
                                handler(event)
            except (*CONNECTION_ERRORS, RedisError):
                raise_if_cancelled()  # redis-py may turn a cancelled read into a connection error
                failures += 1
                await asyncio.sleep(RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1])

    def _take(self, fields: dict[bytes, bytes]) -> PluginEvent | None:
        """The event of another host in a stream entry (None for this host's and malformed ones)."""
        try:
            node = fields[b"node"].decode()
            if node == self.node_id:
                return None
            event = PluginEvent.model_validate(json.loads(fields[b"event"]))
        except (KeyError, ValueError) as exc:
            log.warning("cluster: ignored a malformed entry of %s: %s", self.stream, exc)
            return None
        event.metadata["node"] = node
        self.remote_events.append(event)
        return event


__all__ = ["SHARED_EVENTS", "SharedEventHistory", "raise_if_cancelled"]
