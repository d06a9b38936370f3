from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.errors import ConfigError, VerificationError
from broker.wire.signing import EncryptionKey, SigningKey, VerifyKey, key_id_of

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
