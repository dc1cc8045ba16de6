"""`plugin-state.toml` (QimenBot's format): enabled flags and priority overrides.

```toml
[modules]
echo = true
[priorities]
echo = 500
```
Written atomically with a `.bak`; a corrupt file falls back to the `.bak` with a warning.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from plughost.core.files import write_atomic

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
        for candidate in (path, path.with_name(path.name + ".bak")):
            if not candidate.exists():
                continue
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
                state.modules, state.priorities = _parse(data, candidate)
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, OSError) as exc:
                message = f"{candidate} is corrupt ({exc}); "
                message += "trying the backup" if candidate == path else "starting with defaults"
                log.warning(message)
                state.warnings.append(message)
                continue
            if candidate != path:
                log.warning("restored plugin state from %s", candidate)
            return state
        return state

    def set_enabled(self, plugin_id: str, enabled: bool) -> None:
        self.modules[plugin_id] = enabled
        self.save()

    def set_priority(self, plugin_id: str, priority: int) -> None:
        low, high = PRIORITY_RANGE
        if not low <= priority <= high:
            raise ValueError(f"priority must be between {low} and {high}, got {priority}")
        self.priorities[plugin_id] = priority
        self.save()

    def save(self) -> None:
        data = {"modules": dict(sorted(self.modules.items())), "priorities": dict(sorted(self.priorities.items()))}
        write_atomic(self.path, tomli_w.dumps(data))


def _parse(data: dict[str, object], source: Path) -> tuple[dict[str, bool], dict[str, int]]:
    modules = data.get("modules", {})
    priorities = data.get("priorities", {})
    if not isinstance(modules, dict) or not isinstance(priorities, dict):
        raise ValueError("[modules] and [priorities] must be tables")
    bad = [k for k, v in modules.items() if not isinstance(v, bool)]
    bad += [k for k, v in priorities.items() if not isinstance(v, int) or not 0 <= v <= 1000]
    if bad:
        raise ValueError(f"invalid values for {', '.join(sorted(bad))} in {source}")
    return dict(modules), dict(priorities)
