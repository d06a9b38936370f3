"""Private key files: PEM PKCS#8 (RFC 5958), encrypted with a passphrase through PBES2 (RFC 8018) with scrypt
(RFC 7914 §7) and AES-256-CBC.

cryptography reads this standard form but writes encrypted PKCS#8 with PBKDF2-HMAC-SHA256 at 2,048 iterations only,
about a millisecond per guess on one core: the encrypted key info is written here (a fixed DER structure), and read
back with cryptography. scrypt at N = 2^15, r = 8, p = 1 takes 32 MiB of memory and about 0.15 s of one core (on a
2-core test machine) per guess, and as much for each try of an attacker. OpenSSL reads these files when its scrypt
memory limit allows more than 32 MiB (``openssl pkey`` keeps a 32 MiB limit and refuses them)."""

from __future__ import annotations

import base64
import os
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from broker.errors import ConfigError

__all__ = ["SCRYPT_LOG2_N", "SCRYPT_P", "SCRYPT_R", "Protection", "private_pem", "protection_of", "reprotected"]

#: scrypt's cost: N = 2^15 (memory 128 * r * N bytes = 32 MiB), r = 8, p = 1.
SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1

#: How a key file is kept: in clear, encrypted with a weak KDF (PBKDF2 as cryptography writes it), or with scrypt.
Protection = Literal["none", "weak", "scrypt"]

# DER of the object identifiers (tag, length, value).
_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_ENCRYPTED = b"ENCRYPTED PRIVATE KEY"


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    count = (size.bit_length() + 7) // 8
    return bytes([tag, 0x80 | count]) + size.to_bytes(count, "big") + body


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _encrypted_pkcs8(der: bytes, password: bytes) -> bytes:
    """EncryptedPrivateKeyInfo over the PKCS#8 ``der``: PBES2 with scrypt and AES-256-CBC, fresh salt and IV."""
    salt, iv, n = os.urandom(16), os.urandom(16), 1 << SCRYPT_LOG2_N
    key = Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(password)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(der) + padder.finalize()) + encryptor.finalize()
    kdf = _sequence(_SCRYPT, _sequence(_octets(salt), _integer(n), _integer(SCRYPT_R), _integer(SCRYPT_P)))
    algorithm = _sequence(_PBES2, _sequence(kdf, _sequence(_AES256_CBC, _octets(iv))))
    return _sequence(algorithm, _octets(ciphertext))


def _pem(label: bytes, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([b"-----BEGIN " + label + b"-----", *lines, b"-----END " + label + b"-----"]) + b"\n"


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey, password: bytes | None) -> bytes:
    """PEM PKCS#8: encrypted with scrypt when a password is given, else in clear."""
    if not password:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _pem(_ENCRYPTED, _encrypted_pkcs8(der, password))


def protection_of(pem: bytes) -> Protection:
    """How the key file ``pem`` is protected (it need not be valid: that is for loading to say)."""
    if b"-----BEGIN " + _ENCRYPTED not in pem:
        return "none"
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    try:
        der = base64.b64decode(body)
    except ValueError:
        return "weak"
    # The KDF's identifier comes right after the PBES2 one, within the first bytes of the structure.
    head = der[:40]
    return "scrypt" if _PBES2 in head and _SCRYPT in head else "weak"


def reprotected(pem: bytes, password: bytes) -> bytes:
    """The key file ``pem``, in clear or encrypted under ``password`` (PBKDF2 included), encrypted with scrypt under
    ``password``. ``ConfigError`` when it does not open."""
    try:
        key = serialization.load_pem_private_key(pem, None if protection_of(pem) == "none" else password)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        raise ConfigError("private key: not a PEM private key, or wrong passphrase") from None
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise ConfigError("private key: not an Ed25519 or X25519 key")
    return private_pem(key, password)
