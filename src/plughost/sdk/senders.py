"""Who sent a command: the console or a chat contact (friend, group member, temp chat, stranger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from plughost.sdk.permissions import PermitteeId

SenderKind = Literal["console", "friend", "member", "temp", "stranger"]
GroupRole = Literal["owner", "admin", "member", ""]


@dataclass(frozen=True, slots=True)
class CommandSender:
    """The origin of a command call.

    `group_role` is the OneBot sender role inside a group (`owner`/`admin`/`member`); `event`
    is the original event (a mapping) when the command came from chat.
    """

    kind: SenderKind
    user_id: int | None = None
    group_id: int | None = None
    nickname: str = ""
    bot_id: int | None = None
    group_role: GroupRole = ""
    event: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def with_event(self, event: Mapping[str, Any] | None) -> CommandSender:
        """The same sender carrying `event` (`dataclasses.replace`, without its cost on every command)."""
        return CommandSender(self.kind, self.user_id, self.group_id, self.nickname, self.bot_id, self.group_role, event)

    @classmethod
    def console(cls) -> CommandSender:
        return cls("console", nickname="console")

    @classmethod
    def friend(cls, user_id: int, *, nickname: str = "", bot_id: int | None = None) -> CommandSender:
        return cls("friend", user_id=user_id, nickname=nickname, bot_id=bot_id)

    @classmethod
    def member(
        cls, group_id: int, user_id: int, *, role: GroupRole = "member", nickname: str = "", bot_id: int | None = None
    ) -> CommandSender:
        return cls("member", user_id=user_id, group_id=group_id, nickname=nickname, bot_id=bot_id, group_role=role)

    @classmethod
    def temp(cls, group_id: int, user_id: int, *, nickname: str = "", bot_id: int | None = None) -> CommandSender:
        return cls("temp", user_id=user_id, group_id=group_id, nickname=nickname, bot_id=bot_id)

    @classmethod
    def stranger(cls, user_id: int, *, nickname: str = "", bot_id: int | None = None) -> CommandSender:
        return cls("stranger", user_id=user_id, nickname=nickname, bot_id=bot_id)

    @property
    def is_console(self) -> bool:
        return self.kind == "console"

    @property
    def in_group(self) -> bool:
        """True for group members (the `group` scope); temp chats and friends are private."""
        return self.kind == "member"

    @property
    def permittee(self) -> PermitteeId:
        """The permittee id the permission service checks (`console`, `f1`, `m2.1`, `t2.1`, `s1`)."""
        if self.kind == "console":
            return PermitteeId.parse("console")
        if self.kind == "member":
            return PermitteeId.parse(f"m{self.group_id}.{self.user_id}")
        if self.kind == "temp":
            return PermitteeId.parse(f"t{self.group_id}.{self.user_id}")
        return PermitteeId.parse(f"{'f' if self.kind == 'friend' else 's'}{self.user_id}")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "user_id": self.user_id,
            "group_id": self.group_id,
            "nickname": self.nickname,
            "bot_id": self.bot_id,
            "group_role": self.group_role,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommandSender:
        return cls(
            kind=data.get("kind", "console"),
            user_id=data.get("user_id"),
            group_id=data.get("group_id"),
            nickname=str(data.get("nickname", "")),
            bot_id=data.get("bot_id"),
            group_role=data.get("group_role", ""),
        )
