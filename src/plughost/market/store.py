"""What the market keeps in `.plughost/market/`: installed plugins, their history, kept versions.

```
.plughost/market/
  state.json                 installed plugins (version, index, checksum …) and each one's history
  indexes/<name>.json        cached indexes (see fetch.py)
  versions/<id>/<version>/   previous versions, kept for rollback (`keep_versions`)
  staging/                   downloads and unpacked archives while an install runs
  .lock                      held while an operation changes the workspace
```

`state.json` is written atomically with a `.bak` (`plughost.core.files`): one write records an
install, update, rollback or uninstall together with its history entry.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plughost.core.files import PersistedFile
from plughost.errors import StateFileError
from plughost.market.errors import CannotWrite, MarketBusy

MARKET_DIR = Path(".plughost") / "market"
STATE_FILE = "state.json"
Action = Literal["install", "update", "downgrade", "reinstall", "rollback", "uninstall"]


class InstalledPlugin(BaseModel):
    """A plugin the market installed."""

    model_config = ConfigDict(extra="ignore")

    id: str
    version: str
    index: str = Field(description="Name of the index it came from.")
    url: str = Field(description="Where the archive was downloaded from.")
    sha256: str
    runtime: str
    path: str = Field(description="Its directory.")
    installed_at: float = Field(description="Unix time of the install (or the last update or rollback).")
    dependency: bool = Field(default=False, description="Installed only because another plugin needs it.")


class HistoryEntry(BaseModel):
    """One change of one plugin."""

    model_config = ConfigDict(extra="ignore")

    at: float = Field(description="Unix time.")
    action: Action
    version: str | None = Field(description="The version afterwards (null after uninstall).")
    previous: str | None = Field(default=None, description="The version before.")
    index: str | None = None
    sha256: str | None = None
    url: str | None = Field(default=None, description="Where the archive came from.")


class MarketState(BaseModel):
    """`state.json`."""

    model_config = ConfigDict(extra="ignore")

    format: int = 1
    installed: dict[str, InstalledPlugin] = Field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = Field(default_factory=dict)

    def record(self, plugin_id: str, entry: HistoryEntry) -> None:
        self.history.setdefault(plugin_id, []).append(entry)


def _parse(raw: bytes) -> MarketState:
    return MarketState.model_validate(json.loads(raw))


class MarketStore:
    """The market's directory in one workspace. Constructing it touches no file."""

    def __init__(self, workspace: Path) -> None:
        self.root = workspace / MARKET_DIR
        self._state = PersistedFile(self.root / STATE_FILE, _parse, what="the market's installed plugins")

    @property
    def index_dir(self) -> Path:
        return self.root / "indexes"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    def versions_dir(self, plugin_id: str) -> Path:
        return self.root / "versions" / plugin_id

    def kept(self, plugin_id: str, version: str) -> Path:
        return self.versions_dir(plugin_id) / version

    def kept_versions(self, plugin_id: str) -> list[str]:
        """Versions of the plugin kept for rollback (directories that exist)."""
        try:
            return sorted(e.name for e in self.versions_dir(plugin_id).iterdir() if e.is_dir() and e.name[:1] != ".")
        except OSError:
            return []

    def load(self) -> MarketState:
        """The state (from the `.bak` when the file is damaged); empty when there is none."""
        loaded = self._state.load(fallback="starting with no installed plugins")
        return loaded.value if loaded.value is not None else MarketState()

    def save(self, state: MarketState) -> None:
        try:
            self._state.save(state.model_dump_json(indent=2) + "\n")
        except StateFileError as exc:
            raise CannotWrite(str(exc)) from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold `.lock` (`MarketBusy` when another process holds it)."""
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise CannotWrite(f"cannot write {self.root}: {exc.strerror or exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise MarketBusy(
                        f"another market operation is changing {self.root.parent.parent}: try again when it is done"
                    ) from None
                raise
            yield
        finally:
            os.close(fd)

    def prune(self, plugin_id: str, state: MarketState, keep: int, current: str | None) -> list[str]:
        """Remove kept versions beyond the `keep` most recently used ones; the removed versions."""
        kept = [v for v in self.kept_versions(plugin_id) if v != current]
        last_used: dict[str, float] = {}
        for entry in state.history.get(plugin_id, []):
            for version in (entry.version, entry.previous):
                if version is not None:
                    last_used[version] = entry.at
        kept.sort(key=lambda v: last_used.get(v, 0.0), reverse=True)
        removed = kept[keep:]
        for version in removed:
            remove_tree(self.kept(plugin_id, version))
        return removed


def move(source: Path, target: Path) -> None:
    """Rename `source` to `target` (its parent is created); across file systems, copy then delete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(source, target, symlinks=True)
        shutil.rmtree(source)


def remove_tree(path: Path) -> None:
    """Remove a directory (or file, or link) if it exists; errors are ignored (leftovers are harmless)."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def now() -> float:
    return round(time.time(), 3)


__all__ = ["HistoryEntry", "InstalledPlugin", "MarketState", "MarketStore"]
