"""The bot domain's tables of `plughost.toml`: `[commands]`, `[permissions]` and `[[bots]]`.

The host configuration (`plughost.core.config.HostConfig`) keeps these tables as it read them;
`BotSettings.from_host_config` validates them here. Unknown keys are errors naming the file and
the key, as everywhere in `plughost.toml`.

`[[bots]]` has one entry per OneBot v11 connection:

```toml
[[bots]]
id = "main"
transport = "ws-reverse"          # ws-forward | ws-reverse | http
bind = "127.0.0.1:8080"           # ws-reverse and http (events in)
path = "/onebot/v11/ws"
access_token = "secret-token"
owners = [10001]

[bots.triggers]
prefixes = ["/", "#"]
bare_group = false
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plughost.core.config import HOST_CONFIG_FILE, describe_validation_error
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.core.config import HostConfig

Transport = Literal["ws-forward", "ws-reverse", "http"]
DEFAULT_PATHS: dict[str, str] = {"ws-reverse": "/onebot/v11/ws", "http": "/onebot/v11/http", "ws-forward": "/"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerConfig(_Strict):
    """Which messages count as command invocations (checked in this order)."""

    mention: bool = True
    reply: bool = True
    prefix: bool = True
    prefixes: list[str] = Field(default_factory=lambda: ["/"])
    bare_group: bool = False
    bare_private: bool = False
    silent_unknown: bool = True


class RateLimitConfig(_Strict):
    """Token bucket on outgoing sends; `sends_per_s = 0` disables it."""

    sends_per_s: float = Field(default=0.0, ge=0)
    burst: int = Field(default=5, ge=1)


class BotConfig(_Strict):
    """One OneBot v11 bot connection."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    transport: Transport
    endpoint: str | None = None  # ws-forward: ws://host:port/ ; http: API base for actions out
    bind: str | None = None  # ws-reverse / http: host:port plughost listens on
    path: str | None = None
    access_token: str | None = None
    secret: str | None = None  # http: HMAC-SHA1 key of X-Signature
    self_id: int | None = None  # optional: expected account id
    owners: list[int] = Field(default_factory=list)
    admins: list[int] = Field(default_factory=list)
    enabled: bool = True
    triggers: TriggerConfig = Field(default_factory=TriggerConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    max_in_flight: int = Field(default=256, ge=1)
    queue_size: int = Field(default=256, ge=1)
    max_body_bytes: int = Field(default=2**20, ge=1)  # http: larger event bodies are refused (413) unread
    max_nesting: int = Field(default=64, ge=2)  # events nested deeper (JSON objects/arrays) are dropped
    action_timeout_s: float = Field(default=30.0, gt=0)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_transport(self) -> BotConfig:
        if self.transport == "ws-forward" and not self.endpoint:
            raise ValueError(f"bot '{self.id}': transport ws-forward needs endpoint = \"ws://host:port/\"")
        if self.transport in ("ws-reverse", "http") and not self.bind:
            raise ValueError(f"bot '{self.id}': transport {self.transport} needs bind = \"host:port\"")
        if self.transport == "http" and not self.endpoint:
            raise ValueError(f"bot '{self.id}': transport http needs endpoint = \"http://host:port\" for actions")
        if self.bind is not None:
            host, sep, port = self.bind.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"bot '{self.id}': bind must be \"host:port\", got {self.bind!r}")
        if self.path is None:
            self.path = DEFAULT_PATHS[self.transport]
        return self

    @property
    def bind_address(self) -> tuple[str, int]:
        host, _, port = (self.bind or "").rpartition(":")
        return host, int(port)


class CommandsConfig(_Strict):
    """`[commands]`: how messages become commands and who counts as owner/admin.

    ```toml
    [commands]
    prefixes = ["/", "!"]        # longest matching prefix wins; "/" alone is not a command
    owners = [10001]
    admins = [10002]
    max_length = 4000            # longer commands are refused before they are tokenized
    max_arguments = 100
    ```
    """

    prefixes: list[str] = Field(default_factory=lambda: ["/"])
    mention_trigger: bool = True
    reply_trigger: bool = True
    bare_group: bool = False
    bare_private: bool = False
    unknown_reply_in_chat: bool = False
    owners: list[int] = Field(default_factory=list)
    admins: list[int] = Field(default_factory=list)
    help_page_size: int = Field(default=10, ge=1)
    max_length: int = Field(default=4000, ge=1)  # characters of text in one command (after the trigger)
    max_arguments: int = Field(default=100, ge=1)  # arguments after the command name


class PermissionsConfig(_Strict):
    """`[permissions]`: where grants live and who gets a new plugin command's permission when it first appears.

    `default_permittees` are granted `<plugin>:command.<name>` the first time that command is
    registered (`["*"]` = anyone in chat, Mirai-strict = `[]`). A later `/permission cancel`
    sticks: the permission is remembered as known and not granted again.
    """

    file: str = "permissions.toml"
    default_permittees: list[str] = Field(default_factory=lambda: ["*"])


def inherit_command_settings(bot: BotConfig, commands: CommandsConfig) -> BotConfig:
    """Trigger settings a bot does not set itself come from `[commands]` (prefixes, mention, reply, bare)."""
    explicit = bot.triggers.model_fields_set
    inherited = {
        "prefixes": list(commands.prefixes),
        "mention": commands.mention_trigger,
        "reply": commands.reply_trigger,
        "bare_group": commands.bare_group,
        "bare_private": commands.bare_private,
        "silent_unknown": not commands.unknown_reply_in_chat,
    }
    update = {k: v for k, v in inherited.items() if k not in explicit}
    return bot.model_copy(update={"triggers": bot.triggers.model_copy(update=update)})


class BotSettings(_Strict):
    """The bot domain's part of `plughost.toml`, validated and with the bots' inherited settings."""

    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    bots: list[BotConfig] = Field(default_factory=list)  # [[bots]]: OneBot v11 connections

    @classmethod
    def from_host_config(cls, config: HostConfig) -> BotSettings:
        """Validate the bot tables the host configuration read; errors name the file and the key.

        Bots inherit `[commands]` trigger settings they do not set; bot owners/admins are owners/admins
        for commands.
        """
        tables = {"commands": config.commands, "permissions": config.permissions, "bots": config.bots}
        try:
            settings = cls.model_validate(tables)
        except ValidationError as exc:
            raise ConfigError(f"{config.source or HOST_CONFIG_FILE}: {describe_validation_error(exc)}") from exc
        return settings.with_inherited_settings()

    def with_inherited_settings(self) -> BotSettings:
        if not self.bots:
            return self
        commands = self.commands
        owners = sorted({*commands.owners, *(o for bot in self.bots for o in bot.owners)})
        admins = sorted({*commands.admins, *(a for bot in self.bots for a in bot.admins)})
        return self.model_copy(
            update={
                "bots": [inherit_command_settings(bot, commands) for bot in self.bots],
                "commands": commands.model_copy(update={"owners": owners, "admins": admins}),
            }
        )
