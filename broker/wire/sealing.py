"""Sealed payloads: encrypted once, readable by the addressed recipients only, verifiable by anyone.

Construction (docs/PROTOCOL.md, section 10):

- a random 32-byte content key ``CEK`` and 12-byte nonce; one ephemeral X25519 key pair ``(e, E)`` per message;
- for each recipient ``R`` (node id ``r``, X25519 key ``P``): ``KEK = HKDF-SHA256(ikm = X25519(e, P),
  salt = E || P, info = "op7 seal v1" 0x00 || message_id || 0x00 || r)`` and
  ``wrapped = AES-256-GCM(KEK, nonce = 12 zero bytes, CEK, aad = empty)`` (each KEK is used once);
- the payload field carries ``AES-256-GCM(CEK, nonce, Avro payload, aad = frame bytes up to the end of the
  header)``, so the sender, key id and the whole header (recipients, case, handling) are authenticated;
- the sender then signs the frame as usual: the signature covers the ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.errors import DecryptionError
from broker.models.envelope import Envelope
from broker.wire.signing import EncryptionKey, SealPublicKey, aead_decrypt, aead_encrypt, hkdf_sha256, random_bytes

__all__ = ["Opener", "SealPlan", "decrypt_payload", "plan_seal"]

_INFO = b"op7 seal v1\x00"
_WRAP_NONCE = bytes(12)


def _kek(shared: bytes, ephemeral: bytes, recipient_key: bytes, message_id: str, recipient: str) -> bytes:
    info = _INFO + message_id.encode("ascii") + b"\x00" + recipient.encode("ascii")
    return hkdf_sha256(shared, salt=ephemeral + recipient_key, info=info)


@dataclass(frozen=True)
class SealPlan:
    """The keys of one sealed message: the header record to publish, and how to encrypt the payload."""

    header: dict[str, Any]
    _cek: bytes = field(repr=False)
    _nonce: bytes = field(repr=False)

    def encrypt(self, payload: bytes, aad: bytes) -> bytes:
        return aead_encrypt(self._cek, self._nonce, payload, aad)


def plan_seal(
    message_id: str, recipients: Mapping[str, SealPublicKey], randomness: Callable[[int], bytes] = random_bytes
) -> SealPlan:
    """Draw a content key and wrap it for every recipient (``randomness`` is replaced only for test vectors)."""
    cek, nonce = randomness(32), randomness(12)
    ephemeral = EncryptionKey.from_seed(randomness(32))
    wraps = []
    for recipient, key in sorted(recipients.items()):
        kek = _kek(ephemeral.agree(key), ephemeral.public.raw, key.raw, message_id, recipient)
        wraps.append(
            {
                "recipient": recipient,
                "key_id": key.key_id.hex(),
                "wrapped_key": aead_encrypt(kek, _WRAP_NONCE, cek, b""),
            }
        )
    header = {"ephemeral_key": ephemeral.public.raw, "nonce": nonce, "wraps": wraps}
    return SealPlan(header, cek, nonce)


class Opener:
    """A node's ability to open what was sealed to it: its node id and its X25519 keys (current and past)."""

    def __init__(self, node_id: str, keys: list[EncryptionKey]) -> None:
        self.node_id = node_id
        self._keys = {k.public.key_id.hex(): k for k in keys}

    def open(self, envelope: Envelope, ciphertext: bytes, aad: bytes) -> bytes:
        """The Avro payload of a sealed frame; :class:`DecryptionError` if this node cannot open it."""
        return decrypt_payload(self.content_key(envelope), envelope, ciphertext, aad)

    def content_key(self, envelope: Envelope) -> bytes:
        """The content key of a sealed message addressed to this node (to forward it with permission)."""
        sealed = envelope.sealed
        assert sealed is not None
        wrap = next((w for w in sealed.wraps if w.recipient == self.node_id), None)
        if wrap is None:
            raise DecryptionError(
                f"sealed for {', '.join(w.recipient for w in sealed.wraps)}, not for {self.node_id}",
                reason="not-a-recipient",
            )
        key = self._keys.get(wrap.key_id)
        if key is None:
            raise DecryptionError(
                f"sealed to key {wrap.key_id} of {self.node_id}, which this node does not hold", reason="cannot-decrypt"
            )
        ephemeral = SealPublicKey.from_raw(sealed.ephemeral_key)
        kek = _kek(key.agree(ephemeral), ephemeral.raw, key.public.raw, envelope.message_id, self.node_id)
        return aead_decrypt(kek, _WRAP_NONCE, wrap.wrapped_key, b"")


def decrypt_payload(content_key: bytes, envelope: Envelope, ciphertext: bytes, aad: bytes) -> bytes:
    """The Avro payload of a sealed frame, given its content key."""
    assert envelope.sealed is not None
    return aead_decrypt(content_key, envelope.sealed.nonce, ciphertext, aad)
