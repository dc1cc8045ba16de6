"""`[remote]` of a manifest: a go-plugin plugin already running elsewhere, attached by address.

```toml
id = "weather"
runtime = "process"

[remote]
handshake_line = "1|1|tcp|10.0.0.5:7001|grpc|MIIB…"   # what the plugin printed when it started
address = "weather.internal:7001"                    # optional: where to reach it, if not the line's
```

Only the shape is checked here; what the values mean (a reachable address, loopback or mTLS, the
certificate) is checked when the plugin is loaded (`plughost.runtime.goplugin.remote`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class RemoteSettings(BaseModel):
    """Where a remote go-plugin plugin listens and how to trust it (see docs/process.md).

    `address` is `host:port`, `[ipv6]:port`, or `unix:/path` (an absolute path is a unix socket
    too). `handshake_line` is the plugin's go-plugin handshake line (network, address, protocol and
    its AutoMTLS server certificate); `address` overrides the line's address. `server_cert` is a
    PEM or DER file with the plugin's certificate instead of the line's; `server_name` the name the
    certificate is checked for (go-plugin's say `localhost`). `client_cert`/`client_key` replace
    the workspace's client identity (`plughost plugins remote-cert`). Paths are relative to the
    plugin directory.
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    handshake_line: str | None = None
    protocol: str = "grpc"
    server_cert: str | None = None
    server_name: str = "localhost"
    client_cert: str | None = None
    client_key: str | None = None

    @field_validator("address", "handshake_line", "server_cert", "client_cert", "client_key")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave the key out instead)")
        return value.strip() if value is not None else None

    @field_validator("protocol")
    @classmethod
    def _grpc_only(cls, value: str) -> str:
        if value != "grpc":
            raise ValueError(f"protocol '{value}' is not supported: plughost attaches go-plugin plugins over grpc")
        return value

    @model_validator(mode="after")
    def _complete(self) -> RemoteSettings:
        if self.address is None and self.handshake_line is None:
            raise ValueError('give `address = "host:port"` or the plugin\'s `handshake_line`')
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("give both `client_cert` and `client_key`, or neither (the workspace's identity)")
        return self


__all__ = ["RemoteSettings"]
