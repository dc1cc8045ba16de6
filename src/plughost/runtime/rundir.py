"""Per-host runtime directories: where the unix sockets of process plugins live.

A go-plugin executable, a worker (its gRPC and invoke-lane sockets) and the AutoMTLS bridge put
their sockets in one directory per host process, `<base>/<pid>` (mode 0700), given to plugins as
`PLUGIN_UNIX_SOCKET_DIR`. The host holds an exclusive `flock` on `<base>/<pid>/.owner` while it
runs; when a host starts it removes, with their sockets, the directories whose lock it can take
— their host is gone (killed, crashed) — and a host removes its own directory when it exits.

The base is `[process] socket_dir` when configured; else `<workspace>/.plughost/run`; when that
cannot be created, or is too long for a unix socket path (108 bytes with the final NUL), it is
`$XDG_RUNTIME_DIR/plughost`, then a private `<tempdir>/plughost-<uid>`.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from plughost.errors import ConfigError

log = logging.getLogger(__name__)

SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes, the last one NUL
SOCKET_NAME_MAX = 18  # "plugin"/"bridge" + 12 hex digits (workers, TLS bridge), "plugin" + ≤ 10 digits (go-plugin)
OWNER_FILE = ".owner"
_HOST_DIR = re.compile(r"\d+(-\d+)?")


class SocketDirError(OSError):
    """A base directory cannot hold this host's sockets (the message says why)."""


@dataclass
class _Owned:
    path: Path
    fd: int  # holds the flock while this process lives
    pid: int


_owned: dict[Path, _Owned] = {}
_guard = threading.Lock()


def fits(directory: Path) -> bool:
    """Can sockets of plugins (names up to `SOCKET_NAME_MAX` bytes) be bound in `directory`?"""
    return len(os.fsencode(directory)) + 1 + SOCKET_NAME_MAX <= SUN_PATH_MAX


def host_socket_dir(workspace: Path | None, configured: Path | None = None) -> Path:
    """This host's socket directory: under `configured` if given (a `ConfigError` when it cannot
    be used), else under the first usable default base (see the module docstring)."""
    if configured is not None:
        try:
            return owned_dir(configured)
        except OSError as exc:
            raise ConfigError(f"[process] socket_dir {configured}: {exc.strerror or exc}") from exc
    reasons = []
    for base in default_bases(workspace):
        try:
            return owned_dir(base)
        except OSError as exc:
            log.debug("no socket directory in %s: %s", base, exc.strerror or exc)
            reasons.append(f"{base}: {exc.strerror or exc}")
    raise ConfigError("no directory for plugin sockets: " + "; ".join(reasons))


def default_bases(workspace: Path | None) -> list[Path]:
    bases = [workspace / ".plughost" / "run"] if workspace is not None else []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        bases.append(Path(runtime) / "plughost")
    bases.append(Path(tempfile.gettempdir()) / f"plughost-{os.getuid()}")
    return bases


def owned_dir(base: Path) -> Path:
    """This process's directory under `base`, created (and stale siblings removed) on first use."""
    base = Path(os.path.abspath(base))
    with _guard:
        owned = _owned.get(base)
        if owned is not None and owned.pid == os.getpid():
            if owned.path.is_dir():
                return owned.path
            os.close(owned.fd)  # removed under our feet: make a new one
        owned = _create(base)
        _owned[base] = owned
        return owned.path


def remove_stale(base: Path) -> list[Path]:
    """Remove the directories under `base` whose host is gone; the removed paths."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not _HOST_DIR.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _owner_alive(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed socket directories of %d stopped host(s) from %s", len(removed), base)
    return removed


def _create(base: Path) -> _Owned:
    pid = os.getpid()
    if not fits(base / str(pid)):
        raise SocketDirError(errno.ENAMETOOLONG, f"too long for unix socket paths (at most {SUN_PATH_MAX} bytes)")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = base.stat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise SocketDirError(errno.EPERM, "not a directory owned by this user")
    lock = os.open(base / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one host at a time cleans up and creates its directory
        remove_stale(base)
        for n in range(100):
            path = base / (str(pid) if n == 0 else f"{pid}-{n}")
            if not fits(path):
                break
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:  # another host of the same pid (another pid namespace) owns it
                continue
            fd = os.open(path / OWNER_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return _Owned(path, fd, pid)
        raise SocketDirError(errno.EEXIST, "no free directory name")
    finally:
        os.close(lock)


def _owner_alive(path: Path) -> bool:
    try:
        fd = os.open(path / OWNER_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:  # its host died while creating it (creation is under the base lock)
        return False
    except OSError:  # someone else's: cannot tell, keep it
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # cannot tell: keep it
    finally:
        os.close(fd)
    return False


@atexit.register
def _remove_own() -> None:
    for owned in list(_owned.values()):
        if owned.pid != os.getpid():  # a forked child exiting: the directory is its parent's
            continue
        shutil.rmtree(owned.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(owned.fd)
    _owned.clear()
