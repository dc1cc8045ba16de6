"""When each `missed="run_once"` schedule last ran: `.plughost/schedules.json`, written atomically.

```json
{"weather": {"schedule.morning": "2024-05-01T00:00:00+00:00"}}
```
Only schedules that catch up on missed runs are recorded (one write per run). A corrupt file
falls back to its `.bak`, then to nothing recorded (no catch-up), with a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from plughost.core.files import PersistedFile
from plughost.errors import StateFileError

log = logging.getLogger("plughost.schedules")
Times = dict[str, dict[str, str]]


class ScheduleTimes:
    """The last run time of each catching-up schedule, by plugin id and handler."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._times: Times | None = None

    def last(self, plugin_id: str, handler: str) -> dt.datetime | None:
        text = self._loaded().get(plugin_id, {}).get(handler)
        return dt.datetime.fromisoformat(text) if text else None

    def record(self, plugin_id: str, handler: str, when: dt.datetime) -> None:
        """Remember `when` (a failure to write is logged: the next run writes again)."""
        times = self._loaded()
        times.setdefault(plugin_id, {})[handler] = when.isoformat()
        try:
            _file(self.path).save(json.dumps(times, indent=1, sort_keys=True))
        except StateFileError as exc:
            log.warning("%s; the last run of %s/%s is not saved", exc, plugin_id, handler)

    def _loaded(self) -> Times:
        if self._times is None:
            loaded = _file(self.path).load(fallback="no missed runs are caught up")
            for warning in loaded.warnings:
                log.warning("%s", warning)
            self._times = loaded.value or {}
        return self._times


def _parse(raw: bytes) -> Times:
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and all(isinstance(t, str) and dt.datetime.fromisoformat(t) for t in v.values())
        for v in data.values()
    ):
        raise ValueError("expected {plugin id: {handler: ISO time}}")
    return data


def _file(path: Path) -> PersistedFile[Times]:
    return PersistedFile(path, _parse, what="schedule run times")
