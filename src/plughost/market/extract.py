"""Safe extraction of plugin archives (zip, tar, tar.gz/bz2/xz) into a fresh directory.

What is refused, naming the member: absolute paths, `..` components, backslashes and NUL bytes in
names, hard links, device files, FIFOs and sockets, sparse or encrypted members, a name used twice,
symbolic links whose target is absolute or resolves outside the directory (checked on the name
and again on the real path once every link exists), and archives that unpack to more than
`max_bytes` or hold more than `max_files` members (counted as they are read: a compression bomb
is stopped when it passes the limit, whatever its headers claim). Files get mode 0644 or 0755
(when any execute bit was set): no set-user-ID bits, nothing world-writable.

`extract_archive` writes only below `target`, which must not exist; when it refuses, `target` is
removed again, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from plughost.market.errors import UnsafeArchive

CHUNK = 1 << 16
MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
MAX_LINK_BYTES = 4096
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

Kind = Literal["file", "dir", "symlink"]


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one archive may unpack to."""

    max_bytes: int = 1 << 30
    max_files: int = 20_000


@dataclass
class _Member:
    name: str  # as in the archive
    kind: Kind
    mode: int
    size: int = 0
    link: str = ""
    open: Callable[[], IO[bytes]] | None = None


def archive_kind(path: Path) -> Literal["zip", "tar"]:
    """`zip` or `tar` (compressed or not), from the file's first bytes; `UnsafeArchive` otherwise."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar":
        return "tar"
    raise UnsafeArchive("it is neither a zip nor a tar archive (.tar, .tar.gz, .tar.bz2, .tar.xz)")


def extract_archive(archive: Path, target: Path, limits: ArchiveLimits | None = None) -> int:
    """Unpack `archive` into `target` (created; must not exist); the number of members written.

    Raises `UnsafeArchive` (and removes `target`) when the archive holds anything the module
    docstring lists; `OSError` when the disk refuses (also after removing `target`).
    """
    limits = limits or ArchiveLimits()
    kind = archive_kind(archive)
    target.mkdir(parents=False, exist_ok=False)
    try:
        writer = _Writer(target, limits)
        if kind == "zip":
            with _open_zip(archive) as zipped:
                for member in _zip_members(zipped, limits):
                    writer.add(member)
        else:
            with _open_tar(archive) as tarred:
                for member in _tar_members(tarred):
                    writer.add(member)
        writer.finish()
        return writer.count
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


@contextlib.contextmanager
def _open_zip(archive: Path) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(archive) as zipped:
            yield zipped
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise UnsafeArchive(f"it is not a readable zip archive: {exc}") from None


@contextlib.contextmanager
def _open_tar(archive: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(archive, mode="r|*") as tarred:  # a stream: read once, never seek back
            yield tarred
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno is not None:
            raise  # the disk, not the archive
        raise UnsafeArchive(f"it is not a readable tar archive: {exc}") from None


def _zip_members(zipped: zipfile.ZipFile, limits: ArchiveLimits) -> Iterator[_Member]:
    infos = zipped.infolist()
    if len(infos) > limits.max_files:
        raise UnsafeArchive(f"the archive holds {len(infos)} members, more than the limit of {limits.max_files}")
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_bytes:
        raise UnsafeArchive(f"the archive unpacks to {declared} bytes, more than the limit of {limits.max_bytes}")
    for info in infos:
        if not info.filename:
            raise UnsafeArchive("the archive holds a member without a name; refused")
        mode = info.external_attr >> 16
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"archive member '{info.filename}' is encrypted; refused")
        if info.is_dir():
            yield _Member(info.filename, "dir", 0o755)
        elif stat.S_ISLNK(mode):
            with zipped.open(info) as handle:
                link = handle.read(MAX_LINK_BYTES + 1)
            yield _Member(info.filename, "symlink", 0o777, link=_link_text(info.filename, link))
        elif stat.S_IFMT(mode) in (0, stat.S_IFREG):
            yield _Member(info.filename, "file", mode, info.file_size, open=functools.partial(zipped.open, info))
        else:
            raise UnsafeArchive(f"archive member '{info.filename}' is a {_kind_name(mode)}; refused")


def _tar_members(tarred: tarfile.TarFile) -> Iterator[_Member]:
    for info in tarred:
        if info.isdir():
            yield _Member(info.name, "dir", 0o755)
        elif info.issym():
            yield _Member(info.name, "symlink", 0o777, link=info.linkname)
        elif info.islnk():
            raise UnsafeArchive(f"archive member '{info.name}' is a hard link; refused")
        elif info.issparse():
            raise UnsafeArchive(f"archive member '{info.name}' is a sparse file; refused")
        elif info.isreg():
            yield _Member(info.name, "file", info.mode, info.size, open=functools.partial(_tar_file, tarred, info))
        else:
            what = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "FIFO"}
            raise UnsafeArchive(f"archive member '{info.name}' is a {what.get(info.type, 'special file')}; refused")


def _tar_file(tarred: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    handle = tarred.extractfile(info)
    if handle is None:
        raise UnsafeArchive(f"archive member '{info.name}' cannot be read")
    return handle


def _kind_name(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _link_text(name: str, raw: bytes) -> str:
    if len(raw) > MAX_LINK_BYTES:
        raise UnsafeArchive(f"archive member '{name}': the link target is too long")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchive(f"archive member '{name}': the link target is not UTF-8") from None


def safe_parts(name: str) -> tuple[str, ...]:
    """The path components of an archive member name; `UnsafeArchive` for names that could leave the
    directory. `./a//b/` → ('a', 'b'); an empty tuple is the directory itself."""
    if "\x00" in name:
        raise UnsafeArchive(f"archive member {name!r}: NUL byte in the name; refused")
    if "\\" in name:
        raise UnsafeArchive(f"archive member '{name}': backslash in the name; refused")
    if name.startswith("/") or _DRIVE_RE.match(name):
        raise UnsafeArchive(f"archive member '{name}': absolute path; refused")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeArchive(f"archive member '{name[:80]}…': name too long; refused")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    for part in parts:
        if part == "..":
            raise UnsafeArchive(f"archive member '{name}': '..' leaves the plugin directory; refused")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
            raise UnsafeArchive(f"archive member '{name[:80]}…': a name component is too long; refused")
    return parts


def check_link(parts: tuple[str, ...], link: str, name: str) -> None:
    """Refuse a symbolic link at `parts` whose target (as written) is absolute or leaves the root."""
    if not link or "\x00" in link or "\\" in link:
        raise UnsafeArchive(f"archive member '{name}': link target {link!r} is not allowed; refused")
    if link.startswith("/") or _DRIVE_RE.match(link):
        raise UnsafeArchive(f"archive member '{name}': link to the absolute path '{link}'; refused")
    resolved = posixpath.normpath(posixpath.join("/".join(parts[:-1]), link))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise UnsafeArchive(f"archive member '{name}': link to '{link}' points out of the plugin directory; refused")


class _Writer:
    """Writes members below `root`: directories and files as they come, links at the end."""

    def __init__(self, root: Path, limits: ArchiveLimits) -> None:
        self.root = root
        self.limits = limits
        self.count = 0
        self.bytes = 0
        self._files: set[tuple[str, ...]] = set()
        self._dirs: set[tuple[str, ...]] = {()}
        self._links: list[tuple[tuple[str, ...], str, str]] = []

    def add(self, member: _Member) -> None:
        parts = safe_parts(member.name)
        self.count += 1
        if self.count > self.limits.max_files:
            raise UnsafeArchive(f"the archive holds more than {self.limits.max_files} members; refused")
        if not parts:
            if member.kind == "dir":
                return
            raise UnsafeArchive(f"archive member '{member.name}' names the directory itself; refused")
        for depth in range(1, len(parts)):
            if parts[:depth] in self._files:
                raise UnsafeArchive(f"archive member '{member.name}' lies below the file '{'/'.join(parts[:depth])}'")
        if member.kind == "dir":
            if parts in self._files:
                raise UnsafeArchive(f"archive member '{member.name}' is both a file and a directory; refused")
            self._mkdirs(parts)
            return
        if parts in self._files or parts in self._dirs:
            raise UnsafeArchive(f"archive member '{member.name}' appears twice; refused")
        self._files.add(parts)
        if member.kind == "symlink":
            check_link(parts, member.link, member.name)
            self._links.append((parts, member.link, member.name))
            return
        if self.bytes + member.size > self.limits.max_bytes:
            raise UnsafeArchive(f"the archive unpacks to more than {self.limits.max_bytes} bytes; refused")
        self._mkdirs(parts[:-1])
        self._write(parts, member)

    def _mkdirs(self, parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if prefix in self._dirs:
                continue
            if prefix in self._files:
                raise UnsafeArchive(f"'{'/'.join(prefix)}' is a file in the archive and also a directory; refused")
            os.mkdir(self.root.joinpath(*prefix), 0o755)
            self._dirs.add(prefix)

    def _write(self, parts: tuple[str, ...], member: _Member) -> None:
        assert member.open is not None
        mode = 0o755 if member.mode & 0o111 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.root.joinpath(*parts), flags, mode)
        with os.fdopen(fd, "wb") as out, member.open() as source:
            while True:
                try:
                    chunk = source.read(CHUNK)
                except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as exc:
                    raise UnsafeArchive(f"archive member '{member.name}' is damaged: {exc}") from None
                except OSError as exc:  # zlib/lzma errors of a damaged stream
                    if exc.errno is not None:
                        raise
                    raise UnsafeArchive(f"archive member '{member.name}' is damaged: {exc}") from None
                if not chunk:
                    break
                self.bytes += len(chunk)
                if self.bytes > self.limits.max_bytes:
                    raise UnsafeArchive(f"the archive unpacks to more than {self.limits.max_bytes} bytes; refused")
                out.write(chunk)
            os.fchmod(out.fileno(), mode)  # the umask may have taken bits away

    def finish(self) -> None:
        """Create the links, then check that every one really resolves inside the root."""
        for parts, link, name in self._links:
            self._mkdirs(parts[:-1])
            try:
                os.symlink(link, self.root.joinpath(*parts))
            except FileExistsError:
                raise UnsafeArchive(f"archive member '{name}' appears twice; refused") from None
        root = os.path.realpath(self.root)
        for parts, link, name in self._links:
            real = os.path.realpath(self.root.joinpath(*parts))
            if real != root and not real.startswith(root + os.sep):
                raise UnsafeArchive(
                    f"archive member '{name}': link to '{link}' resolves out of the plugin directory; refused"
                )


def plugin_root(directory: Path, manifest_names: tuple[str, ...]) -> Path:
    """Where the plugin is in an unpacked archive: the directory itself when a manifest is at its
    top, or its only subdirectory (archives made with `tar czf x.tar.gz plugin/`)."""
    if any((directory / name).is_file() for name in manifest_names):
        return directory
    entries = [e for e in directory.iterdir() if e.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return directory


__all__ = ["ArchiveLimits", "archive_kind", "check_link", "extract_archive", "plugin_root", "safe_parts"]
