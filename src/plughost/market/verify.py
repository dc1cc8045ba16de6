"""Integrity: SHA-256 of archives, and ed25519 signatures of indexes.

An index's signature is detached: `<index>.sig` holds the base64 ed25519 signature of the index's
exact bytes. Checking one needs `cryptography` (`pip install 'plughost[market-signing]'`), imported
only when an index names trusted keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from plughost.market.errors import ChecksumMismatch, InvalidIndex, MarketError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHUNK = 1 << 16
SIGNING_EXTRA = "pip install 'plughost[market-signing]'"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(actual: str, expected: str, what: str) -> None:
    """Raise `ChecksumMismatch` unless the digests are equal."""
    if actual.lower() != expected.lower():
        raise ChecksumMismatch(
            f"{what}: SHA-256 is {actual}, but the index says {expected}; refused (nothing was installed)",
            detail={"expected": expected, "actual": actual},
        )


def _cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise MarketError(f"checking index signatures needs the cryptography package: {SIGNING_EXTRA}") from None


def load_public_key(text: str, name: str) -> Ed25519PublicKey:
    """A trusted key: base64 of the 32 raw bytes, or a PEM `PUBLIC KEY`."""
    _cryptography()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an ed25519 key")
            return key
        raw = base64.b64decode(text.strip(), validate=True)
        if len(raw) == 44 and raw.startswith(bytes.fromhex("302a300506032b6570032100")):  # DER SubjectPublicKeyInfo
            raw = raw[12:]
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise MarketError(f"trusted key '{name}' is not an ed25519 public key (base64 or PEM): {exc}") from None


def verify_signature(
    data: bytes, signature: bytes | None, keys: Mapping[str, str], names: Sequence[str], what: str
) -> str:
    """The name of the key in `names` whose signature `signature` is (base64 text); else `InvalidIndex`."""
    if signature is None:
        raise InvalidIndex(f"{what} must be signed by {', '.join(names)}, but it has no signature (.sig)")
    _cryptography()
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidIndex(f"{what}: its signature is not base64") from None
    for name in names:
        key = load_public_key(keys[name], name)
        try:
            key.verify(raw, data)
        except InvalidSignature:
            continue
        return name
    raise InvalidIndex(f"{what}: the signature is not valid for key(s) {', '.join(names)}; refused")


def sign(data: bytes, private_key_pem: bytes) -> str:
    """The base64 ed25519 signature of `data` (what `<index>.sig` holds)."""
    _cryptography()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MarketError(f"the signing key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MarketError("the signing key is not an ed25519 key")
    return base64.b64encode(key.sign(data)).decode()


def generate_key() -> tuple[bytes, str]:
    """A new ed25519 key: (private key as PEM, public key as base64 of its 32 bytes)."""
    _cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, base64.b64encode(public).decode()


__all__ = ["check_sha256", "generate_key", "load_public_key", "sha256_file", "sign", "verify_signature"]
