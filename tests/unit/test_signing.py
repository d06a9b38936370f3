from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from broker.errors import ConfigError, DecryptionError, VerificationError
from broker.wire.signing import (
    EncryptionKey,
    SealPublicKey,
    SigningKey,
    VerifyKey,
    aead_decrypt,
    aead_encrypt,
    hkdf_sha256,
    key_id_of,
    random_bytes,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "rfc8032-ed25519.json").read_text())["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"msg-{len(v['message']) // 2}-bytes")
def test_rfc8032_vectors(v: dict[str, str]) -> None:
    key = SigningKey.from_seed(bytes.fromhex(v["secret_key"]))
    assert key.public.raw.hex() == v["public_key"]
    message, signature = bytes.fromhex(v["message"]), bytes.fromhex(v["signature"])
    assert key.sign(message) == signature
    VerifyKey.from_raw(bytes.fromhex(v["public_key"])).verify(signature, message)


def test_any_changed_bit_fails_with_one_error_type() -> None:
    key = SigningKey.generate()
    data = b"op7 signed bytes"
    sig = key.sign(data)
    for i in range(len(sig)):
        bad = bytearray(sig)
        bad[i] ^= 0x80
        with pytest.raises(VerificationError):
            key.public.verify(bytes(bad), data)
    with pytest.raises(VerificationError):
        key.public.verify(sig, data + b"\x00")
    with pytest.raises(VerificationError):
        SigningKey.generate().public.verify(sig, data)


def test_pem_round_trip_with_and_without_passphrase() -> None:
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.to_pem()).public == key.public
    encrypted = key.to_pem(b"correct horse")
    assert b"ENCRYPTED" in encrypted
    assert SigningKey.from_pem(encrypted, b"correct horse").public == key.public
    with pytest.raises(ConfigError, match="wrong passphrase"):
        SigningKey.from_pem(encrypted, b"wrong")
    with pytest.raises(ConfigError):
        SigningKey.from_pem(encrypted)
    with pytest.raises(ConfigError, match="not a PEM"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_repr_never_shows_key_material() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    pem = key.to_pem().decode()
    body = "".join(pem.splitlines()[1:-1])
    assert body not in repr(key) and bytes(range(32)).hex() not in repr(key)
    assert key.public.key_id.hex() in repr(key)


@pytest.mark.parametrize(
    ("kind", "other", "algorithm"), [(SigningKey, EncryptionKey, "Ed25519"), (EncryptionKey, SigningKey, "X25519")]
)
def test_both_key_types_share_seed_pem_and_repr(
    kind: type[SigningKey | EncryptionKey], other: type[SigningKey | EncryptionKey], algorithm: str
) -> None:
    key = kind.from_seed(bytes(range(32)))
    assert kind.from_seed(bytes(range(32))).public == key.public
    assert kind.from_pem(key.to_pem(b"pw"), b"pw").public == key.public
    assert repr(key) == f"{kind.__name__}(key_id={key.public.key_id.hex()})"
    with pytest.raises(ConfigError, match=f"not an {algorithm} key"):
        kind.from_pem(other.generate().to_pem())


def test_key_id_is_sha256_prefix_of_raw_public_key() -> None:
    raw = bytes.fromhex(VECTORS[0]["public_key"])
    import hashlib

    assert key_id_of(raw) == hashlib.sha256(raw).digest()[:8]


@pytest.mark.parametrize("text", ["not base64!", "AAAA"])
def test_bad_public_keys_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        VerifyKey.from_b64(text)


# RFC 7748 section 5: u-coordinates of small order (and non-canonical encodings of them). A shared secret with any of
# them is all zeros, whatever the private key: it must never become a key-encryption key.
_P = 2**255 - 19
LOW_ORDER_POINTS = {
    "0": bytes(32),
    "1": (1).to_bytes(32, "little"),
    "order 8": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    "order 8 (other)": bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    "p - 1": (_P - 1).to_bytes(32, "little"),
    "p": _P.to_bytes(32, "little"),
    "p + 1": (_P + 1).to_bytes(32, "little"),
}


@pytest.mark.parametrize("point", LOW_ORDER_POINTS.values(), ids=LOW_ORDER_POINTS.keys())
def test_agreement_with_a_low_order_point_is_refused(point: bytes) -> None:
    with pytest.raises(DecryptionError) as info:
        EncryptionKey.generate().agree(SealPublicKey.from_raw(point))
    assert str(info.value) == "key agreement failed"
    assert info.value.reason == "cannot-decrypt"


def test_agreement_is_symmetric() -> None:
    a, b = EncryptionKey.generate(), EncryptionKey.generate()
    shared = a.agree(b.public)
    assert shared == b.agree(a.public) and len(shared) == 32 and shared != bytes(32)


def test_a_bad_signature_is_one_error_with_one_reason() -> None:
    key = SigningKey.generate()
    for signature in (bytes(64), b"short", key.sign(b"other")):
        with pytest.raises(VerificationError) as info:
            key.public.verify(signature, b"data")
        assert str(info.value) == "signature does not verify"
        assert info.value.reason == "bad-signature"


def _with_junk(b64: str) -> str:
    """A key's base64 with a character outside the alphabet in it: a lenient decoder would skip it."""
    return b64[:10] + "*" + b64[10:]


@pytest.mark.parametrize(
    ("load", "key", "message"),
    [
        (VerifyKey.from_b64, SigningKey.generate().public, "public key is not valid base64"),
        (SealPublicKey.from_b64, EncryptionKey.generate().public, "encryption key is not valid base64"),
    ],
)
def test_public_keys_in_base64_are_read_strictly(load: Any, key: Any, message: str) -> None:
    assert load(key.b64) == key
    for text in (_with_junk(key.b64), key.b64 + "\n" + key.b64, "not base64!"):
        with pytest.raises(ConfigError) as info:
            load(text)
        assert str(info.value) == message


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_public_keys_have_32_bytes(size: int) -> None:
    raw = bytes(range(size))
    with pytest.raises(ConfigError) as info:
        SealPublicKey.from_raw(raw)
    assert str(info.value) == f"an X25519 public key has 32 bytes, not {size}"
    with pytest.raises(ConfigError) as info:
        VerifyKey.from_b64(base64.b64encode(raw).decode())
    assert str(info.value) == f"an Ed25519 public key has 32 bytes, not {size}"
    with pytest.raises(ConfigError) as info:
        VerifyKey.from_raw(raw)
    assert str(info.value).startswith("not an Ed25519 public key: ")


def test_hkdf_sha256_rfc5869_test_case_1() -> None:
    ikm, salt, info = bytes([0x0B] * 22), bytes(range(13)), bytes(range(0xF0, 0xFA))
    okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    assert hkdf_sha256(ikm, salt, info, length=42).hex() == okm
    assert hkdf_sha256(ikm, salt, info).hex() == okm[:64]  # 32 bytes unless told


def test_aes_gcm_binds_key_nonce_and_associated_data() -> None:
    key, nonce = bytes(range(32)), bytes(range(12))
    sealed = aead_encrypt(key, nonce, b"plaintext", b"aad")
    assert len(sealed) == len(b"plaintext") + 16
    assert aead_decrypt(key, nonce, sealed, b"aad") == b"plaintext"
    for args in ((bytes(32), nonce, sealed, b"aad"), (key, bytes(12), sealed, b"aad"), (key, nonce, sealed, b"")):
        with pytest.raises(DecryptionError) as info:
            aead_decrypt(*args)
        assert str(info.value) == "sealed content does not decrypt"
        assert info.value.reason == "cannot-decrypt"


def test_random_bytes_are_fresh() -> None:
    assert len(random_bytes(12)) == 12
    assert random_bytes(32) != random_bytes(32)


def test_private_key_errors_name_the_problem() -> None:
    encrypted = SigningKey.generate().to_pem(b"pw")
    with pytest.raises(ConfigError) as info:
        SigningKey.from_pem(encrypted, b"wrong")
    assert str(info.value) == "private key: not a PEM private key, or wrong passphrase"
    with pytest.raises(ConfigError) as info:
        SigningKey.from_pem(encrypted)
    assert str(info.value).startswith("private key: ") and len(str(info.value)) > len("private key: ")
