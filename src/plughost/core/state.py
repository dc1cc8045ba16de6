"""`plugin-state.toml` (QimenBot's format): enabled flags and priority overrides.

```toml
[modules]
echo = true
[priorities]
echo = 500
```
Written atomically with a `.bak` (see `plughost.core.files`); an empty or corrupt file is kept
and the `.bak` is used with a warning, then defaults. A change is made in memory only once it
is written: when writing fails, `StateFileError` says which file and why, and nothing changed.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from plughost.core.files import PersistedFile

log = logging.getLogger(__name__)
PRIORITY_RANGE = (0, 1000)


@dataclass
class PluginStateFile:
    """Persisted enable/disable and priority overrides by plugin id."""

    path: Path
    modules: dict[str, bool] = field(default_factory=dict)
    priorities: dict[str, int] = field(default_factory=dict)
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
            state.modules, state.priorities = loaded.value
        return state

    def set_enabled(self, plugin_id: str, enabled: bool | None) -> None:
        """Persist the enabled flag of `plugin_id` (None: forget it, the manifest decides)."""
        modules = dict(self.modules)
        if enabled is None:
            modules.pop(plugin_id, None)
        else:
            modules[plugin_id] = enabled
        self._write(modules, self.priorities)
        self.modules = modules

    def set_priority(self, plugin_id: str, priority: int) -> None:
        low, high = PRIORITY_RANGE
        if not low <= priority <= high:
            raise ValueError(f"priority must be between {low} and {high}, got {priority}")
        priorities = {**self.priorities, plugin_id: priority}
        self._write(self.modules, priorities)
        self.priorities = priorities

    def forget(self, plugin_id: str) -> None:
        """Drop every override of `plugin_id` (its files were deleted)."""
        if plugin_id not in self.modules and plugin_id not in self.priorities:
            return
        modules = {k: v for k, v in self.modules.items() if k != plugin_id}
        priorities = {k: v for k, v in self.priorities.items() if k != plugin_id}
        self._write(modules, priorities)
        self.modules, self.priorities = modules, priorities

    def save(self) -> None:
        self._write(self.modules, self.priorities)

    def _write(self, modules: dict[str, bool], priorities: dict[str, int]) -> None:
        data = {"modules": dict(sorted(modules.items())), "priorities": dict(sorted(priorities.items()))}
        _file(self.path).save(tomli_w.dumps(data))


def _file(path: Path) -> PersistedFile[tuple[dict[str, bool], dict[str, int]]]:
    return PersistedFile(path, _parse, what="plugin state")


def _parse(raw: bytes) -> tuple[dict[str, bool], dict[str, int]]:
    data = tomllib.loads(raw.decode("utf-8"))
    modules = data.get("modules", {})
    priorities = data.get("priorities", {})
    if not isinstance(modules, dict) or not isinstance(priorities, dict):
        raise ValueError("[modules] and [priorities] must be tables")
    low, high = PRIORITY_RANGE
    bad = [k for k, v in modules.items() if not isinstance(v, bool)]
    bad += [k for k, v in priorities.items() if not isinstance(v, int) or not low <= v <= high]
    if bad:
        raise ValueError(f"invalid values for {', '.join(sorted(bad))}")
    return dict(modules), dict(priorities)
