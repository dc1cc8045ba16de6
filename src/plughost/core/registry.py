"""The plugin registry: what plugins are known, persisted and restored on restart."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from plughost.core.files import write_atomic
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
    """LurkBot's registry queries over entries persisted as JSON (atomic write, `.bak`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, RegistryEntry] = {}
        self._restore()

    def register(self, entry: RegistryEntry) -> None:
        previous = self._entries.get(entry.id)
        if previous is not None:
            entry.registered_at = previous.registered_at
        self._entries[entry.id] = entry
        self._save()

    def unregister(self, plugin_id: str) -> bool:
        removed = self._entries.pop(plugin_id, None) is not None
        if removed:
            self._save()
        return removed

    def set_state(self, plugin_id: str, state: PluginState) -> None:
        entry = self._entries.get(plugin_id)
        if entry is not None and entry.state != state:
            entry.state = state
            entry.updated_at = time.time()
            self._save()

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
        for candidate in (self.path, self.path.with_name(self.path.name + ".bak")):
            if not candidate.exists():
                continue
            try:
                entries = _ENTRIES.validate_json(candidate.read_bytes())
            except (ValidationError, OSError, json.JSONDecodeError) as exc:
                log.warning("plugin registry %s is unreadable (%s); ignoring it", candidate, exc)
                continue
            self._entries = {e.id: e for e in entries}
            return

    def _save(self) -> None:
        data = _ENTRIES.dump_json(self.list_all(), indent=2).decode()
        write_atomic(self.path, data + "\n")
