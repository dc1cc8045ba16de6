"""The host side of `@plugin.schedule`: runs every enabled plugin's schedules.

Each plugin's jobs are tasks of a child of that plugin's own task owner: disabling the plugin
closes them, unloading or reloading it closes them with the plugin, enabling it (or the new
version) starts them again. Each run is a guarded `Call(handler, payload, "schedule")` through the
manager (timeouts, circuit breaker, metrics, as any call); the sends it queues, and a message it
returns for its `chat`, go out through the bot's lane (rate limit, in order). A run still going at
the next tick skips that tick (counted) unless the schedule allows `overlap`. A plugin switched off
in the schedule's chat is not called (counted).

The clock is injectable (`Clock`): tests drive cron schedules without waiting for real minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from plughost.bot.dispatch import ChatSwitchLookup, Dispatcher
from plughost.bot.schedule_times import ScheduleTimes
from plughost.sdk.bot import BotAnswerError, Reply, decode_answer
from plughost.sdk.call import Action, Call, Outcome
from plughost.sdk.handle import PluginHandle
from plughost.sdk.message import Message
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.schedules import ScheduleSpec
from plughost.sdk.tasks import TaskOwner

log = logging.getLogger("plughost.schedules")
LIFECYCLE = frozenset({EventType.LOAD, EventType.UNLOAD, EventType.ENABLE, EventType.DISABLE, EventType.RELOAD})


class Clock(Protocol):
    """Time as the scheduler sees it (aware datetimes)."""

    def now(self) -> dt.datetime: ...

    async def sleep_until(self, when: dt.datetime) -> None: ...


class SystemClock:
    """The real clock; a long wait is re-checked every minute (the wall clock may be set)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep_until(self, when: dt.datetime) -> None:
        while (delay := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 - waiting for a time, not an event
            await asyncio.sleep(min(delay, 60.0))


class PluginLookup(Protocol):
    """The plugin manager as the scheduler sees it."""

    def get_plugin(self, name: str) -> Any: ...
    def plugin_tasks(self, name: str) -> TaskOwner | None: ...
    def call(self, name: str, call: Call) -> Any: ...
    def add_event_handler(self, handler: Callable[[PluginEvent], None], event_types: Any = None) -> None: ...


@dataclass
class ScheduleStatus:
    """One schedule's state and counters (shown by `/status` and `GET /api/v1/schedules`)."""

    plugin_id: str
    spec: ScheduleSpec
    active: bool = False
    next_run: dt.datetime | None = None
    last_run: dt.datetime | None = None
    last_outcome: str = ""  # "", "ok", "failed", "off in <chat>", "no bot"
    last_error: str | None = None
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    """Ticks skipped because the previous run was still going (`overlap=False`)."""
    switched_off: int = 0
    """Runs not made because the plugin is switched off in the schedule's chat."""
    running: int = 0
    caught_up: bool = False
    """True once a run missed while the host was down was made (`missed="run_once"`)."""

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "plugin": self.plugin_id,
            "handler": spec.handler,
            "trigger": spec.trigger,
            "cron": spec.cron or None,
            "every_s": spec.every_s or None,
            "tz": spec.tz or None,
            "chat": spec.chat or None,
            "overlap": spec.overlap,
            "missed": spec.missed,
            "active": self.active,
            "next_run": _iso(self.next_run),
            "last_run": _iso(self.last_run),
            "last_outcome": self.last_outcome or None,
            "last_error": self.last_error,
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
            "switched_off": self.switched_off,
            "running": self.running,
        }

    def line(self) -> str:
        """One `/status` line."""
        next_run = f"next {_short(self.next_run)}" if self.active and self.next_run else "inactive"
        last = f", last {_short(self.last_run)} {self.last_outcome}" if self.last_run else ""
        error = f" ({self.last_error})" if self.last_error and self.last_outcome == "failed" else ""
        return (
            f"  {self.plugin_id}/{self.spec.handler} {self.spec.trigger}: {next_run}{last}{error}; "
            f"{self.runs} runs, {self.failures} failed, {self.skipped} skipped (overlap), "
            f"{self.switched_off} off in chat"
        )


@dataclass
class _Running:
    handle: PluginHandle
    owner: TaskOwner


