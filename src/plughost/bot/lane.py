"""A bot's lane: bounded queue, fixed workers, dedup window, send limiter and counters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from plughost.bot.config import BotConfig
from plughost.bot.ratelimit import TokenBucket
from plughost.sdk.bot import Answer, BotApi
from plughost.sdk.call import Action, PluginError
from plughost.sdk.events import Event
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.bot.dispatch import Dispatcher

log = logging.getLogger("plughost.bot.dispatch")
DEDUP_WINDOW = 4096
SENT_WINDOW = 1024  # ids of the bot's own recent messages: a reply to one is addressed to the bot
SHED_LOG_INTERVAL_S = 5.0


Status = Literal[
    "duplicate", "blocked", "command", "route", "matcher", "conversation", "unhandled", "failed", "outside", "relayed"
]  # fmt: skip


@dataclass
class EventResult:
    """What happened to one event."""

    status: Status
    answer: Answer | None = None
    answered_by: str | None = None
    quick_operation: dict[str, Any] | None = None
    sent: list[Action] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[PluginError] = field(default_factory=list)  # the failed calls' errors, in order
    unsettled: int = 0
    """Actions sent for this event whose response has not come yet."""
    on_settled: Callable[[], None] | None = field(default=None, repr=False)
    """Called when the last of them has come (set only while some are unsettled)."""

    def settle_one(self) -> None:
        """One of the event's actions got its response (or failed)."""
        self.unsettled -= 1
        if not self.unsettled and self.on_settled is not None:
            self.on_settled()


@dataclass
class LaneStats:
    """Counters of one bot lane (shown by `/status`)."""

    received: int = 0
    processed: int = 0
    duplicates: int = 0
    shed: int = 0
    malformed: int = 0  # input the transport could not read (dropped before the queue, never received)
    blocked: int = 0
    answered: int = 0
    send_failures: int = 0
    plugin_failures: int = 0
    finished: int = 0  # processed to the end (its replies answered), duplicates and shed together


