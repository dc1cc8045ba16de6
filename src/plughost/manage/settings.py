"""The `[manage]` table of `plughost.toml`: where the management server listens and how it checks callers.

```toml
[manage]
bind = "127.0.0.1:3210"     # host:port; a non-loopback address needs a key
key = "…"                   # else PLUGHOST_MANAGE_KEY, else generated into .plughost/manage.key
cors_origins = []           # browser origins allowed to call the API (off by default)
max_body_bytes = 1048576    # larger request bodies answer 413
```
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plughost.core.config import HOST_CONFIG_FILE, describe_validation_error
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.core.config import HostConfig

DEFAULT_BIND = "127.0.0.1:3210"


class ManageSettings(BaseModel):
    """Validated `[manage]` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bind: str = DEFAULT_BIND
    key: str | None = Field(default=None, min_length=16)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    log_records: int = Field(default=2000, ge=10)
    event_records: int = Field(default=2000, ge=10)
    route_timeout_s: float = Field(default=10.0, gt=0)
    failed_auth_limit: int = Field(default=10, ge=1, description="failed keys per address per minute before 429")

    @field_validator("bind")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        split_bind(value)
        return value

    @classmethod
    def from_host_config(cls, config: HostConfig) -> ManageSettings:
        """Validate the `[manage]` table the host configuration read; errors name the file and the key."""
        try:
            return _Tables.model_validate({"manage": config.manage}).manage
        except ValidationError as exc:
            raise ConfigError(f"{config.source or HOST_CONFIG_FILE}: {describe_validation_error(exc)}") from exc

    @property
    def host(self) -> str:
        return split_bind(self.bind)[0]

    @property
    def port(self) -> int:
        return split_bind(self.bind)[1]

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the server."""
        host = self.host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class _Tables(BaseModel):
    manage: ManageSettings


def split_bind(bind: str) -> tuple[str, int]:
    """`"127.0.0.1:3210"` → `("127.0.0.1", 3210)`; `"[::1]:3210"` works too. Bad input raises ValueError."""
    host, sep, port_text = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bind must be host:port (e.g. {DEFAULT_BIND}), not {bind!r}")
    return host, int(port_text)
