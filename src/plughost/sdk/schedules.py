"""Schedules: handlers the host runs on a cron expression or at a fixed interval.

```python
@plugin.schedule(cron="0 8 * * *", tz="Asia/Shanghai", chat="group:123")
async def morning() -> str:
    return "good morning"                  # a returned message is sent to `chat`

@plugin.schedule(every=timedelta(minutes=5))
async def poll(bot: BotApi, ctx: PluginContext) -> None:
    await bot.send_group_msg(123, "still here")   # sends go through the host's outbox
```

A schedule is part of the plugin's `Descriptor` (`ScheduleSpec`), so every runtime declares it
the same way; the host runs it (see docs/bot.md). Cron expressions are parsed with `croniter`,
time zones with `zoneinfo` — both checked when the decorator runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plughost.errors import PlugHostError
from plughost.sdk.contributions import DescriptorContribution

if TYPE_CHECKING:
    from plughost.sdk.descriptor import Descriptor
    from plughost.sdk.plugin import Handler

F = TypeVar("F", bound=Callable[..., Any])
Missed = Literal["skip", "run_once"]
MISSED: tuple[Missed, ...] = ("skip", "run_once")
_CHAT = re.compile(r"(group|private):[1-9][0-9]{0,19}")


class ScheduleError(PlugHostError, ValueError):
    """A schedule that cannot run: bad cron expression, interval, time zone, chat or option."""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One scheduled handler: `cron` (with `tz`, default the host's local zone) or `every_s`.

    `overlap`: may a run start while the previous one still runs (else that tick is skipped and
    counted). `missed`: what happens to runs missed while the host was down (`skip`, or `run_once`
    at start). `chat` (`group:<id>` / `private:<id>`): the chat it posts to — a returned message
    goes there, and the plugin's per-chat switch for it applies. `bot`: the bot id to use (default:
    the first connected bot).
    """

    handler: str
    cron: str = ""
    every_s: float = 0.0
    tz: str = ""
    overlap: bool = False
    missed: Missed = "skip"
    chat: str = ""
    bot: str = ""

    @property
    def trigger(self) -> str:
        """`cron 0 8 * * * (Asia/Shanghai)` or `every 300s`: how it is shown."""
        if self.cron:
            return f"cron {self.cron}" + (f" ({self.tz})" if self.tz else "")
        return f"every {self.every_s:g}s"

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first run strictly after `moment` (an aware datetime; the answer is aware too)."""
        if not self.cron:
            return moment + dt.timedelta(seconds=self.every_s)
        zone = _zone(self.tz) if self.tz else None
        local = moment.astimezone(zone)  # None: the host's local zone
        return cast(dt.datetime, _croniter()(self.cron, local).get_next(dt.datetime))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduleSpec:
        """A spec from its JSON form (`bot.describe`, Describe); raises `ScheduleError` when invalid."""
        if not isinstance(data, Mapping) or not isinstance(data.get("handler"), str) or not data["handler"]:
            raise ScheduleError(f"a schedule needs a 'handler' name, got {data!r:.200}")
        try:
            every = float(data.get("every_s") or 0)
        except (TypeError, ValueError):
            raise ScheduleError(f"schedule '{data['handler']}': every_s must be a number of seconds") from None
        spec = cls(
            handler=data["handler"],
            cron=str(data.get("cron") or ""),
            every_s=every,
            tz=str(data.get("tz") or ""),
            overlap=bool(data.get("overlap", False)),
            missed=data.get("missed") or "skip",
            chat=str(data.get("chat") or ""),
            bot=str(data.get("bot") or ""),
        )
        return checked(spec)


def checked(spec: ScheduleSpec) -> ScheduleSpec:
    """`spec` if it can run; else `ScheduleError` saying what is wrong."""
    if bool(spec.cron) == bool(spec.every_s):
        raise ScheduleError("give exactly one of cron=… or every=…")
    if spec.every_s and not spec.every_s > 0:
        raise ScheduleError(f"every must be a positive interval, got {spec.every_s:g} s")
    if spec.tz:
        if spec.every_s:
            raise ScheduleError("tz applies to cron schedules only")
        _zone(spec.tz)
    if spec.cron:
        croniter = _croniter()
        if not croniter.is_valid(spec.cron):
            raise ScheduleError(f"invalid cron expression {spec.cron!r} (5 fields: minute hour day month weekday)")
    if spec.missed not in MISSED:
        raise ScheduleError(f"missed must be one of {', '.join(MISSED)}, got {spec.missed!r}")
    if spec.chat and not _CHAT.fullmatch(spec.chat):
        raise ScheduleError(f"chat must be 'group:<id>' or 'private:<id>', got {spec.chat!r}")
    return spec


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r} (an IANA name like 'Asia/Shanghai'; install `tzdata` where the "
            "system has no zoneinfo database)"
        ) from None


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - a dependency of plughost
        raise ScheduleError("cron schedules need the `croniter` package: pip install croniter") from None
    return croniter


class ScheduleDecoratorsMixin(DescriptorContribution):
    """Mixed into `Plugin`: `@plugin.schedule`, added to the descriptor."""

    id: str
    add_handler: Callable[..., Handler]

    def _schedules(self) -> list[ScheduleSpec]:
        return self._declared("_schedule_specs", list[ScheduleSpec])

    def schedule(
        self,
        cron: str | None = None,
        *,
        every: dt.timedelta | float | None = None,
        tz: str | None = None,
        overlap: bool = False,
        missed: Missed = "skip",
        chat: str | None = None,
        bot: str | None = None,
    ) -> Callable[[F], F]:
        """Run the handler on `cron` (5 fields, in `tz`) or `every` interval (a timedelta or seconds).

        Parameters it may take: `bot` (`BotApi`), `ctx` (`PluginContext`), `logger`. A returned
        message is sent to `chat`. Bad options raise at once, naming the plugin and function.
        """
        every_s = every.total_seconds() if isinstance(every, dt.timedelta) else float(every or 0)

        def register(func: F) -> F:
            name = f"schedule.{getattr(func, '__name__', 'handler')}"
            handlers: Mapping[str, Any] = getattr(self, "handlers", {})
            base, n = name, 1
            while name in handlers:
                n += 1
                name = f"{base}#{n}"
            spec = ScheduleSpec(name, cron or "", every_s, tz or "", overlap, missed, chat or "", bot or "")
            try:
                checked(spec)
            except ScheduleError as exc:
                where = getattr(func, "__qualname__", func)
                raise ScheduleError(f"plugin '{self.id}': schedule '{where}': {exc}") from None
            self.add_handler(name, func, "schedule")
            self._schedules().append(spec)
            return func

        return register

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Add the schedules (cooperative: other mixins chain through `super()`)."""
        descriptor = super()._extend_descriptor(descriptor)
        specs = self._schedules()
        if not specs:
            return descriptor
        return dataclasses.replace(
            descriptor,
            schedules=(*descriptor.schedules, *specs),
            capabilities=descriptor.capabilities | {"schedules"},
        )


__all__ = ["MISSED", "Missed", "ScheduleDecoratorsMixin", "ScheduleError", "ScheduleSpec", "checked"]
