"""What a workspace has installed, read from its files without loading a plugin.

`plughost plugins list` without a running host (and without --load or --local) shows this: the
plugins discovery finds (manifests, single-file plugins, native libraries, entry points) with the
state each would start in. Nothing is imported, dlopened or started, so it costs the same for 5
plugins as for 500; what only loading tells (what a plugin offers, whether it loads) needs --load.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plughost.core.config import HostConfig, PluginConfigStore, read_toml
from plughost.core.discovery import discover
from plughost.core.state import PluginStateFile
from plughost.errors import ConfigError, PlugHostError
from plughost.runtime.base import Candidate
from plughost.runtime.native import NativeRuntime


def installed_plugins(
    workspace: Path, extra_plugin_dirs: Sequence[Path] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows like `PluginManager.catalog()`'s, each with `loaded: False` and the state the plugin would
    start in (no `methods`, `commands`, `capabilities`, `error`), and the id conflicts.

    Raises `PlugHostError` for a `plughost.toml` the host would refuse too.
    """
    config = HostConfig.load(workspace)
    host = config.host
    directories = [workspace / d for d in host.plugin_dirs] + [Path(d).resolve() for d in extra_plugin_dirs]
    # the one runtime that finds plugins of its own (native libraries without a manifest); it loads nothing here
    report = discover(directories, {"native": NativeRuntime()}, entry_points=host.entry_points)
    states = PluginStateFile.load(workspace / host.state_file)
    configs = PluginConfigStore(workspace / host.config_dir)
    rows = [_row(c, _wanted_state(c, configs, states)) for c in report.candidates.values()]
    rows += [c.row() | {"loaded": False} for c in report.invalid]  # state None, the validation errors
    return rows, [str(c) for c in report.conflicts]


def installed_plugins_quietly(workspace: Path) -> tuple[list[dict[str, Any]], list[str]] | None:
    """`installed_plugins`, or None when it fails or logs a warning (a corrupt state file…): for the fast
    path of `plugins list` (`plughost.cli.quick`), which leaves saying those to the full command."""
    warnings = _Collected()
    root = logging.getLogger()
    root.addHandler(warnings)
    try:
        listing = installed_plugins(workspace)
    except PlugHostError:
        return None
    finally:
        root.removeHandler(warnings)
    return None if warnings.records else listing


class _Collected(logging.Handler):
    """Keeps the warnings logged while it is installed (and keeps them off stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _wanted_state(candidate: Candidate, configs: PluginConfigStore, states: PluginStateFile) -> tuple[bool, int]:
    """The state the plugin would start in (`PluginStateFile.starting_state`, as the manager decides
    it); a config that does not parse counts as empty here (loading reports it as the plugin's error)."""
    assert candidate.manifest is not None
    path = configs.path(candidate.id)
    try:
        config = read_toml(path) if path.is_file() else {}
    except ConfigError:
        config = {}
    return states.starting_state(candidate.id, candidate.manifest, config)


def _row(candidate: Candidate, wanted: tuple[bool, int]) -> dict[str, Any]:
    manifest = candidate.manifest
    assert manifest is not None
    enabled, priority = wanted
    return {
        "id": candidate.id,
        "name": manifest.name,
        # a single-file Python plugin declares its version in its code: known once it is loaded
        "version": None if candidate.path.is_file() and manifest.runtime == "python" else manifest.version,
        "type": manifest.type,
        "runtime": manifest.runtime,
        "isolation": manifest.isolation,
        "state": "enabled" if enabled else "disabled",
        "priority": priority,
        "path": str(candidate.path),
        "origin": candidate.origin,
        "description": manifest.description,
        "tags": list(manifest.tags),
        "status": candidate.status.value,
        "loaded": False,
    }


def listed_note(reason: str) -> str:
    """The note said on stderr when the list was read from the files (`reason`: why no host answered)."""
    return f"{reason}: listed from the plugins' files, none loaded (--load loads them)"
