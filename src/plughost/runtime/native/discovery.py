"""Find native libraries in a plugin directory (CLIProxyAPI's rules).

Search `<dir>/<os>/<arch>` then `<dir>`; regular files ending in .so/.dylib/.dll (any case);
id = file name without extension, a `-v<version>` suffix sets the version; ids must match
the plugin id rule. Same id twice: the arch directory beats the root, then the higher version wins.
An optional `plugin.toml` (or `<id>.plugin.toml`) beside the library with the same id adds
permissions, limits and isolation.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.version import InvalidVersion, Version

from plughost.errors import ManifestError
from plughost.sdk.manifest import PluginManifest, is_semver, is_valid_plugin_id, load_manifest

LIBRARY_SUFFIXES = (".so", ".dylib", ".dll")
_VERSION_SUFFIX = re.compile(r"^(?P<id>.+?)-v(?P<version>[0-9][0-9A-Za-z.+-]*)$")

Origin = Literal["arch", "root"]

GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_os() -> str:
    """The OS name as Go spells it (linux, darwin, windows, freebsd)."""
    name: str = sys.platform
    for prefix in ("linux", "freebsd"):
        if name.startswith(prefix):
            return prefix
    return {"win32": "windows", "cygwin": "windows"}.get(name, name)


def host_arch() -> str:
    """The CPU architecture as Go spells it (amd64, arm64, …)."""
    machine = platform.machine().lower()
    return GOARCH.get(machine, machine)


@dataclass(frozen=True)
class NativeLibraryFile:
    """A library found by discovery: its id, version (if named), where it was found, its manifest."""

    id: str
    path: Path
    version: str
    origin: Origin
    manifest: PluginManifest
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass
class NativeDiscovery:
    """What a scan found: the winning library per id, and files skipped with a reason."""

    libraries: list[NativeLibraryFile] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def split_library_name(filename: str) -> tuple[str, str] | None:
    """(`id`, `version`) from a library file name, or None if it is not a library name."""
    lowered = filename.lower()
    suffix = next((s for s in LIBRARY_SUFFIXES if lowered.endswith(s)), None)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    match = _VERSION_SUFFIX.match(stem)
    if match:
        return match["id"], match["version"]
    return stem, ""


def _version_key(version: str) -> tuple[int, Version | str]:
    if not version:
        return (0, "")
    try:
        return (2, Version(version))
    except InvalidVersion:
        return (1, version)


def manifest_version(version: str) -> str:
    """A semver for the manifest from a file version (`1.2` → `1.2.0`; none → `0.0.0`)."""
    if not version:
        return "0.0.0"
    if is_semver(version):
        return version
    parts = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if parts:
        return ".".join(p or "0" for p in parts.groups())
    return "0.0.0"


def _manifest_for(library_id: str, path: Path, version: str) -> tuple[PluginManifest, tuple[str, ...]]:
    default = PluginManifest(id=library_id, version=manifest_version(version), runtime="native", entry=path.name)
    for candidate in (path.parent / f"{library_id}.plugin.toml", path.parent / "plugin.toml"):
        if not candidate.is_file():
            continue
        try:
            manifest = load_manifest(candidate, default_id=library_id)
        except ManifestError as exc:
            if candidate.name == "plugin.toml" and f"'{library_id}'" not in str(exc):
                continue
            return default, (str(exc),)
        if manifest.id != library_id:
            continue
        if manifest.runtime != "native":
            return default, (f"{candidate}: runtime must be 'native' for the library {path.name}",)
        update: dict[str, object] = {"entry": path.name}
        if version and manifest.version == "0.1.0":
            update["version"] = manifest_version(version)
        return manifest.model_copy(update=update), ()
    return default, ()


def discover_libraries(directory: Path, *, os_name: str | None = None, arch: str | None = None) -> NativeDiscovery:
    """Scan `directory` by the spec's rules; see the module docstring."""
    found = NativeDiscovery()
    best: dict[str, NativeLibraryFile] = {}
    arch_dir = directory / (os_name or host_os()) / (arch or host_arch())
    for origin, folder in (("arch", arch_dir), ("root", directory)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            parsed = split_library_name(path.name)
            if parsed is None:
                continue
            if not path.is_file():
                found.skipped.append((path, "not a regular file"))
                continue
            library_id, version = parsed
            if not is_valid_plugin_id(library_id):
                found.skipped.append((path, f"'{library_id}' is not a valid plugin id"))
                continue
            manifest, errors = _manifest_for(library_id, path, version)
            entry = NativeLibraryFile(library_id, path, version, origin, manifest, errors)  # type: ignore[arg-type]
            current = best.get(library_id)
            if current is None:
                best[library_id] = entry
            elif current.origin == "arch" and origin == "root":
                found.skipped.append((path, f"{current.path} (architecture directory) takes precedence"))
            elif _version_key(version) > _version_key(current.version):
                found.skipped.append((current.path, f"{path.name} has a higher version"))
                best[library_id] = entry
            else:
                found.skipped.append((path, f"{current.path.name} has the same id and a higher or equal version"))
    found.libraries = sorted(best.values(), key=lambda e: e.id)
    return found
