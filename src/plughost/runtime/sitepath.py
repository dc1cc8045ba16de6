"""A Python plugin's own site directory (`<plugin>/.site`) on the import path while it is loaded.

`plughost market install` puts a plugin's Python requirements there (`pip install --target`), so
they never touch the host's environment. While a plugin whose directory has one is loaded, the
directory is on `sys.path` — after the host's own paths, so the host's packages win and a plugin
cannot replace a module the host (or another plugin) uses. Each load first forgets the modules
imported from that directory before, so a new version of the plugin imports its own versions;
when the last loaded version of the plugin stops, the directory leaves `sys.path` and its modules
leave `sys.modules`. In a worker (`isolation = "process"`) the same happens in the worker.

In one process the plugins share one interpreter: a package two plugins both ship is imported
once, from the first to import it. Plugins that need conflicting versions of a package belong in
workers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from plughost.sdk.manifest import SITE_DIR


class SitePaths:
    """Counts the loaded plugins using each site directory (one per runtime instance)."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}

    def acquire(self, plugin_path: Path) -> str | None:
        """Put `<plugin_path>/.site` on `sys.path` if it exists; the path to `release` later (or None)."""
        site = plugin_path / SITE_DIR
        if not plugin_path.is_dir() or not site.is_dir():
            return None
        path = str(site)
        forget_modules(path)
        if path not in sys.path:
            sys.path.append(path)
        self._users[path] = self._users.get(path, 0) + 1
        return path

    def release(self, path: str | None) -> None:
        """One user of `path` stopped; with the last one the path and its modules go."""
        if path is None or path not in self._users:
            return
        self._users[path] -= 1
        if self._users[path] > 0:
            return
        del self._users[path]
        while path in sys.path:
            sys.path.remove(path)
        sys.path_importer_cache.pop(path, None)
        forget_modules(path)


def forget_modules(directory: str) -> int:
    """Remove the modules imported from below `directory` from `sys.modules`; how many."""
    prefix = directory.rstrip(os.sep) + os.sep
    names = [name for name, module in list(sys.modules.items()) if _below(module, prefix)]
    for name in names:
        sys.modules.pop(name, None)
    return len(names)


def _below(module: object, prefix: str) -> bool:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return file.startswith(prefix)
    paths = [p for p in getattr(module, "__path__", None) or () if isinstance(p, str)]  # a namespace package
    return bool(paths) and all(p.startswith(prefix) for p in paths)


__all__ = ["SitePaths", "forget_modules"]
