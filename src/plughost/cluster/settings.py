"""The `[cluster]` table of `plughost.toml`: the Redis backend for the bus and the shared state.

```toml
[cluster]
redis_url = "redis://127.0.0.1:6379/0"   # absent: everything stays in memory
prefix = "plughost"                      # of every Redis key and channel: deployments sharing a Redis
role = "both"            # "gateway" | "worker" | "both": how this node takes part in event distribution
```

Event distribution (`plughost.cluster.events`, docs/cluster.md): a `gateway` node holds the
OneBot connections and puts every incoming event on a Redis stream; `worker` nodes handle them
and send the actions back through the gateway. `both` (the default) handles its own events, no stream.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plughost.core.config import HOST_CONFIG_FILE, describe_validation_error
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.core.config import HostConfig

REDIS_SCHEMES = ("redis", "rediss", "unix")
NodeRole = Literal["gateway", "worker", "both"]


class ClusterSettings(BaseModel):
    """Validated `[cluster]` settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = None
    prefix: str = Field(default="plughost", description="prefix of every Redis key and channel")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=300)
    # event distribution (plughost.cluster.events)
    role: NodeRole = Field(default="both", description="gateway: relay; worker: handle; both: own events, no stream")
    node: str | None = Field(default=None, description="this node's name (default: the machine's host name)")
    claim_idle_ms: int = Field(default=30_000, ge=100, description="a node's unacknowledged event is taken over after")
    max_backlog: int = Field(default=10_000, ge=1, description="events waiting in the stream; more are shed")
    concurrency: int = Field(default=64, ge=1, le=10_000, description="events a worker node handles at once")
    done_ttl_s: int = Field(default=86_400, ge=60, description="how long a handled event's id is remembered")

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError(f"{redacted(value)!r} is not a Redis URL: write redis://host:port/db "
                             "(rediss:// for TLS, unix:///path.sock)")  # fmt: skip
        return value

    @field_validator("node")
    @classmethod
    def _check_node(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError(f"{value!r} is not a node name: use 1-64 letters, digits, '_', '-' or '.'")
        return value

    @model_validator(mode="after")
    def _check_role(self) -> ClusterSettings:
        if self.role != "both" and self.redis_url is None:
            raise ValueError(f"role = {self.role!r} needs redis_url (the Redis the gateway and the workers share)")
        return self

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError(f"{value!r} is not a prefix: use 1-64 letters, digits, '_', '-' or '.'")
        return value

    @classmethod
    def from_host_config(cls, config: HostConfig, *, redis_url: str | None = None) -> ClusterSettings:
        """Validate the `[cluster]` table (`redis_url` overrides it: `plughost run --cluster`);
        errors name the file and the key."""
        table = dict(config.cluster) | ({"redis_url": redis_url} if redis_url is not None else {})
        try:
            return _Tables.model_validate({"cluster": table}).cluster
        except ValidationError as exc:
            where = "--cluster" if redis_url is not None else config.source or HOST_CONFIG_FILE
            raise ConfigError(f"{where}: {describe_validation_error(exc)}") from exc


def redacted(url: str) -> str:
    """`url` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _Tables(BaseModel):
    cluster: ClusterSettings


__all__ = ["ClusterSettings", "redacted"]