class Scheduler:
    """Runs the schedules of enabled plugins (it follows the manager's lifecycle events)."""

    def __init__(
        self,
        plugins: PluginLookup,
        dispatcher: Dispatcher,
        *,
        tasks: TaskOwner | None = None,
        times: Path | None = None,
        switches: ChatSwitchLookup | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.plugins = plugins
        self.dispatcher = dispatcher
        self.tasks = tasks if tasks is not None else TaskOwner("scheduler")
        self.times = ScheduleTimes(times) if times is not None else None
        self.switches = switches
        self.clock: Clock = clock or SystemClock()
        self.statuses: dict[tuple[str, str], ScheduleStatus] = {}
        self.changed = asyncio.Event()
        """Set whenever a run starts, ends or a tick is skipped (tests wait on it)."""
        self._running: dict[str, _Running] = {}
        self.elsewhere: str | None = None
        """Set (to where they run) on a node that runs no schedules: a cluster's worker node, whose
        gateway holds the bot connections and runs them once for the cluster."""
        plugins.add_event_handler(self._on_event, LIFECYCLE)

    # lifecycle -------------------------------------------------------------------------------
    def _on_event(self, event: PluginEvent) -> None:
        if event.event_type in LIFECYCLE:
            self.sync(event.plugin_name)

    def sync(self, plugin_id: str) -> None:
        """Start or stop `plugin_id`'s jobs so that they match its state (enabled → running)."""
        instance = self.plugins.get_plugin(plugin_id)
        handle = instance.handle if instance is not None and instance.is_enabled else None
        specs: tuple[ScheduleSpec, ...] = handle.descriptor.schedules if handle is not None else ()
        running = self._running.get(plugin_id)
        if running is not None and (running.handle is not handle or not specs):
            self._stop(plugin_id, running)
            running = None
        if not specs or running is not None or handle is None:
            return
        if self.elsewhere is not None:  # listed, never run here
            for spec in specs:
                self.statuses[(plugin_id, spec.handler)] = ScheduleStatus(plugin_id, spec)
            self._changed()
            return
        parent = self.plugins.plugin_tasks(plugin_id)
        if parent is None or parent.closed:
            return
        owner = parent.child(f"schedules:{plugin_id}")
        self._running[plugin_id] = _Running(handle, owner)
        for spec in specs:
            status = self.statuses.get((plugin_id, spec.handler))
            if status is None or status.spec != spec:
                status = self.statuses[(plugin_id, spec.handler)] = ScheduleStatus(plugin_id, spec)
            status.active = True
            owner.spawn(self._job(owner, status), name=f"schedule {plugin_id}/{spec.handler}")

    def _stop(self, plugin_id: str, running: _Running) -> None:
        del self._running[plugin_id]
        for status in self.statuses.values():
            if status.plugin_id == plugin_id:
                status.active, status.next_run = False, None
        for task in running.owner:  # no tick fires from now on; closing awaits them
            task.cancel()
        with contextlib.suppress(RuntimeError):  # the host is stopping: the plugin's owner closes them
            self.tasks.spawn(running.owner.aclose(), name=f"stop schedules of {plugin_id}")
        self._changed()

    def schedules(self) -> list[ScheduleStatus]:
        """Every schedule seen, active ones first, by plugin and handler."""
        return sorted(self.statuses.values(), key=lambda s: (not s.active, s.plugin_id, s.spec.handler))

    def status_lines(self) -> list[str]:
        """The `/status` section."""
        statuses = self.schedules()
        if not statuses:
            return []
        if self.elsewhere is not None:
            return [f"schedules: {len(statuses)}, run {self.elsewhere}", *(s.line() for s in statuses)]
        active = sum(s.active for s in statuses)
        return [f"schedules: {len(statuses)} ({active} active)", *(s.line() for s in statuses)]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds (checked after every change; wrap in a timeout)."""
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def _changed(self) -> None:
        self.changed.set()

    # jobs ------------------------------------------------------------------------------------
    async def _job(self, owner: TaskOwner, status: ScheduleStatus) -> None:
        spec, clock = status.spec, self.clock
        now = clock.now()
        if self._missed_a_run(status, now):
            status.caught_up = True
            owner.spawn(self._fire(status, now), name=f"catch-up {status.plugin_id}/{spec.handler}")
        due = spec.next_after(now)
        while True:
            status.next_run = due
            self._changed()
            await clock.sleep_until(due)
            if status.running and not spec.overlap:
                status.skipped += 1
                log.info("schedule %s/%s: the previous run is still going; tick skipped", status.plugin_id,
                         spec.handler)  # fmt: skip
                self._changed()
            else:
                owner.spawn(self._fire(status, due), name=f"run {status.plugin_id}/{spec.handler}")
            due = spec.next_after(max(due, clock.now()) if spec.cron else due)
            if not spec.cron and due <= clock.now():  # far behind (a slow host): no burst of late ticks
                due = spec.next_after(clock.now())

    def _missed_a_run(self, status: ScheduleStatus, now: dt.datetime) -> bool:
        """`run_once`: was a run due while the host was down? (the first start of a schedule only records now)."""
        if status.spec.missed != "run_once" or self.times is None or status.runs or status.caught_up:
            return False
        last = self.times.last(status.plugin_id, status.spec.handler)
        if last is None:
            self.times.record(status.plugin_id, status.spec.handler, now)
            return False
        return status.spec.next_after(last) <= now

    async def _fire(self, status: ScheduleStatus, due: dt.datetime) -> None:
        spec, plugin_id = status.spec, status.plugin_id
        status.running += 1
        status.last_run = self.clock.now()
        self._changed()
        try:
            if spec.chat and self.switches is not None and plugin_id in self.switches.off_in(spec.chat):
                status.switched_off += 1
                status.last_outcome, status.last_error = f"off in {spec.chat}", None
                return
            if spec.missed == "run_once" and self.times is not None:
                self.times.record(plugin_id, spec.handler, due)
            lane = self.dispatcher.lane_for(spec.bot)
            payload = _payload(spec, due, lane.key if lane else "", (lane.bot.self_id or 0) if lane else 0)
            outcome: Outcome = await self.plugins.call(
                plugin_id, Call(spec.handler, payload, "schedule", bot=lane.bot if lane else None)
            )
            status.runs += 1
            actions, problem = _actions(spec, outcome)
            errors = [problem] if problem else []
            if actions and lane is None:
                which = f" as {spec.bot!r}" if spec.bot else ""
                errors.append(f"no bot is connected{which}: {len(actions)} send(s) dropped")
            elif actions and lane is not None:
                errors.extend(await self.dispatcher.deliver(lane, actions))
            if outcome.error is not None:
                errors.insert(0, str(outcome.error))
            if errors:
                status.failures += 1
                status.last_outcome, status.last_error = "failed", "; ".join(errors)
                log.warning("schedule %s/%s failed: %s", plugin_id, spec.handler, status.last_error)
            else:
                status.last_outcome, status.last_error = "ok", None
        finally:
            status.running -= 1
            self._changed()


def _payload(spec: ScheduleSpec, due: dt.datetime, bot_id: str, self_id: int) -> dict[str, Any]:
    kind, _, chat_id = spec.chat.partition(":")
    return {
        "kind": "schedule",
        "schedule": spec.handler,
        "chat": spec.chat,
        "group_id": chat_id if kind == "group" else "",
        "sender_id": chat_id if kind == "private" else "",
        "scheduled_at": due.isoformat(),
        "bot_id": bot_id,
        "self_id": self_id,
    }


def _actions(spec: ScheduleSpec, outcome: Outcome) -> tuple[list[Action], str | None]:
    """The sends of a run, plus its returned message as a send to the schedule's chat."""
    actions = list(outcome.sends)
    if outcome.error is not None or outcome.value is None:
        return actions, None
    try:
        answer = decode_answer(outcome.value)
    except BotAnswerError as exc:
        return actions, f"the schedule answered something that is not a message: {exc}"
    message = answer.message if isinstance(answer, Reply) else None
    if message is None or not message:
        return actions, None
    if not spec.chat:
        return actions, "the schedule returned a message but declares no chat to send it to"
    return [*actions, _send_to(spec.chat, message)], None


def _send_to(chat: str, message: Message) -> Action:
    kind, _, chat_id = chat.partition(":")
    if kind == "group":
        return Action("send_group_msg", {"group_id": int(chat_id), "message": message.to_json()})
    return Action("send_private_msg", {"user_id": int(chat_id), "message": message.to_json()})


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _short(moment: dt.datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


__all__ = ["Clock", "ScheduleStatus", "Scheduler", "SystemClock"]
