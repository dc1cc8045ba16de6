"""The `[commands]` and `[permissions]` sections of `plughost.toml`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CommandsConfig(BaseModel):
    """How messages become commands and who counts as owner/admin.

    ```toml
    [commands]
    prefixes = ["/", "!"]        # longest matching prefix wins; "/" alone is not a command
    owners = [10001]
    admins = [10002]
    ```
    """

    model_config = ConfigDict(extra="forbid")

    prefixes: list[str] = Field(default_factory=lambda: ["/"])
    mention_trigger: bool = True
    reply_trigger: bool = True
    bare_group: bool = False
    bare_private: bool = False
    unknown_reply_in_chat: bool = False
    owners: list[int] = Field(default_factory=list)
    admins: list[int] = Field(default_factory=list)
    help_page_size: int = Field(default=10, ge=1)


class PermissionsConfig(BaseModel):
    """Where grants live and who gets a new plugin command's permission when it first appears.

    `default_permittees` are granted `<plugin>:command.<name>` the first time that command is
    registered (`["*"]` = anyone in chat, Mirai-strict = `[]`). A later `/permission cancel`
    sticks: the permission is remembered as known and not granted again.
    """

    model_config = ConfigDict(extra="forbid")

    file: str = "permissions.toml"
    default_permittees: list[str] = Field(default_factory=lambda: ["*"])
