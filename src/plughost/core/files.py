"""Files plughost keeps: atomic writes with an atomic `.bak`, and loading that never loses a good version.

Writing `path` (`write_atomic`, `PersistedFile.save`):

1. The previous version is copied to `<name>.bak` atomically: its bytes go to a temporary file,
   which is fsynced and renamed over the `.bak`. (A hard link to the old file would be cheaper,
   but the `.bak` would then share the live file's inode, and an in-place edit or truncation of
   the file — an editor, `: > permissions.toml` — would destroy the backup with it.) A previous
   version that is empty or does not parse never replaces the backup: it is kept as
   `<name>.corrupt-<time>` instead.
2. The new content goes to a temporary file, fsync, rename over `path`; then the directory is fsynced.

A crash at any point, even SIGKILL, leaves `path` and its `.bak` each holding a complete version.
Temporary files are named `.<name>.<pid>.<random>.tmp`; one left by an interrupted write is
removed when the file is next loaded, once the process that wrote it is gone (only files of that
pattern, only in that directory). A failed write raises `StateFileError` naming the file and why,
and leaves the file as it was.

Loading (`PersistedFile.load`): an empty file, or one that does not parse, is corrupt. It is left
where it is (the next save keeps it as `<name>.corrupt-<time>`, step 1), and the `.bak` is used
with a warning; the caller decides what happens when neither is usable. A path that cannot be
read at all — a directory, no permission — raises `StateFileError` saying what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import ValidationError

from plughost.errors import StateFileError

log = logging.getLogger(__name__)
T = TypeVar("T")

# what a parser raises on bad content (UnicodeDecodeError and TOML, JSON and pydantic errors are ValueErrors)
CORRUPT: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, AttributeError)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


@dataclass
class Loaded(Generic[T]):
    """What `PersistedFile.load` found."""

    value: T | None = None  # None: neither the file nor its backup holds a usable version
    source: Path | None = None  # the file the value came from
    problems: dict[Path, str] = field(default_factory=dict)  # corrupt file → why
    warnings: list[str] = field(default_factory=list)


class PersistedFile(Generic[T]):
    """One file plughost keeps: `load()` falls back to the `.bak`; `save()` writes atomically.

    `parse` turns the file's bytes into a value and raises (ValueError, TypeError …) on bad content;
    it decides, on loading and before every backup, whether a version is usable.
    """

    def __init__(self, path: Path, parse: Callable[[bytes], T], *, what: str) -> None:
        self.path = path
        self.parse = parse
        self.what = what

    def load(self, fallback: str = "") -> Loaded[T]:
        """The newest usable version; `fallback` says in the warnings what happens when there is none."""
        remove_leftovers(self.path)
        found: Loaded[T] = Loaded()
        backup = backup_path(self.path)
        for candidate in (self.path, backup):
            data = _read(candidate, self.what)
            if data is None:
                continue
            value, why = _parse(data, self.parse)
            if why:
                found.problems[candidate] = why
                then = "trying its backup" if candidate == self.path and os.path.lexists(backup) else fallback
                found.warnings.append(f"{candidate} is corrupt ({why})" + (f"; {then}" if then else ""))
                continue
            found.value, found.source = value, candidate
            if candidate == backup:
                found.warnings.append(f"restored {self.what} from {backup}")
            return found
        return found

    def save(self, text: str) -> None:
        """Write `text` (see the module docstring); when that fails, `StateFileError` and the file is unchanged."""
        write_atomic(self.path, text, valid=self.parse)


def write_atomic(path: Path, data: str, *, backup: bool = True, valid: Callable[[bytes], object] | None = None) -> None:
    """Write `data` to `path` atomically and keep the previous version as `.bak` (atomically too).

    With `valid`, a previous version it rejects (or an empty one) is kept as `<name>.corrupt-<time>`
    instead of replacing the backup. Raises `StateFileError` naming the file that could not be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    if backup:
        _keep_previous(path, valid)
    try:
        _replace(_write_temp(path, data.encode("utf-8")), path)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    with contextlib.suppress(OSError):  # make the renames durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_leftovers(path: Path) -> list[Path]:
    """Remove temporary files of interrupted writes of `path` whose writer is gone; the removed paths."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        writer = match.group(1)  # files of earlier plughost versions carry no pid
        if writer is not None and _alive(int(writer)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    if removed:
        log.info("removed %d temporary file(s) of interrupted writes of %s", len(removed), path)
    return removed


def _keep_previous(path: Path, valid: Callable[[bytes], object] | None) -> None:
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    target = backup_path(path)
    if valid is not None:
        why = _parse(old, valid)[1]
        if why:
            target = _corrupt_path(path)
            log.warning("%s is corrupt (%s): kept as %s, the backup is left as it was", path, why, target.name)
    try:
        _replace(_write_temp(path, old), target)
    except OSError as exc:
        raise _cannot_write(path, exc, f"writing {target.name}") from exc


def _parse(data: bytes, parse: Callable[[bytes], T]) -> tuple[T | None, str]:
    """(value, "") or (None, why `data` is not a usable version)."""
    if not data.strip():
        return None, "the file is empty"
    try:
        return parse(data), ""
    except ValidationError as exc:  # pydantic's own text is long: place and message of the first errors
        return None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}".lstrip(": ") for e in exc.errors()[:3])
    except CORRUPT as exc:
        return None, re.sub(r"\s*\n\s*", "; ", str(exc).strip()) or type(exc).__name__


def _read(path: Path, what: str) -> bytes | None:
    """The file's bytes; None when it does not exist; `StateFileError` when it cannot be read."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise StateFileError(
                f"{path} is a directory, but plughost keeps {what} in a file of that name: "
                "move the directory away and start again"
            )
        if not stat.S_ISREG(mode):
            raise StateFileError(f"{path} is not a regular file; plughost keeps {what} there: move it away")
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path.parent)
        raise StateFileError(
            f"{blocker} is a file, but plughost keeps {what} in {path}: move the file away and start again"
        ) from exc
    except OSError as exc:
        raise StateFileError(
            f"cannot read {path} ({what}): {exc.strerror or exc}; fix it or move it away and start again"
        ) from exc


def _write_temp(path: Path, data: bytes) -> Path:
    """A new temporary file beside `path` holding `data`, flushed to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, flags, 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _replace(temp: Path, target: Path) -> None:
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _corrupt_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while os.path.lexists(target):
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return target


def _cannot_write(path: Path, exc: OSError, step: str = "") -> StateFileError:
    detail = exc.strerror or str(exc)
    culprit = exc.filename if isinstance(exc.filename, str) else None
    if step:
        detail += f" ({step})"
    elif culprit and culprit != str(path) and not Path(culprit).name.endswith(".tmp"):
        detail += f" ({culprit})"  # e.g. a parent that is a file
    return StateFileError(f"cannot write {path}: {detail}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
