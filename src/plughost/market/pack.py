"""`plughost pack DIR`: a plugin directory as an archive, and its index entry (with the SHA-256).

The archive holds the plugin's files at its top (manifest first), in a fixed order with fixed
times and owners, so packing the same files twice gives the same bytes and checksum. Left out:
hidden files and directories (`.git`, `.site`, `.venv` …), `__pycache__` and `*.pyc`. Symbolic
links are kept when they point inside the plugin; others are an error.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from plughost.errors import ManifestError
from plughost.market.errors import MarketError
from plughost.market.extract import check_link
from plughost.market.index import IndexPlugin
from plughost.market.resolve import host_platform
from plughost.sdk.manifest import PluginManifest, find_manifest_file, load_manifest

ArchiveFormat = Literal["tar.gz", "zip"]
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Packed:
    """What `pack_plugin` made."""

    archive: Path
    sha256: str
    size: int
    entry: dict[str, Any]  # the plugin's index entry, with this one version


def plugin_files(directory: Path) -> Iterator[Path]:
    """The files and links to pack, relative to `directory`, sorted."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        here = Path(root)
        for name in sorted(files):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            yield (here / name).relative_to(directory)
        for name in dirs:  # links to directories are packed as links, not followed
            if (here / name).is_symlink():
                yield (here / name).relative_to(directory)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]


def pack_plugin(
    directory: Path,
    out_dir: Path,
    *,
    url: str | None = None,
    platforms: Sequence[str] = (),
    plughost: str = "",
    archive_format: ArchiveFormat = "tar.gz",
) -> Packed:
    """Pack the plugin at `directory` into `out_dir/<id>-<version>.<format>` and describe it.

    `url` is the download URL the entry names (default: the archive's file name, which an index
    beside the archive resolves); `platforms` default to this machine's for native and process
    plugins (none for Python). `MarketError` when the directory is not a valid plugin.
    """
    directory = directory.resolve()
    manifest = _manifest(directory)
    files = list(plugin_files(directory))
    manifest_name = find_manifest_file(directory)
    assert manifest_name is not None
    files.sort(key=lambda p: (p != Path(manifest_name.name), str(p)))
    for relative in files:
        full = directory / relative
        if full.is_symlink():
            try:
                check_link(relative.parts, os.readlink(full), str(relative))
            except MarketError as exc:
                raise MarketError(f"{full} cannot be packed: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{manifest.id}-{manifest.version}.{archive_format}"
    data = _tar_gz(directory, files) if archive_format == "tar.gz" else _zip(directory, files)
    archive.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    if not platforms and manifest.runtime != "python":
        platforms = [host_platform()]
    version: dict[str, Any] = {
        "version": manifest.version,
        "url": url or archive.name,
        "sha256": digest,
        "size": len(data),
        "runtime": manifest.runtime,
        "platforms": list(platforms),
        "plughost": plughost,
        "dependencies": list(manifest.dependencies.plugins),
        "python": list(manifest.dependencies.python),
    }
    entry: dict[str, Any] = {
        "id": manifest.id,
        "name": manifest.name,
        "description": manifest.description,
        "tags": list(manifest.tags),
        "author": manifest.author.model_dump(exclude_none=True) if manifest.author else None,
        "homepage": manifest.repository,
        "versions": [{k: v for k, v in version.items() if v not in ("", [])}],
    }
    entry = {k: v for k, v in entry.items() if v is not None}
    try:
        IndexPlugin.model_validate(entry)
    except ValueError as exc:
        raise MarketError(f"{directory}: its index entry would be invalid: {exc}") from None
    return Packed(archive, digest, len(data), entry)


def _manifest(directory: Path) -> PluginManifest:
    manifest_file = find_manifest_file(directory)
    if manifest_file is None:
        raise MarketError(f"{directory} has no plugin.toml or plugin.json: only plugin directories can be packed")
    try:
        return load_manifest(manifest_file)
    except ManifestError as exc:
        raise MarketError(str(exc)) from None


def _mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644


def _tar_gz(directory: Path, files: list[Path]) -> bytes:
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        made: set[Path] = set()
        for relative in files:
            for parent in reversed(relative.parents[:-1]):
                if parent not in made:
                    made.add(parent)
                    tar.addfile(_info(parent.as_posix() + "/", tarfile.DIRTYPE, 0o755))
            full = directory / relative
            if full.is_symlink():
                info = _info(relative.as_posix(), tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(full)
                tar.addfile(info)
                continue
            info = _info(relative.as_posix(), tarfile.REGTYPE, _mode(full))
            info.size = full.stat().st_size
            with full.open("rb") as handle:
                tar.addfile(info, handle)
    return raw.getvalue()


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _zip(directory: Path, files: list[Path]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for relative in files:
            full = directory / relative
            info = zipfile.ZipInfo(relative.as_posix(), ZIP_EPOCH)
            info.create_system = 3  # unix: the mode below is read
            if full.is_symlink():
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zipped.writestr(info, os.readlink(full))
                continue
            info.external_attr = (stat.S_IFREG | _mode(full)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zipped.writestr(info, full.read_bytes())
    return raw.getvalue()


__all__ = ["Packed", "pack_plugin", "plugin_files"]
