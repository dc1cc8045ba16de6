"""AutoMTLS for go-plugin plugins through an OpenSSL-backed bridge.

go-plugin's AutoMTLS: the host passes its client certificate in `PLUGIN_CLIENT_CERT`; the plugin
generates an ECDSA P-521 server certificate, requires the client's certificate and returns its
own (base64 DER) in the handshake. grpcio's TLS stack cannot complete that handshake, so the host
connects gRPC in plaintext to a private unix socket and this bridge carries every connection over
Python's `ssl` (OpenSSL, ALPN `h2`) to the plugin, verifying the plugin's certificate exactly.

Needs the `cryptography` package to create the client certificate (`pip install plughost[mtls]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plughost.runtime.goplugin.handshake import HandshakeInfo
from plughost.runtime.rundir import host_socket_dir
from plughost.sdk.tasks import TaskOwner

PUMP_CHUNK = 65536


@dataclass(frozen=True)
class ClientIdentity:
    """The host's certificate and key for one plugin (PEM)."""

    cert_pem: str
    key_pem: str

    @classmethod
    def generate(cls, valid_days: int = 365) -> ClientIdentity:
        """A fresh self-signed ECDSA certificate in go-plugin's shape (CN/SAN localhost, CA, client+server auth)."""
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        except ImportError as exc:
            raise RuntimeError("auto_mtls needs the 'cryptography' package: pip install 'plughost[mtls]'") from exc
        key = ec.generate_private_key(ec.SECP521R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "plughost"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=30))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(key, hashes.SHA512())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return cls(cert_pem, key_pem)


def client_context(identity: ClientIdentity, server_cert_der: bytes) -> ssl.SSLContext:
    """TLS ≥ 1.2, our certificate, trust exactly the plugin's certificate (checked for the name
    the connection gives), ALPN h2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=server_cert_der)
    context.check_hostname = True
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="plughost-mtls-") as tmp:
        cert_file, key_file = Path(tmp) / "client.crt", Path(tmp) / "client.key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(identity.key_pem)
        cert_file.write_text(identity.cert_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


@dataclass
class TlsBridge:
    """A private unix socket whose connections are carried over TLS to the plugin."""

    target: str
    server: asyncio.Server
    path: Path
    connections: TaskOwner

    async def close(self) -> None:
        self.server.close()
        await self.connections.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1.0)
        with contextlib.suppress(OSError):
            self.path.unlink()


async def start_bridge(
    handshake: HandshakeInfo,
    identity: ClientIdentity,
    socket_dir: Path | None = None,
    *,
    tasks: TaskOwner | None = None,
    server_name: str = "localhost",
) -> TlsBridge:
    """Listen on a private unix socket (in the host's 0700 socket directory) and carry each
    connection over TLS to the plugin; each carried connection is a task of `tasks` (the bridge's
    own owner when None), ended by `close`. The plugin's certificate must name `server_name`."""
    if handshake.server_cert_der is None:
        raise ValueError("the plugin sent no server certificate")
    context = client_context(identity, handshake.server_cert_der)
    path = (socket_dir or host_socket_dir(None)) / f"bridge{secrets.token_hex(6)}"
    connections = tasks if tasks is not None else TaskOwner("mtls bridge")

    async def open_upstream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if handshake.network == "unix":
            return await asyncio.open_unix_connection(handshake.address, ssl=context, server_hostname=server_name)
        host, _, port = handshake.address.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port), ssl=context, server_hostname=server_name)

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await open_upstream()
        except (OSError, ssl.SSLError):
            writer.close()
            return
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pump(reader, up_writer))
                group.create_task(_pump(up_reader, writer))
        except* (OSError, ssl.SSLError, ConnectionError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            connections.spawn(carry(reader, writer), name="mtls-bridge")
        except RuntimeError:  # the bridge is closing
            writer.close()

    server = await asyncio.start_unix_server(on_connection, path=str(path))
    os.chmod(path, 0o600)
    return TlsBridge(f"unix:{path}", server, path, connections)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await reader.read(PUMP_CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
