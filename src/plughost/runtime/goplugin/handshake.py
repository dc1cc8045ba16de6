"""The go-plugin handshake line: `CORE|APPVER|NETWORK|ADDR|PROTOCOL[|SERVERCERT][|true]`."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

CORE_PROTOCOL_VERSION = 1
SUPPORTED_NETWORKS = ("unix", "tcp")
MIN_CERT_CHARS = 50


class HandshakeError(ValueError):
    """The handshake line is malformed or asks for something the host does not speak."""


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """What a plugin announced on its first stdout line."""

    core_version: int
    app_version: int
    network: str
    address: str
    protocol: str
    server_cert_der: bytes | None = None
    multiplex: bool = False

    @property
    def target(self) -> str:
        """The gRPC target: `unix:/path` or `host:port`."""
        return f"unix:{self.address}" if self.network == "unix" else self.address

    def line(self) -> str:
        cert = base64.b64encode(self.server_cert_der).decode().rstrip("=") if self.server_cert_der else ""
        return f"{self.core_version}|{self.app_version}|{self.network}|{self.address}|{self.protocol}|{cert}"


def parse_handshake(line: str, offered_versions: tuple[int, ...]) -> HandshakeInfo:
    """Validate one handshake line against the versions the host offered."""
    text = line.strip()
    parts = text.split("|")
    if len(parts) < 4:
        raise HandshakeError(
            f"malformed handshake line {_quote(text)}: expected CORE|APPVER|NETWORK|ADDR|PROTOCOL; "
            "is this executable a go-plugin plugin?"
        )
    try:
        core = int(parts[0])
    except ValueError:
        raise HandshakeError(f"malformed handshake line {_quote(text)}: core version is not a number") from None
    if core != CORE_PROTOCOL_VERSION:
        raise HandshakeError(
            f"plugin speaks go-plugin core protocol {core}, the host speaks {CORE_PROTOCOL_VERSION}; "
            "rebuild the plugin with a compatible go-plugin"
        )
    try:
        app = int(parts[1])
    except ValueError:
        raise HandshakeError(f"malformed handshake line {_quote(text)}: app version is not a number") from None
    if app not in offered_versions:
        offered = ",".join(str(v) for v in offered_versions)
        raise HandshakeError(
            f"plugin chose protocol version {app}, but the host offered only {offered}; "
            "set handshake.protocol_version in the manifest to the plugin's version"
        )
    network, address = parts[2], parts[3]
    if network not in SUPPORTED_NETWORKS:
        raise HandshakeError(f"plugin listens on network '{network}'; the host supports unix and tcp")
    if not address:
        raise HandshakeError(f"malformed handshake line {_quote(text)}: empty address")
    protocol = parts[4] if len(parts) > 4 and parts[4] else "netrpc"
    if protocol != "grpc":
        raise HandshakeError(
            f"plugin speaks '{protocol}'; plughost supports only the grpc protocol "
            "(netrpc is Go-only: serve the plugin with GRPCServer: plugin.DefaultGRPCServer)"
        )
    cert = parts[5] if len(parts) > 5 else ""
    der = None
    if len(cert) > MIN_CERT_CHARS:
        try:
            der = base64.b64decode(cert + "=" * (-len(cert) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise HandshakeError("the server certificate in the handshake is not valid base64") from None
    multiplex = len(parts) > 6 and parts[6] == "true"
    return HandshakeInfo(core, app, network, address, protocol, der, multiplex)


def _quote(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
