"""AES-GCM does not commit to its key (PROTOCOL.md §10): one ciphertext and tag can open, under two content keys, to
two plaintexts. Shown here on the AEAD op7 seals with, and the protocol says what it means for recipients."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from broker.wire.signing import aead_decrypt
from tests.conftest import ROOT

_R = 0xE1 << 120  # GCM's reduction polynomial, in its reflected bit order


def gf_mul(x: int, y: int) -> int:
    """Multiplication in GF(2^128) as GHASH does it (NIST SP 800-38D, algorithm 1)."""
    z, v = 0, x
    for i in range(127, -1, -1):
        if (y >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def gf_pow(x: int, n: int) -> int:
    result = 1 << 127  # the field's one, in GCM's bit order
    while n:
        if n & 1:
            result = gf_mul(result, x)
        x, n = gf_mul(x, x), n >> 1
    return result


def block(key: bytes, data: bytes) -> int:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(encryptor.update(data) + encryptor.finalize(), "big")


def ghash_terms(h: int, blocks: list[int]) -> int:
    total = 0
    for i, x in enumerate(blocks):
        total ^= gf_mul(x, gf_pow(h, len(blocks) - i))
    return total


def colliding_ciphertext(k1: bytes, k2: bytes, nonce: bytes, aad: bytes, size: int = 4) -> bytes:
    """A ciphertext of ``size`` blocks and its tag that verify under both keys: the first block is solved for."""
    assert len(aad) % 16 == 0 and len(nonce) == 12
    j0 = nonce + b"\x00\x00\x00\x01"
    h1, h2 = block(k1, bytes(16)), block(k2, bytes(16))
    e1, e2 = block(k1, j0), block(k2, j0)
    rest = [int.from_bytes(bytes([7 * i]) * 16, "big") for i in range(1, size)]
    lengths = (len(aad) * 8) << 64 | (size * 16 * 8)
    blocks = [int.from_bytes(aad[i : i + 16], "big") for i in range(0, len(aad), 16)] + [0, *rest, lengths]
    at = len(aad) // 16  # where the free block sits
    power = len(blocks) - at
    g1, g2 = ghash_terms(h1, blocks) ^ e1, ghash_terms(h2, blocks) ^ e2
    free = gf_mul(g1 ^ g2, gf_pow(gf_pow(h1, power) ^ gf_pow(h2, power), (1 << 128) - 2))
    tag = g1 ^ gf_mul(free, gf_pow(h1, power))
    ciphertext = free.to_bytes(16, "big") + b"".join(r.to_bytes(16, "big") for r in rest)
    return ciphertext + tag.to_bytes(16, "big")


def test_one_sealed_payload_can_open_to_two_plaintexts_under_two_content_keys() -> None:
    k1, k2, nonce, aad = bytes(range(32)), bytes(range(32, 64)), bytes(12), b"frame prefix, as the AAD".ljust(32)
    sealed = colliding_ciphertext(k1, k2, nonce, aad)
    first, second = aead_decrypt(k1, nonce, sealed, aad), aead_decrypt(k2, nonce, sealed, aad)
    assert first != second  # both authentic: the tag does not bind the key


def test_the_protocol_tells_recipients_what_that_means() -> None:
    text = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    sealing = text[text.index("## 10. Sealing") : text.index("## 11.")]
    assert "AES-GCM does not commit to its key" in sealing
    assert "MUST NOT take the frame's digest or message id as proof" in sealing
    assert "compare the SHA-256 of the decrypted payload" in sealing
