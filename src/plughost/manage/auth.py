"""The management key: where it comes from, and checking it in constant time with failures slowed down."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from plughost.core.files import write_atomic
from plughost.errors import ConfigError
from plughost.manage.settings import ManageSettings

KEY_ENV = "PLUGHOST_MANAGE_KEY"
KEY_FILE = Path(".plughost") / "manage.key"
log = logging.getLogger("plughost.manage")
FAILURE_WINDOW_S = 60.0
TRACKED_ADDRESSES = 4096


@dataclass(frozen=True)
class ManageKey:
    """The key and where it came from (`config`, `env`, `file` or `generated`)."""

    value: str
    source: str
    path: Path | None = None

    def describe(self) -> str:
        if self.path is not None:
            verb = "generated into" if self.source == "generated" else "read from"
            return f"management key {verb} {self.path}"
        return f"management key from {'[manage] key' if self.source == 'config' else KEY_ENV}"


def resolve_key(workspace: Path, settings: ManageSettings) -> ManageKey:
    """`[manage] key`, else `PLUGHOST_MANAGE_KEY`, else `.plughost/manage.key` (created, mode 0600, when missing).

    A server reachable from other machines must have a key the operator chose: binding a
    non-loopback address with only a generated key raises ConfigError.
    """
    if settings.key:
        return ManageKey(settings.key, "config")
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        if len(env) < 16:
            raise ConfigError(f"{KEY_ENV} must be at least 16 characters long")
        return ManageKey(env, "env")
    if not settings.loopback:
        raise ConfigError(
            f"the management server would listen on {settings.bind}, reachable from other machines, without a key: "
            f"set [manage] key in plughost.toml or {KEY_ENV}, or bind 127.0.0.1"
        )
    path = workspace / KEY_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise ConfigError(f"cannot read the management key {path}: {exc.strerror or exc}") from exc
    if existing is not None:
        if len(existing) < 16:  # someone wrote it: replacing it would lock them out unawares
            raise ConfigError(
                f"the management key in {path} is shorter than 16 characters: write a longer one, "
                "or delete the file to have one generated"
            )
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("the management key %s can be read by other users: chmod 600 it", path)
        return ManageKey(existing, "file", path)
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, value + "\n", backup=False)
    path.chmod(0o600)
    return ManageKey(value, "generated", path)


class KeyCheck:
    """Checks `Authorization: Bearer <key>`; an address with too many recent failures is refused (429)."""

    def __init__(self, key: str, failure_limit: int, window_s: float = FAILURE_WINDOW_S) -> None:
        self._key = key.encode()
        self._limit = failure_limit
        self._window = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0 when it may now)."""
        failures = self._recent(address)
        if failures is None or len(failures) < self._limit:
            return 0.0
        return max(0.0, failures[0] + self._window - time.monotonic())

    def check(self, address: str, authorization: str | None) -> bool:
        """True for the right key; a wrong one is counted against `address` (a missing one is no
        guess: a browser tab or a scraper without a key does not lock the address out)."""
        scheme, _, given = (authorization or "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._key)
        if not ok and authorization:
            self._count_failure(address)
        return ok

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        cutoff = time.monotonic() - self._window
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def _count_failure(self, address: str) -> None:
        failures = self._recent(address) or self._failures.setdefault(address, deque(maxlen=self._limit))
        failures.append(time.monotonic())
        self._failures.move_to_end(address)
        while len(self._failures) > TRACKED_ADDRESSES:
            self._failures.popitem(last=False)
