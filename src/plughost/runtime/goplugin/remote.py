"""Attaching to a go-plugin plugin that runs elsewhere: its address, trust, and the host's identity.

A remote plugin is reached at a TCP address or a unix socket, as go-plugin's reattach does. Over
anything but loopback the link must be mutually authenticated: go-plugin's AutoMTLS, where the
plugin was started with the host's client certificate in `PLUGIN_CLIENT_CERT` and printed its own
server certificate in its handshake line. The host's client identity is persistent, one per
workspace (`IDENTITY_FILE`, mode 0600), so that a plugin started once trusts the host after its
restarts; `plughost plugins remote-cert` prints its certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from plughost.runtime.goplugin.handshake import HandshakeError, HandshakeInfo, parse_handshake
from plughost.runtime.goplugin.mtls import ClientIdentity
from plughost.sdk.manifest_remote import RemoteSettings

IDENTITY_FILE = Path(".plughost") / "remote-client.pem"  # relative to the workspace
IDENTITY_VALID_DAYS = 3650
PROBE_READ_S = 2.0  # how long a probe waits for the server's first bytes (a refused client certificate)
ADDRESS_FORMS = "host:port, [ipv6]:port or unix:/path/to/socket"
CLIENT_CERT_REFUSED = (
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_DECRYPT_ERROR",
)


class RemoteError(RuntimeError):
    """A remote plugin cannot be attached; the message says why, in one line."""


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote plugin listens and the certificate it must present (None: plaintext)."""

    network: str  # "tcp" or "unix"
    address: str  # host:port, or the socket's path
    app_version: int
    server_cert_der: bytes | None
    server_name: str

    @property
    def display(self) -> str:
        """The address as the operator wrote it: `10.0.0.5:7001`, `unix:/run/p.sock`."""
        return self.address if self.network == "tcp" else f"unix:{self.address}"

    def handshake(self) -> HandshakeInfo:
        """The target as the handshake the host would have read from a plugin it started."""
        return HandshakeInfo(1, self.app_version, self.network, self.address, "grpc", self.server_cert_der)


def resolve_target(settings: RemoteSettings, plugin_dir: Path, app_version: int) -> RemoteTarget:
    """The target of `[remote]`; raises `RemoteError` for a malformed address or handshake line, a
    certificate that cannot be read, or a non-loopback address without mTLS."""
    network, address, cert = "", "", None
    if settings.handshake_line is not None:
        try:
            info = parse_handshake(settings.handshake_line, (app_version,))
        except HandshakeError as exc:
            raise RemoteError(f"[remote] handshake_line: {exc}") from None
        network, address, cert = info.network, info.address, info.server_cert_der
    if settings.address is not None:
        network, address = parse_address(settings.address)
    if settings.server_cert is not None:
        if cert is not None:
            raise RemoteError("[remote] gives the server certificate twice: in handshake_line and in server_cert")
        cert = read_certificate(plugin_dir / settings.server_cert)
    target = RemoteTarget(network, address, app_version, cert, settings.server_name)
    if cert is None and not is_loopback(target):
        raise RemoteError(
            f"remote plugin at {target.display} is not on loopback: mTLS is required — start it with "
            "PLUGIN_CLIENT_CERT (see `plughost plugins remote-cert`) and paste its handshake line, or set server_cert"
        )
    return target


def parse_address(text: str) -> tuple[str, str]:
    """(`tcp`, `host:port`) or (`unix`, `/path`); `RemoteError` naming the forms otherwise."""
    if text.startswith(("unix:", "/")):
        path = text.removeprefix("unix:")
        if not path.startswith("/"):
            raise RemoteError(f"malformed address '{text}': a unix socket path must be absolute")
        return "unix", path
    host, colon, port = text.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    malformed = not colon or not bare or not port.isdigit() or any(c.isspace() for c in text)
    if malformed or (":" in bare and bare == host) or not 0 < int(port) < 65536:
        raise RemoteError(f"malformed address '{text}': expected {ADDRESS_FORMS}")
    return "tcp", text


