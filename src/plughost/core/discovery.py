"""Find plugins: manifest directories, single-file Python plugins, runtime-specific files
(native libraries), and installed packages in the `plughost.plugins` entry-point group.

Search order is the configured directories in order, then entry points; within a directory,
names sort. The first plugin with an id wins; later ones are reported as conflicts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plughost.errors import ManifestError, ValidationIssue
from plughost.runtime.base import Candidate, Runtime, SupportsDiscover
from plughost.runtime.builds import BUILD_SCRIPT, build_hint
from plughost.sdk.manifest import (
    PYTHON_DEFAULT_ENTRIES,
    PluginManifest,
    find_manifest_file,
    is_semver,
    is_valid_plugin_id,
    load_manifest,
    parse_manifest,
)
from plughost.sdk.models import DiscoveryStatus

ENTRY_POINT_GROUP = "plughost.plugins"


@dataclass(frozen=True)
class Conflict:
    """Two or more plugins with one id; `winner` is the one that is used."""

    id: str
    winner: Path
    losers: tuple[Path, ...]

    def __str__(self) -> str:
        others = ", ".join(str(p) for p in self.losers)
        return f"plugin id '{self.id}' is used by {self.winner} and {others}; using {self.winner}"


@dataclass
class DiscoveryReport:
    """Every candidate found (winners and invalid ones) and the id conflicts."""

    candidates: dict[str, Candidate] = field(default_factory=dict)
    invalid: list[Candidate] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def all(self) -> list[Candidate]:
        return [*self.candidates.values(), *self.invalid]


def discover(
    directories: Sequence[Path],
    runtimes: Mapping[str, Runtime],
    *,
    entry_points: bool = True,
) -> DiscoveryReport:
    """Discover plugins in `directories` (in order), then in installed entry points."""
    report = DiscoveryReport()
    losers: dict[str, list[Path]] = {}
    found: list[Candidate] = []
    for directory in directories:
        if directory.is_dir():
            found.extend(_scan_directory(directory, runtimes))
    if entry_points:
        found.extend(_scan_entry_points())
    for candidate in found:
        if candidate.status is DiscoveryStatus.INVALID:
            report.invalid.append(candidate)
        elif candidate.id in report.candidates:
            losers.setdefault(candidate.id, []).append(candidate.path)
        else:
            report.candidates[candidate.id] = candidate
    report.conflicts = [Conflict(i, report.candidates[i].path, tuple(paths)) for i, paths in losers.items()]
    return report


def candidate_from_path(path: Path, origin: str = "") -> Candidate:
    """A candidate for one plugin directory or single Python file."""
    path = path.resolve()
    if path.is_file():
        return _single_file(path, origin or str(path.parent))
    manifest_file = find_manifest_file(path)
    if manifest_file is None:
        issue = ValidationIssue(str(path), "", "no plugin.toml or plugin.json in this directory")
        return Candidate(path.name, path, None, DiscoveryStatus.INVALID, origin or str(path.parent), [issue])
    return _from_manifest(path, manifest_file, origin or str(path.parent))


def is_plugin_path(path: Path) -> bool:
    """Does discovery take `path` for a plugin: a directory with a manifest or a default Python
    entry (`__init__.py`, `plugin.py`, `main.py`), or a `.py` file?"""
    if path.is_dir():
        return find_manifest_file(path) is not None or any((path / n).is_file() for n in PYTHON_DEFAULT_ENTRIES)
    return path.is_file() and path.suffix == ".py"


def _scan_directory(directory: Path, runtimes: Mapping[str, Runtime]) -> Iterable[Candidate]:
    origin = str(directory)
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if not entry.name.startswith((".", "_")) and is_plugin_path(entry):
            yield candidate_from_path(entry, origin)
    for runtime in runtimes.values():
        if isinstance(runtime, SupportsDiscover):
            yield from runtime.discover(directory)


def _single_file(path: Path, origin: str) -> Candidate:
    plugin_id = path.stem
    if not is_valid_plugin_id(plugin_id):
        issue = ValidationIssue(str(path), "id", f"file name '{plugin_id}' is not a valid plugin id")
        return Candidate(plugin_id, path, None, DiscoveryStatus.INVALID, origin, [issue])
    manifest = PluginManifest(id=plugin_id, runtime="python")
    return Candidate(plugin_id, path, manifest, DiscoveryStatus.AVAILABLE, origin)


def _from_manifest(plugin_dir: Path, manifest_file: Path, origin: str) -> Candidate:
    try:
        manifest = load_manifest(manifest_file, default_id=None)
    except ManifestError as exc:
        return Candidate(plugin_dir.name, plugin_dir, None, DiscoveryStatus.INVALID, origin, exc.issues)
    status, issues = _check_entry(plugin_dir, manifest, manifest_file)
    return Candidate(manifest.id, plugin_dir, manifest, status, origin, issues)


def _check_entry(
    plugin_dir: Path, manifest: PluginManifest, manifest_file: Path
) -> tuple[DiscoveryStatus, list[ValidationIssue]]:
    """Does what the manifest points at exist? Process plugins without a binary may be buildable."""
    source = str(manifest_file)
    if manifest.runtime == "python":
        module = (manifest.entry or "").partition(":")[0]
        if module:
            rel = module.removesuffix(".py").replace(".", "/")
            if not ((plugin_dir / f"{rel}.py").is_file() or (plugin_dir / rel / "__init__.py").is_file()):
                return DiscoveryStatus.INVALID, [ValidationIssue(source, "entry", f"'{module}' not found")]
        elif not any((plugin_dir / n).is_file() for n in PYTHON_DEFAULT_ENTRIES):
            message = "no entry: add __init__.py, plugin.py or main.py, or name the module in `entry`"
            return DiscoveryStatus.INVALID, [ValidationIssue(source, "entry", message)]
        return DiscoveryStatus.AVAILABLE, []
    if manifest.remote is not None:  # runs elsewhere: nothing on disk to check
        return DiscoveryStatus.AVAILABLE, []
    target = plugin_dir / (manifest.entry or f"bin/{manifest.id}")
    if manifest.runtime == "process":
        if target.is_file() and os.access(target, os.X_OK):
            return DiscoveryStatus.AVAILABLE, []
        if (plugin_dir / BUILD_SCRIPT).is_file():
            return DiscoveryStatus.SOURCE_ONLY, []
        return DiscoveryStatus.INVALID, [
            ValidationIssue(
                source, "binary", f"{target} does not exist or is not executable, and there is no {BUILD_SCRIPT}"
            )
        ]
    if manifest.entry and not target.is_file():
        build = build_hint(plugin_dir)
        missing = f"{target} does not exist" + (f" (not built yet? run: {build})" if build else "")
        return DiscoveryStatus.INVALID, [ValidationIssue(source, "entry", missing)]
    return DiscoveryStatus.AVAILABLE, []


def _scan_entry_points() -> Iterable[Candidate]:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"entry-point:{ep.dist.name if ep.dist else '?'}"
        module = ep.value.partition(":")[0].strip()
        spec = importlib.util.find_spec(module) if module else None
        if spec is None or spec.origin is None:
            issue = ValidationIssue(ep.value, "entry_point", f"module '{module}' is not importable")
            yield Candidate(ep.name, Path(module or ep.name), None, DiscoveryStatus.INVALID, origin, [issue])
            continue
        path = Path(spec.origin).resolve().parent
        manifest_file = find_manifest_file(path)
        try:
            if manifest_file is not None:
                manifest = load_manifest(manifest_file)
            else:
                version = ep.dist.version if ep.dist and is_semver(ep.dist.version) else "0.1.0"
                manifest = parse_manifest({"id": ep.name, "version": version}, f"entry point {ep.name}")
        except ManifestError as exc:
            yield Candidate(ep.name, path, None, DiscoveryStatus.INVALID, origin, exc.issues)
            continue
        yield Candidate(manifest.id, path, manifest, DiscoveryStatus.AVAILABLE, origin, entry_point=ep.value)
