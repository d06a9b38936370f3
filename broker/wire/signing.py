"""Keys, signing, verification and sealing primitives: with :mod:`broker.wire.keyfile` (key files), the only
modules that touch cryptography's hazmat layer.

Signing is Ed25519 (RFC 8032, pure), signed and verified with libsodium through PyNaCl (verification costs about
half of OpenSSL's through cryptography); keys are read with cryptography and written by :mod:`broker.wire.keyfile`.
Sealing uses X25519 key agreement, HKDF-SHA256 and AES-256-GCM. A key is identified by its *key id*: the first 8
bytes of SHA-256 over the 32-byte raw public key. Verification fails with one opaque
:class:`~broker.errors.VerificationError`, decryption with one :class:`~broker.errors.DecryptionError`."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, Self, TypeVar

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.exceptions import BadSignatureError as _NaclBadSignature
from nacl.exceptions import CryptoError as _NaclCryptoError
from nacl.signing import SigningKey as _NaclSigningKey
from nacl.signing import VerifyKey as _NaclVerifyKey

from broker.errors import ConfigError, DecryptionError, VerificationError
from broker.wire.keyfile import private_pem

__all__ = [
    "KEY_ID_SIZE",
    "SIGNATURE_SIZE",
    "EncryptionKey",
    "SealPublicKey",
    "SigningKey",
    "VerifyKey",
    "aead_decrypt",
    "aead_encrypt",
    "hkdf_sha256",
    "key_id_of",
    "random_bytes",
]

KEY_ID_SIZE = 8
SIGNATURE_SIZE = 64


def key_id_of(raw_public_key: bytes) -> bytes:
    """Key id: SHA-256 of the raw public key, first 8 bytes."""
    return hashlib.sha256(raw_public_key).digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class _PublicKey:
    """What both public key types share: the 32 raw bytes, shown as base64 and named by their key id."""

    raw: bytes

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @cached_property
    def key_id(self) -> bytes:
        """Worked out once per key: a node writes it in every frame it signs."""
        return key_id_of(self.raw)


@dataclass(frozen=True)
class VerifyKey(_PublicKey):
    """An Ed25519 public key, parsed once."""

    _key: _NaclVerifyKey = field(repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        try:
            Ed25519PublicKey.from_public_bytes(raw)  # validates the encoding once, when the key is loaded
            return cls(raw, _NaclVerifyKey(raw))
        except (ValueError, UnsupportedAlgorithm, _NaclCryptoError, TypeError) as exc:
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

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`VerificationError` unless ``signature`` is this key's signature of ``data``."""
        try:
            self._key.verify(data, signature)
        except (_NaclBadSignature, _NaclCryptoError, ValueError, TypeError):
            raise VerificationError("signature does not verify", reason="bad-signature") from None


def _private_pem(key: Ed25519PrivateKey | X25519PrivateKey, password: bytes | None) -> bytes:
    """PEM PKCS#8, encrypted with scrypt when a password is given (:mod:`broker.wire.keyfile`)."""
    return private_pem(key, password)


def _load_private_pem(data: bytes, password: bytes | None) -> object:
    try:
        return serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:  # encrypted without password, or password on a clear key
        raise ConfigError(f"private key: {exc}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError("private key: not a PEM private key, or wrong passphrase") from None


@dataclass(frozen=True)
class SealPublicKey(_PublicKey):
    """An X25519 public key that messages can be sealed to."""

    @classmethod
    def from_raw(cls, raw: bytes) -> SealPublicKey:
        if len(raw) != 32:
            raise ConfigError(f"an X25519 public key has 32 bytes, not {len(raw)}")
        return cls(raw)

    @classmethod
    def from_b64(cls, text: str) -> SealPublicKey:
        try:
            return cls.from_raw(base64.b64decode(text, validate=True))
        except ValueError as exc:
            raise ConfigError("encryption key is not valid base64") from exc


PublicT = TypeVar("PublicT", VerifyKey, SealPublicKey)
KeyT = TypeVar("KeyT", Ed25519PrivateKey, X25519PrivateKey)


class _PrivateKey(Generic[KeyT, PublicT]):
    """What both private key types share: creation, PEM in and out, and a repr that never shows key material."""

    __slots__ = ("_key", "public")
    #: Set by each subclass: the cryptography key class and the public key class.
    _key_type: type[KeyT]
    _public_type: type[PublicT]

    def __init__(self, key: KeyT) -> None:
        self._key: KeyT = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public: PublicT = self._public_type.from_raw(raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_id={self.public.key_id.hex()})"

    @classmethod
    def generate(cls) -> Self:
        return cls(cls._key_type.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Self:
        """Deterministic key from a 32-byte seed (test vectors only)."""
        return cls(cls._key_type.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> Self:
        key = _load_private_pem(data, password)
        if not isinstance(key, cls._key_type):
            algorithm = cls._key_type.__name__.removesuffix("PrivateKey")  # "Ed25519", "X25519"
            raise ConfigError(f"private key: not an {algorithm} key")
        return cls(key)

    def to_pem(self, password: bytes | None = None) -> bytes:
        return _private_pem(self._key, password)


class SigningKey(_PrivateKey[Ed25519PrivateKey, VerifyKey]):
    """An Ed25519 private key. Its repr never shows key material."""

    __slots__ = ("_signer",)
    _key_type = Ed25519PrivateKey
    _public_type = VerifyKey

    def __init__(self, key: Ed25519PrivateKey) -> None:
        super().__init__(key)
        # Signing goes through libsodium: the seed is handed to PyNaCl once.
        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        self._signer = _NaclSigningKey(seed)

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data).signature


class EncryptionKey(_PrivateKey[X25519PrivateKey, SealPublicKey]):
    """An X25519 private key: opens what was sealed to its public half. Its repr never shows key material."""

    __slots__ = ()
    _key_type = X25519PrivateKey
    _public_type = SealPublicKey

    def agree(self, peer: SealPublicKey) -> bytes:
        """X25519 shared secret with ``peer``; refuses the all-zero result of a small-order point."""
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(peer.raw))
        except ValueError:
            raise DecryptionError("key agreement failed", reason="cannot-decrypt") from None
        return shared


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF (RFC 5869) with SHA-256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM; the 16-byte tag is appended to the ciphertext."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM; any failure is one :class:`DecryptionError`."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise DecryptionError("sealed content does not decrypt", reason="cannot-decrypt") from None


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