class BotLane:
    """One bot's queue, workers, limits and counters."""

    def __init__(
        self, key: str, config: BotConfig, bot: BotApi, dispatcher: Dispatcher, *, stats: LaneStats | None = None
    ) -> None:
        self.key = key
        self.config = config
        self.bot = bot
        self.dispatcher = dispatcher
        self.queue: asyncio.Queue[Event] = asyncio.Queue(config.queue_size)
        self.limiter = TokenBucket(config.rate_limit.sends_per_s, config.rate_limit.burst)
        self.stats = stats if stats is not None else LaneStats()
        self.attached = True
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self.sent_ids: OrderedDict[str, None] = OrderedDict()
        """Ids of the messages this bot sent recently (at most `SENT_WINDOW`)."""
        self._workers: TaskOwner | None = None
        self._last_shed_log = 0.0
        self._last_send_log = 0.0
        self._unreported_send_failures = 0
        self._last_malformed_log = 0.0
        self._unreported_malformed = 0
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._waiting = 0
        self._progress = asyncio.Event()
        self._watchers = 0
        self._settling = 0  # events processed whose replies have not been answered yet

    @property
    def started(self) -> bool:
        return self._workers is not None

    def start(self, workers: TaskOwner) -> None:
        """Start `max_in_flight` workers as tasks of `workers` (the lane's own owner)."""
        self._workers = workers
        for n in range(self.config.max_in_flight):
            workers.spawn(self._work(), name=f"bot:{self.key}:worker{n}")

    async def stop(self) -> None:
        """Cancel and await the workers; events still queued are dropped (the bot is gone)."""
        self.attached = False
        if self._workers is not None:
            await self._workers.aclose()
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            dropped += 1
        if dropped:
            log.warning("bot %r detached with %d event(s) still queued; they were dropped", self.key, dropped)

    def submit(self, event: Event) -> bool:
        """Queue an event; when the queue is full the event is shed (counted, logged) and False returned."""
        self.stats.received += 1
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self._shed()
            return False
        self.idle.clear()
        return True

    async def run_now(self, event: Event, *, quick: bool = False) -> EventResult | None:
        """Process an event in the caller's task (HTTP POST), at most `max_in_flight` at once.

        Returns None when `queue_size` callers already wait: the event is shed (counted, logged).
        """
        self.stats.received += 1
        if self._waiting >= self.config.queue_size:
            self._shed()
            return None
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self.in_flight += 1
        result = None
        try:
            result = await self.dispatcher.process(self, event, quick=quick)
            return result
        finally:
            self.in_flight -= 1
            self._processed(result)
            self._slots.release()

    async def submit_wait(self, event: Event) -> None:
        """Queue an event, waiting for room (backpressure to the transport)."""
        self.stats.received += 1
        self.idle.clear()
        await self.queue.put(event)

    async def wait_finished(self, count: int) -> None:
        """Wait until `count` events in total have been finished (processed, deduplicated or shed)."""
        self._watchers += 1
        try:
            while self.stats.finished < count:
                self._progress.clear()
                await self._progress.wait()
        finally:
            self._watchers -= 1

    def _processed(self, result: EventResult | None) -> None:
        """An event left the pipeline: finished now, or when its replies have been answered."""
        if result is not None and result.unsettled:
            self._settling += 1
            result.on_settled = self._settled
        else:
            self._finish()

    def _settled(self) -> None:
        self._settling -= 1
        self._finish()

    def _finish(self) -> None:
        self.stats.finished += 1
        if self._watchers:
            self._progress.set()
        if not self.in_flight and not self._settling and self.queue.empty():
            self.idle.set()

    @property
    def full(self) -> bool:
        """True when a submitted event would be shed."""
        return self.queue.full()

    def shed_unparsed(self) -> None:
        """Count an event the transport shed before parsing it (the queue was full)."""
        self.stats.received += 1
        self._shed()

    def send_failed(self, action: str, error: Exception) -> None:
        """Count a failed send; warn at most every few seconds (a dropped connection fails many at once)."""
        self.stats.send_failures += 1
        self._unreported_send_failures += 1
        now = time.monotonic()
        if now - self._last_send_log >= SHED_LOG_INTERVAL_S:
            self._last_send_log = now
            more = self._unreported_send_failures - 1
            log.warning(
                "bot %r: %s failed: %s%s",
                self.key, action, error, f" (and {more} more sends since the last report)" if more else "",
            )  # fmt: skip
            self._unreported_send_failures = 0

    def count_malformed(self, reason: str) -> None:
        """Count input the transport dropped because it could not be read (not JSON, not an event,
        nested too deep, too large); warn at most every few seconds, with what was wrong."""
        self.stats.malformed += 1
        self._unreported_malformed += 1
        now = time.monotonic()
        if now - self._last_malformed_log < SHED_LOG_INTERVAL_S:
            log.debug("bot %r: dropped malformed input: %s", self.key, reason)
            return
        self._last_malformed_log = now
        more = self._unreported_malformed - 1
        self._unreported_malformed = 0
        log.warning(
            "bot %r: dropped malformed input from the implementation: %s%s",
            self.key, reason, f" (and {more} more since the last report)" if more else "",
        )  # fmt: skip

    def _shed(self) -> None:
        self.count_shed()
        self._finish()

    def count_shed(self) -> None:
        """Count (and log, at most every few seconds) one event shed after it left the queue (a cluster
        gateway's stream was full)."""
        self.stats.shed += 1
        now = time.monotonic()
        if now - self._last_shed_log >= SHED_LOG_INTERVAL_S:
            self._last_shed_log = now
            log.warning(
                "bot %r is overloaded: shed %s event(s) so far (queue of %s full); raise queue_size/max_in_flight "
                "or reduce load",
                self.key, self.stats.shed, self.config.queue_size,
            )  # fmt: skip

    def remember_sent(self, data: Any) -> None:
        """Remember the message id a send action answered (`{"message_id": …}`)."""
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if message_id is not None:
            self.sent_ids[str(message_id)] = None
            if len(self.sent_ids) > SENT_WINDOW:
                self.sent_ids.popitem(last=False)

    def is_duplicate(self, event: Event) -> bool:
        key = event.dedup_key()
        if key is None:
            return False
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > DEDUP_WINDOW:
            self._seen.popitem(last=False)
        return False

    async def _work(self) -> None:
        queue = self.queue
        while True:
            event = await queue.get()
            self.in_flight += 1
            result = None
            try:
                result = await self.dispatcher.process(self, event)
            except Exception:
                log.exception("bot '%s': dispatching %s failed", self.key, getattr(event, "route", "?"))
            finally:
                self.in_flight -= 1
                queue.task_done()
                self._processed(result)

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {
            "bot": self.key,
            "self_id": self.bot.self_id,
            "received": s.received,
            "processed": s.processed,
            "duplicates": s.duplicates,
            "shed": s.shed,
            "malformed": s.malformed,
            "blocked": s.blocked,
            "answered": s.answered,
            "send_failures": s.send_failures,
            "plugin_failures": s.plugin_failures,
            "queued": self.queue.qsize(),
            "in_flight": self.in_flight,
            "attached": self.attached,
        }
