"""Mirai's permission vocabulary: `PermissionId` (`namespace:name`) and permittee ids.

Both are plain values that parse from and print to their text form; the permission service
(`plughost.bot.commands.permissions`) stores grants between them.

Permittee grammar and parents (a grant to a parent covers its children)::

    *                       any contact                  (parents: none)
    console                 the console                  (parents: none; `*` does not include it)
    g*  / g<id>             any group / one group        g<id> ⊂ g* ⊂ *
    u*  / u<id>             any user / one user          u<id> ⊂ u* ⊂ *
    f*  / f<id>             friends                      f<id> ⊂ f*, u<id>;  f* ⊂ u*
    s*  / s<id>             strangers                    s<id> ⊂ s*, u<id>;  s* ⊂ u*
    m*  / m<g>.* / m<g>.<u> group members                m<g>.<u> ⊂ m<g>.*, u<u>;  m<g>.* ⊂ m*, g<g>;  m* ⊂ u*
    t*  / t<g>.* / t<g>.<u> temp chats from a group      t<g>.<u> ⊂ t<g>.*, u<u>;  t<g>.* ⊂ t*, m<g>.*;  t* ⊂ u*
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from plughost.errors import PlugHostError


class PermissionSyntaxError(PlugHostError, ValueError):
    """A permission id or permittee id is not well formed."""


_PART = re.compile(r"[^\s:]+")


@dataclass(frozen=True, slots=True, order=True)
class PermissionId:
    """`namespace:name`; neither part blank, contains whitespace or `:`. Root is `*:*`."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        for part in (self.namespace, self.name):
            if not _PART.fullmatch(part):
                raise PermissionSyntaxError(
                    f"invalid permission id '{self.namespace}:{self.name}': parts must be non-blank "
                    "and contain no whitespace or ':' (example: 'my-plugin:command.greet')"
                )

    @classmethod
    def parse(cls, text: str) -> PermissionId:
        return _parse_permission(text)

    @classmethod
    def root(cls) -> PermissionId:
        return cls("*", "*")

    @property
    def is_root(self) -> bool:
        return self.namespace == "*" and self.name == "*"

    @property
    def parent(self) -> PermissionId | None:
        """`ns:name` → `ns:*` → `*:*` → None."""
        if self.is_root:
            return None
        if self.name == "*":
            return PermissionId("*", "*")
        return PermissionId(self.namespace, "*")

    def lineage(self) -> tuple[PermissionId, ...]:
        """This id and every ancestor, nearest first."""
        return _permission_lineage(self)

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"


@lru_cache(maxsize=4096)
def _parse_permission(text: str) -> PermissionId:
    namespace, sep, name = text.strip().partition(":")
    if not sep:
        raise PermissionSyntaxError(f"invalid permission id '{text}': expected 'namespace:name', e.g. 'console:*'")
    return PermissionId(namespace, name)


@lru_cache(maxsize=4096)
def _permission_lineage(perm: PermissionId) -> tuple[PermissionId, ...]:
    out = [perm]
    parent = perm.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return tuple(out)


_PERMITTEE = re.compile(r"(?P<kind>[gufstm])(?P<a>\*|\d+)(?:\.(?P<b>\*|\d+))?")


@dataclass(frozen=True, slots=True, order=True)
class PermitteeId:
    """A contact (or class of contacts) that can hold permissions; see the module docs."""

    text: str

    @classmethod
    def parse(cls, text: str) -> PermitteeId:
        return _parse_permittee(text)

    @property
    def parents(self) -> tuple[PermitteeId, ...]:
        return tuple(PermitteeId(p) for p in _parents_of(self.text))

    def lineage(self) -> tuple[PermitteeId, ...]:
        """This id and all ancestors (breadth first, no duplicates)."""
        return _permittee_lineage(self)

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=8192)
def _parse_permittee(text: str) -> PermitteeId:
    value = text.strip()
    if value in ("*", "console"):
        return PermitteeId(value)
    match = _PERMITTEE.fullmatch(value)
    bad = match is None
    if match is not None:
        kind, a, b = match["kind"], match["a"], match["b"]
        # m* / t*, m<g>.* / m<g>.<u>; never m<g> alone or m*.<u>; other kinds take no '.'
        two_part_ok = (a == "*") == (b is None)
        bad = not two_part_ok if kind in "mt" else b is not None
    if bad:
        raise PermissionSyntaxError(
            f"invalid permittee id '{text}': use *, console, g*, g<id>, u*, u<id>, f*, f<id>, s*, s<id>, "
            "m*, m<group>.*, m<group>.<user>, t*, t<group>.*, t<group>.<user>"
        )
    return PermitteeId(value)


def _parents_of(text: str) -> tuple[str, ...]:
    if text in ("*", "console"):
        return ()
    kind, rest = text[0], text[1:]
    if rest == "*":
        return ("*",) if kind in "gu" else ("u*",)
    if kind in "gu":
        return (f"{kind}*",)
    if kind in "fs":
        return (f"u{rest}", f"{kind}*")
    group, _, user = rest.partition(".")
    if user == "*":
        return ("m*", f"g{group}") if kind == "m" else ("t*", f"m{group}.*")
    return (f"{kind}{group}.*", f"u{user}")


@lru_cache(maxsize=8192)
def _permittee_lineage(pid: PermitteeId) -> tuple[PermitteeId, ...]:
    seen: dict[str, None] = {pid.text: None}
    queue = [pid.text]
    while queue:
        current = queue.pop(0)
        for parent in _parents_of(current):
            if parent not in seen:
                seen[parent] = None
                queue.append(parent)
    return tuple(PermitteeId(t) for t in seen)
