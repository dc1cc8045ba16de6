"""`plugin-state.toml` (QimenBot's format): enabled flags and priority overrides.

```toml
[modules]
echo = true
[priorities]
echo = 500
[chats]                    # per-chat switches: the chats where an enabled plugin is off
dice = ["group:123", "private:456"]
```
Files without `[chats]` (older versions) load unchanged; older versions ignore the table.
Written atomically with a `.bak` (see `plughost.core.files`); an empty or corrupt file is kept
and the `.bak` is used with a warning, then defaults. A change is made in memory only once it
is written: when writing fails, `StateFileError` says which file and why, and nothing changed.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from plughost.core.files import PersistedFile

if TYPE_CHECKING:
    from plughost.sdk.manifest import PluginManifest

log = logging.getLogger(__name__)
PRIORITY_RANGE = (0, 1000)
CHAT = re.compile(r"(group|private):[1-9][0-9]{0,19}")
"""A chat a plugin can be switched off in: `group:<id>` or `private:<user id>`."""
_State = tuple[dict[str, bool], dict[str, int], dict[str, tuple[str, ...]]]


@dataclass
class PluginStateFile:
    """Persisted enable/disable and priority overrides by plugin id."""

    path: Path
    modules: dict[str, bool] = field(default_factory=dict)
    priorities: dict[str, int] = field(default_factory=dict)
    chats_off: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per-chat switches: plugin id → the chats (`group:1`, `private:2`) where it is off."""
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> PluginStateFile:
        """Read the state; fall back to `.bak`, then to empty — never raise on bad content."""
        state = cls(path)
        loaded = _file(path).load(fallback="starting with defaults")
        for warning in loaded.warnings:
            log.warning("%s", warning)
        state.warnings = loaded.warnings
        if loaded.value is not None:
            state.modules, state.priorities, state.chats_off = loaded.value
        return state

    def starting_state(self, plugin_id: str, manifest: PluginManifest, config: Mapping[str, Any]) -> tuple[bool, int]:
        """Enabled flag and priority a plugin starts with: this file first, then the plugin's own
        config (`enabled`/`priority` keys, as CLIProxyAPI offers them), then its manifest."""
        enabled, priority = config.get("enabled"), config.get("priority")
        if not isinstance(enabled, bool):
            enabled = manifest.enabled
        low, high = PRIORITY_RANGE
        if not (isinstance(priority, int) and not isinstance(priority, bool) and low <= priority <= high):
            priority = manifest.priority
        return self.modules.get(plugin_id, enabled), self.priorities.get(plugin_id, priority)

    def set_enabled(self, plugin_id: str, enabled: bool | None) -> None:
        """Persist the enabled flag of `plugin_id` (None: forget it, the manifest decides)."""
        modules = dict(self.modules)
        if enabled is None:
            modules.pop(plugin_id, None)
        else:
            modules[plugin_id] = enabled
        self._write(modules, self.priorities, self.chats_off)
        self.modules = modules

    def set_priority(self, plugin_id: str, priority: int) -> None:
        low, high = PRIORITY_RANGE
        if not low <= priority <= high:
            raise ValueError(f"priority must be between {low} and {high}, got {priority}")
        priorities = {**self.priorities, plugin_id: priority}
        self._write(self.modules, priorities, self.chats_off)
        self.priorities = priorities

    def set_chat_enabled(self, plugin_id: str, chat: str, enabled: bool) -> bool:
        """Switch `plugin_id` on or off in one chat (`group:<id>`/`private:<id>`); False if it already was."""
        if not CHAT.fullmatch(chat):
            raise ValueError(f"a chat is 'group:<id>' or 'private:<id>', got {chat!r}")
        off = self.chats_off.get(plugin_id, ())
        if (chat not in off) == enabled:
            return False
        new_off = tuple(c for c in off if c != chat) if enabled else (*off, chat)
        chats = {k: v for k, v in self.chats_off.items() if k != plugin_id}
        if new_off:
            chats[plugin_id] = new_off
        self._write(self.modules, self.priorities, chats)
        self.chats_off = chats
        return True

    def forget(self, plugin_id: str) -> None:
        """Drop every override of `plugin_id` (its files were deleted)."""
        if plugin_id not in self.modules and plugin_id not in self.priorities and plugin_id not in self.chats_off:
            return
        modules = {k: v for k, v in self.modules.items() if k != plugin_id}
        priorities = {k: v for k, v in self.priorities.items() if k != plugin_id}
        chats = {k: v for k, v in self.chats_off.items() if k != plugin_id}
        self._write(modules, priorities, chats)
        self.modules, self.priorities, self.chats_off = modules, priorities, chats

    def save(self) -> None:
        self._write(self.modules, self.priorities, self.chats_off)

    def _write(self, modules: dict[str, bool], priorities: dict[str, int], chats: dict[str, tuple[str, ...]]) -> None:
        data: dict[str, object] = {
            "modules": dict(sorted(modules.items())),
            "priorities": dict(sorted(priorities.items())),
        }
        if chats:  # absent when unused: the file stays what older versions wrote
            data["chats"] = {k: sorted(v) for k, v in sorted(chats.items())}
        _file(self.path).save(tomli_w.dumps(data))


def _file(path: Path) -> PersistedFile[_State]:
    return PersistedFile(path, _parse, what="plugin state")


def _parse(raw: bytes) -> _State:
    data = tomllib.loads(raw.decode("utf-8"))
    modules = data.get("modules", {})
    priorities = data.get("priorities", {})
    chats = data.get("chats", {})
    if not isinstance(modules, dict) or not isinstance(priorities, dict) or not isinstance(chats, dict):
        raise ValueError("[modules], [priorities] and [chats] must be tables")
    low, high = PRIORITY_RANGE
    bad = [k for k, v in modules.items() if not isinstance(v, bool)]
    bad += [k for k, v in priorities.items() if not isinstance(v, int) or not low <= v <= high]
    bad += [
        f"chats.{k}"
        for k, v in chats.items()
        if not isinstance(v, list) or not all(isinstance(c, str) and CHAT.fullmatch(c) for c in v)
    ]
    if bad:
        raise ValueError(f"invalid values for {', '.join(sorted(bad))}")
    return dict(modules), dict(priorities), {k: tuple(dict.fromkeys(v)) for k, v in chats.items() if v}
