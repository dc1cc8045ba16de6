"""The `[market]` table of `plughost.toml`: which indexes, which keys to trust, what limits to apply.

```toml
[market]
cache_ttl_s = 300                  # an index cached longer than this is fetched again before use
keep_versions = 3                  # previous versions kept for rollback, per plugin
pip_args = []                      # extra pip arguments, e.g. ["--index-url", "https://mirror/simple"]

[[market.indexes]]
name = "official"
url = "https://plugins.example.org/index.json"    # or a local path, relative to the workspace
priority = 10                                      # a plugin in several indexes comes from the highest
signed_by = ["official"]                           # require a signature by one of these keys

[market.trusted_keys]
official = "UuXUzrGJnEjG/nOxtmgwzhpg+qbplqalRrl9lrGmXgY="   # ed25519 public key: base64 or PEM
```
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plughost.core.config import HOST_CONFIG_FILE, describe_validation_error
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.core.config import HostConfig

INDEX_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(INDEX_NAME_PATTERN)
MiB = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexSource(_Strict):
    """One configured index."""

    name: str = Field(description="Short name: shown in listings, names the cache file.")
    url: str = Field(description="http(s):// URL, file:// URL or a path (relative to the workspace).")
    priority: int = Field(default=0, description="A plugin offered by several indexes comes from the highest.")
    signed_by: list[str] = Field(
        default_factory=list, description="Names in [market.trusted_keys]; a signature by one of them is required."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"'{value}' is not a valid index name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the index url is empty")
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme and scheme not in ("http", "https", "file"):
            raise ValueError(f"'{value}': indexes are read over http(s):// or from a file")
        return value.strip()

    @property
    def remote(self) -> bool:
        return self.url.lower().startswith(("http://", "https://"))


class MarketSettings(_Strict):
    """Validated `[market]` settings (defaults: no index, nothing signed required)."""

    indexes: list[IndexSource] = Field(default_factory=list)
    trusted_keys: dict[str, str] = Field(default_factory=dict, description="name → ed25519 public key")
    require_signatures: bool = Field(default=False, description="Refuse indexes that name no trusted key.")
    cache_ttl_s: float = Field(default=300.0, ge=0)
    keep_versions: int = Field(default=3, ge=0, le=100)
    timeout_s: float = Field(default=60.0, gt=0, description="Network timeout of one read (index or download).")
    max_index_bytes: int = Field(default=16 * MiB, ge=1024)
    max_download_bytes: int = Field(default=256 * MiB, ge=1024)
    max_unpacked_bytes: int = Field(default=1024 * MiB, ge=1024)
    max_files: int = Field(default=20_000, ge=1)
    pip_args: list[str] = Field(default_factory=list, description="Extra arguments for `pip install`.")
    pip_timeout_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _check_references(self) -> MarketSettings:
        names = [index.name for index in self.indexes]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"index name '{name}' is used twice")
        for index in self.indexes:
            unknown = [k for k in index.signed_by if k not in self.trusted_keys]
            if unknown:
                raise ValueError(f"index '{index.name}': signed_by names unknown key(s) {unknown} (see trusted_keys)")
            if self.require_signatures and not index.signed_by:
                raise ValueError(f"index '{index.name}' names no key in signed_by, and require_signatures is on")
        return self

    @classmethod
    def from_host_config(cls, config: HostConfig) -> MarketSettings:
        """Validate the `[market]` table the host configuration read; errors name the file and the key."""
        try:
            return _Tables.model_validate({"market": config.market}).market
        except ValidationError as exc:
            raise ConfigError(f"{config.source or HOST_CONFIG_FILE}: {describe_validation_error(exc)}") from exc

    def sorted_indexes(self) -> list[IndexSource]:
        """Highest priority first; equal priorities in the order of the configuration."""
        return sorted(self.indexes, key=lambda index: -index.priority)


class _Tables(BaseModel):
    market: MarketSettings


__all__ = ["IndexSource", "MarketSettings"]
