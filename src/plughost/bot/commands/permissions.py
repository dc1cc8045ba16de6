"""Mirai's permission service: grants from permittees to permissions, with inheritance, persisted.

A check passes when a grant to the permittee or any of its ancestors covers the permission or
any of its ancestors (`ns:name` ⊂ `ns:*` ⊂ `*:*`). The console holds the root permission.
Grants are stored as TOML (`permissions.toml` in the workspace), written atomically with a
`.bak` (see `plughost.core.files`). An empty or corrupt file is kept and the `.bak` is used with
a warning; with no usable version plughost refuses to start (defaults could re-grant what was
revoked). A grant or revocation takes effect only once it is written.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

import tomli_w

from plughost.core.files import PersistedFile
from plughost.errors import ConfigError, StateFileError
from plughost.sdk.permissions import PermissionId, PermissionSyntaxError, PermitteeId

log = logging.getLogger("plughost.permissions")
CONSOLE = PermitteeId.parse("console")
DECISIONS_KEPT = 65536  # remembered `has` answers; forgotten all at once beyond this (ids come from chat)
Grants = dict[PermissionId, set[PermitteeId]]
GrantListener = Callable[[bool, PermitteeId, PermissionId], None]
"""Told `(granted, permittee, permission)` after a grant (True) or a revocation (False) was saved."""


class PermissionService:
    """Registered permissions, grants, checks; `path=None` keeps everything in memory."""

    def __init__(self, path: Path | None = None, *, default_permittees: Iterable[str] = ()) -> None:
        self.path = path
        try:
            self.default_permittees = tuple(PermitteeId.parse(p) for p in default_permittees)
        except PermissionSyntaxError as exc:
            raise ConfigError(f"[permissions] default_permittees in plughost.toml: {exc}") from exc
        self._registered: dict[PermissionId, str] = {PermissionId.root(): "the root permission"}
        self._grants: dict[PermissionId, set[PermitteeId]] = {}
        self._known: set[PermissionId] = set()
        self._decisions: dict[tuple[PermitteeId, PermissionId], bool] = {}  # `has`, until the grants change
        self._unsaved = False
        self.grant_listeners: list[GrantListener] = []
        """Told of every saved grant and revocation (`plughost.cluster` shares them between hosts)."""
        if path is not None:
            self._load(path)

    # registration ----------------------------------------------------------------------------
    def register(self, permission: PermissionId, description: str = "", *, grant_defaults: bool = False) -> None:
        """Declare a permission; with `grant_defaults`, the first registration ever grants it to the defaults."""
        self._registered.setdefault(permission, description)
        if permission in self._known:
            return
        self._known.add(permission)
        if grant_defaults and self.default_permittees:
            for permittee in self.default_permittees:
                self._grants.setdefault(permission, set()).add(permittee)
            self._decisions.clear()
        self._unsaved = True

    def flush(self) -> None:
        """Persist registrations made since the last write (grants and revocations save at once).

        When the file cannot be written they stay in effect (they are made again at every start)
        and are written with the next change.
        """
        if not self._unsaved:
            return
        try:
            self._save()
        except StateFileError as exc:
            log.warning("%s; new permissions are not saved yet", exc)

    def registered(self) -> dict[PermissionId, str]:
        return dict(sorted(self._registered.items()))

    # checks ----------------------------------------------------------------------------------
    def has(self, permittee: PermitteeId, permission: PermissionId) -> bool:
        """Does `permittee` (or an ancestor) hold `permission` (or an ancestor)?"""
        if permittee == CONSOLE:
            return True
        grants = self._grants
        if not grants:
            return False
        key = (permittee, permission)
        decided = self._decisions.get(key)
        if decided is None:
            lineage = permittee.lineage()
            decided = any((holders := grants.get(perm)) and any(p in holders for p in lineage)
                          for perm in permission.lineage())  # fmt: skip
            if len(self._decisions) >= DECISIONS_KEPT:
                self._decisions.clear()
            self._decisions[key] = decided
        return decided

    # grants ----------------------------------------------------------------------------------
    def permit(self, permittee: PermitteeId, permission: PermissionId) -> bool:
        """Grant; False when it was already granted directly."""
        if permittee in self._grants.get(permission, ()):
            return False
        before = self._snapshot()
        self._grants.setdefault(permission, set()).add(permittee)
        self._known.add(permission)
        self._save_or_restore(before)
        self._tell_listeners(True, [(permittee, permission)])
        return True

    def cancel(self, permittee: PermitteeId, permission: PermissionId, *, recursive: bool = False) -> int:
        """Revoke a direct grant; `recursive` also revokes grants of every permission under it."""
        removed: list[tuple[PermitteeId, PermissionId]] = []
        before = self._snapshot()
        for perm in list(self._grants):
            if perm == permission or (recursive and permission in perm.lineage()):
                holders = self._grants[perm]
                if permittee in holders:
                    holders.discard(permittee)
                    removed.append((permittee, perm))
                if not holders:
                    del self._grants[perm]
        if removed:
            self._save_or_restore(before)
            self._tell_listeners(False, removed)
        return len(removed)

    def granted(self, permittee: PermitteeId) -> list[PermissionId]:
        """Permissions granted directly to `permittee`."""
        return sorted(p for p, holders in self._grants.items() if permittee in holders)

    def grants(self) -> dict[PermitteeId, list[PermissionId]]:
        out: dict[PermitteeId, list[PermissionId]] = {}
        for perm, holders in self._grants.items():
            for holder in holders:
                out.setdefault(holder, []).append(perm)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def _tell_listeners(self, granted: bool, pairs: list[tuple[PermitteeId, PermissionId]]) -> None:
        for listener in list(self.grant_listeners):
            for permittee, permission in pairs:
                try:
                    listener(granted, permittee, permission)
                except Exception:
                    log.exception("grant listener %r failed on %s %s", listener, permittee, permission)

    # persistence -----------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        loaded = PersistedFile(path, _parse, what="permission grants").load()
        if loaded.value is None:
            if loaded.problems:
                why = "; ".join(f"{file.name}: {problem}" for file, problem in loaded.problems.items())
                raise ConfigError(
                    f"{path}: cannot read permission grants ({why}). Fix the file or restore a good copy; "
                    "plughost did not change it"
                )
            return
        for warning in loaded.warnings:
            log.warning("%s", warning)
        self._grants, self._known = loaded.value
        self._decisions.clear()

    def _snapshot(self) -> tuple[Grants, set[PermissionId]]:
        return {perm: set(holders) for perm, holders in self._grants.items()}, set(self._known)

    def _save_or_restore(self, before: tuple[Grants, set[PermissionId]]) -> None:
        """Write the grants after a change (the answers `has` remembered are forgotten); when that
        fails, the change is undone and `StateFileError` raised."""
        self._decisions.clear()
        try:
            self._save()
        except StateFileError:
            self._grants, self._known = before
            raise

    def _save(self) -> None:
        if self.path is not None:
            data = {
                "known": sorted(str(p) for p in self._known),
                "grants": {str(holder): [str(p) for p in perms] for holder, perms in self.grants().items()},
            }
            PersistedFile(self.path, _parse, what="permission grants").save(tomli_w.dumps(data))
        self._unsaved = False


def _parse(raw: bytes) -> tuple[Grants, set[PermissionId]]:
    """Grants and known permissions of a `permissions.toml`; raises on anything malformed."""
    data = tomllib.loads(raw.decode("utf-8"))
    grants: Grants = {}
    for holder, perms in dict(data.get("grants", {})).items():
        permittee = PermitteeId.parse(holder)
        for perm in perms:
            grants.setdefault(PermissionId.parse(perm), set()).add(permittee)
    known = {PermissionId.parse(p) for p in data.get("known", [])}
    return grants, known | set(grants)
