"""Node keys, signing and verification: the only module that touches cryptography's hazmat layer.

Ed25519 (RFC 8032, pure). A key is identified by its *key id*: the first 8 bytes of SHA-256 over the
32-byte raw public key. Verification fails with one opaque :class:`~broker.errors.VerificationError`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ConfigError, VerificationError

__all__ = ["KEY_ID_SIZE", "SIGNATURE_SIZE", "SigningKey", "VerifyKey", "key_id_of"]

KEY_ID_SIZE = 8
SIGNATURE_SIZE = 64


def key_id_of(raw_public_key: bytes) -> bytes:
    """Key id: SHA-256 of the raw public key, first 8 bytes."""
    return hashlib.sha256(raw_public_key).digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key, parsed once."""

    raw: bytes
    _key: Ed25519PublicKey = field(repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        try:
            return cls(raw, Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"not an Ed25519 public key: {exc}") from exc

    @classmethod
    def from_b64(cls, text: str) -> VerifyKey:
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise ConfigError("public key is not valid base64") from exc
        if len(raw) != 32:
            raise ConfigError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls.from_raw(raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.raw)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`VerificationError` unless ``signature`` is this key's signature of ``data``."""
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            raise VerificationError("signature does not verify", reason="bad-signature") from None


class SigningKey:
    """An Ed25519 private key. Its repr never shows key material."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = VerifyKey.from_raw(raw)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.public.key_id.hex()})"

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed (test vectors only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except TypeError as exc:  # encrypted without password, or password on a clear key
            raise ConfigError(f"private key: {exc}") from None
        except (ValueError, UnsupportedAlgorithm):
            raise ConfigError("private key: not a PEM private key, or wrong passphrase") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("private key: not an Ed25519 key")
        return cls(key)

    def to_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)
