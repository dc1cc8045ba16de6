"""Helpers for hot-reload tests: record events and wait for them (never for a fixed time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from plughost.core.manager import PluginManager
from plughost.sdk.models import EventType, PluginEvent

WAIT_S = 30.0

VERSIONED = """
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("value")
def value() -> str:
    return "{value}"
"""


class Events:
    """Every event of a manager from now on; `wait` returns the first one (after `since`) that fits."""

    def __init__(self, manager: PluginManager) -> None:
        self.seen: list[PluginEvent] = []
        self._arrived = asyncio.Event()
        manager.add_event_handler(self._record)

    def _record(self, event: PluginEvent) -> None:
        if event.event_type is not EventType.EXECUTE:
            self.seen.append(event)
            self._arrived.set()

    def mark(self) -> int:
        return len(self.seen)

    def of(self, plugin_id: str, kind: EventType, since: int = 0) -> list[PluginEvent]:
        return [e for e in self.seen[since:] if e.plugin_id == plugin_id and e.event_type is kind]

    async def wait(
        self, plugin_id: str, kind: EventType, since: int = 0, *, check: Callable[[PluginEvent], bool] | None = None
    ) -> PluginEvent:
        async def first() -> PluginEvent:
            while True:
                for event in self.of(plugin_id, kind, since):
                    if check is None or check(event):
                        return event
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(first(), WAIT_S)
        except TimeoutError:
            seen = [(e.plugin_id, str(e.event_type), e.message, e.error) for e in self.seen[since:]]
            raise AssertionError(f"no {kind} event of '{plugin_id}' within {WAIT_S:g} s; saw {seen}") from None


def save(path: Path, text: str) -> None:
    """Save as an editor does: write the whole file in place."""
    path.write_text(text, encoding="utf-8")


async def answer(manager: PluginManager, plugin_id: str, method: str = "value") -> object:
    result = await manager.execute(plugin_id, method)
    assert result.success, result.error
    return result.result