def is_loopback(target: RemoteTarget) -> bool:
    """A unix socket, `localhost`, or a loopback IP (a host name is never assumed to be loopback)."""
    if target.network == "unix":
        return True
    host = target.address.rpartition(":")[0].strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_certificate(path: Path) -> bytes:
    """The DER bytes of a PEM or DER certificate file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RemoteError(f"cannot read the server certificate {path}: {exc.strerror or exc}") from None
    try:
        der = ssl.PEM_cert_to_DER_cert(data.decode("ascii")) if data.lstrip().startswith(b"-----BEGIN") else data
        ssl.create_default_context(cadata=der)
    except (ValueError, ssl.SSLError, UnicodeDecodeError):
        raise RemoteError(f"{path} is not a PEM or DER certificate") from None
    return der


def workspace_identity(path: Path) -> ClientIdentity:
    """The host's client identity kept at `path` (certificate and key, PEM, mode 0600), made on first use."""
    if path.exists():
        return read_identity(path, path)
    try:
        identity = ClientIdentity.generate(valid_days=IDENTITY_VALID_DAYS)
    except RuntimeError as exc:
        raise RemoteError(str(exc)) from None
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(identity.cert_pem + identity.key_pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # two hosts made one at once: the first one's stays
            os.link(temporary, path)
    except OSError as exc:
        raise RemoteError(f"cannot write the client identity {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return read_identity(path, path)


def read_identity(cert_file: Path, key_file: Path) -> ClientIdentity:
    """A client identity from PEM files (one file may hold both)."""
    try:
        cert_text, key_text = cert_file.read_text(), key_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RemoteError(f"cannot read the client identity: {exc}") from None
    cert, key = _pem_block(cert_text, "CERTIFICATE"), _pem_block(key_text, "PRIVATE KEY")
    if cert is None or key is None:
        raise RemoteError(f"{cert_file} / {key_file} do not hold a PEM certificate and private key")
    return ClientIdentity(cert, key)


def _pem_block(text: str, kind: str) -> str | None:
    start = text.find("-----BEGIN ")
    while start >= 0:
        end_marker = text.find("-----END ", start)
        if end_marker < 0:
            return None
        end = text.find("-----", end_marker + 9) + 5
        block = text[start:end]
        if block.split("\n", 1)[0].rstrip("-").endswith(kind):
            return block + "\n"
        start = text.find("-----BEGIN ", end)
    return None


async def probe(target: RemoteTarget, context: ssl.SSLContext | None, timeout: float) -> None:
    """Open one connection (TLS when `context`) to tell an unreachable remote, a wrong certificate
    and a refused client certificate apart, each with its own one-line `RemoteError`."""
    where = target.display
    server_name = target.server_name if context is not None else None
    try:
        async with asyncio.timeout(timeout):
            if target.network == "unix":
                reader, writer = await asyncio.open_unix_connection(
                    target.address, ssl=context, server_hostname=server_name
                )
            else:
                host, _, port = target.address.rpartition(":")
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"), int(port), ssl=context, server_hostname=server_name
                )
    except TimeoutError:
        raise RemoteError(f"no answer from {where} within {timeout:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise RemoteError(
            f"{where} presented another certificate than the configured one ({exc.verify_message}): "
            "paste the plugin's current handshake line or fix server_cert"
        ) from None
    except ssl.SSLError as exc:
        raise _tls_failed(where, exc) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's own text names no reason
        raise RemoteError(f"cannot reach {where}: {reason}") from None
    try:
        if context is not None:  # TLS 1.3 tells of a refused client certificate after the handshake
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(1), min(timeout, PROBE_READ_S))
    except ssl.SSLError as exc:
        raise _tls_failed(where, exc) from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _tls_failed(where: str, exc: ssl.SSLError) -> RemoteError:
    if exc.reason in CLIENT_CERT_REFUSED:
        return RemoteError(
            f"{where} refused this host's client certificate ({exc.reason}): start the plugin with "
            "PLUGIN_CLIENT_CERT set to the output of `plughost plugins remote-cert`"
        )
    return RemoteError(f"TLS with {where} failed ({exc.reason or exc}); is it serving TLS?")


__all__ = [
    "IDENTITY_FILE",
    "RemoteError",
    "RemoteTarget",
    "is_loopback",
    "parse_address",
    "probe",
    "read_certificate",
    "read_identity",
    "resolve_target",
    "workspace_identity",
]
