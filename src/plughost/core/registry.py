"""The plugin registry: what plugins are known, persisted and restored on restart."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter

from plughost.core.files import PersistedFile
from plughost.sdk.models import PluginState

log = logging.getLogger(__name__)


class RegistryEntry(BaseModel):
    """What the registry remembers about one plugin."""

    id: str
    name: str
    version: str
    type: str = "other"
    runtime: str = "python"
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    path: str = ""
    state: PluginState = PluginState.DISCOVERED
    registered_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)


_ENTRIES = TypeAdapter(list[RegistryEntry])


class PluginRegistry:
    """LurkBot's registry queries over entries persisted as JSON (see `plughost.core.files`).

    A corrupt file is kept and its `.bak` used, then an empty registry; a path that cannot be
    read (a directory) is a `StateFileError`. Changes are made in memory once they are written —
    or, with `write_delay_s`, at once in memory and written within that delay (one write for a
    burst of changes; `flush()` writes now). The registry is derived data: the manager rebuilds
    it from what it loads, so it batches its writes.
    """

    def __init__(self, path: Path, *, write_delay_s: float | None = None) -> None:
        self.path = path
        self.write_delay_s = write_delay_s
        self._file = PersistedFile(path, _ENTRIES.validate_json, what="the plugin registry")
        self._entries: dict[str, RegistryEntry] = {}
        self._pending: asyncio.TimerHandle | None = None
        self._restore()

    def register(self, entry: RegistryEntry) -> None:
        previous = self._entries.get(entry.id)
        if previous is not None:
            entry.registered_at = previous.registered_at
        self._commit({**self._entries, entry.id: entry})

    def unregister(self, plugin_id: str) -> bool:
        if plugin_id not in self._entries:
            return False
        self._commit({k: v for k, v in self._entries.items() if k != plugin_id})
        return True

    def set_state(self, plugin_id: str, state: PluginState) -> None:
        entry = self._entries.get(plugin_id)
        if entry is not None and entry.state != state:
            changed = entry.model_copy(update={"state": state, "updated_at": time.time()})
            self._commit({**self._entries, plugin_id: changed})

    def get(self, plugin_id: str) -> RegistryEntry | None:
        return self._entries.get(plugin_id)

    def has(self, plugin_id: str) -> bool:
        return plugin_id in self._entries

    def list_all(self) -> list[RegistryEntry]:
        return sorted(self._entries.values(), key=lambda e: e.id)

    def list_by_state(self, state: PluginState | str) -> list[RegistryEntry]:
        return [e for e in self.list_all() if e.state == state]

    def list_by_type(self, plugin_type: str) -> list[RegistryEntry]:
        return [e for e in self.list_all() if e.type == plugin_type]

    def find_by_tag(self, tag: str) -> list[RegistryEntry]:
        wanted = tag.casefold()
        return [e for e in self.list_all() if any(t.casefold() == wanted for t in e.tags)]

    def find_by_keyword(self, keyword: str) -> list[RegistryEntry]:
        """Entries whose id, name, description, keywords or tags contain `keyword` (any case)."""
        wanted = keyword.casefold()
        return [
            e
            for e in self.list_all()
            if any(wanted in text.casefold() for text in (e.id, e.name, e.description, *e.keywords, *e.tags))
        ]

    def _restore(self) -> None:
        loaded = self._file.load(fallback="starting with an empty registry")
        for warning in loaded.warnings:
            log.warning("%s", warning)
        if loaded.value is not None:
            self._entries = {e.id: e for e in loaded.value}

    def _commit(self, entries: dict[str, RegistryEntry]) -> None:
        """Write `entries`, then make them the registry's (a failed write changes nothing); with a
        write delay, make them the registry's and write them soon."""
        if self.write_delay_s is None:
            self._write(entries)
            self._entries = entries
            return
        self._entries = entries
        if self._pending is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to wait on: write now
                self.flush()
                return
            self._pending = loop.call_later(self.write_delay_s, self.flush)

    def flush(self) -> None:
        """Write changes not written yet (a failure is logged: the next change writes again)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        try:
            self._write(self._entries)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)

    def _write(self, entries: dict[str, RegistryEntry]) -> None:
        data = _ENTRIES.dump_json(sorted(entries.values(), key=lambda e: e.id), indent=2).decode()
        self._file.save(data + "\n")
