"""Sealed payloads: only recipients read them; anyone with the trust source verifies who sent what to whom."""

from __future__ import annotations

import struct

import pytest

from broker.errors import ConfigError, DecryptionError, VerificationError
from broker.models import MutualLegalAssistanceRequest
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build, open_frame, parse_frame, verify_frame
from broker.wire.sealing import Opener, plan_seal
from broker.wire.signing import EncryptionKey, SigningKey, aead_encrypt
from tests.conftest import example, now

NODES = ("FR.GN", "ES.PN", "NL.NCC")


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[SigningKey, EncryptionKey]]:
    return {n: (SigningKey.generate(), EncryptionKey.generate()) for n in NODES}


@pytest.fixture
def trust(keys: dict[str, tuple[SigningKey, EncryptionKey]]) -> TrustStore:
    store = TrustStore()
    for node, (sign, enc) in keys.items():
        store.add(node, sign.public, enc.public)
    return store


@pytest.fixture
def sealed(keys: dict[str, tuple[SigningKey, EncryptionKey]]) -> tuple[MutualLegalAssistanceRequest, bytes]:
    request = example("MutualLegalAssistanceRequest")
    _, frame = build(
        NodeIdentity("FR.GN", keys["FR.GN"][0]),
        request,
        recipients=("ES.PN",),
        now=now(),
        seal_to={"ES.PN": keys["ES.PN"][1].public},
    )
    return request, frame


def test_the_addressee_opens_it(
    keys: dict[str, tuple[SigningKey, EncryptionKey]],
    trust: TrustStore,
    sealed: tuple[MutualLegalAssistanceRequest, bytes],
) -> None:
    request, frame = sealed
    opened = open_frame(frame, trust, opener=Opener("ES.PN", [keys["ES.PN"][1]]))
    assert opened.message == request
    assert opened.envelope.sealed is not None


def test_the_content_is_not_in_the_frame(sealed: tuple[MutualLegalAssistanceRequest, bytes]) -> None:
    request, frame = sealed
    assert request.facts.encode()[:40] not in frame
    assert b"+33612345678" not in frame


def test_a_third_node_cannot_open_it(
    keys: dict[str, tuple[SigningKey, EncryptionKey]],
    trust: TrustStore,
    sealed: tuple[MutualLegalAssistanceRequest, bytes],
) -> None:
    _, frame = sealed
    with pytest.raises(DecryptionError) as info:
        open_frame(frame, trust, opener=Opener("NL.NCC", [keys["NL.NCC"][1]]))
    assert info.value.reason == "not-a-recipient"
    # Even claiming to be ES.PN does not help without ES.PN's private key.
    with pytest.raises(DecryptionError) as info:
        open_frame(frame, trust, opener=Opener("ES.PN", [keys["NL.NCC"][1]]))
    assert info.value.reason == "cannot-decrypt"
    with pytest.raises(DecryptionError):
        open_frame(frame, trust)


def test_an_auditor_verifies_sender_recipients_and_time_without_reading(
    trust: TrustStore, sealed: tuple[MutualLegalAssistanceRequest, bytes]
) -> None:
    request, frame = sealed
    verified = verify_frame(frame, trust)
    assert verified.envelope.sender == "FR.GN"
    assert verified.envelope.recipients == ("ES.PN",)
    assert verified.envelope.case_id == request.case_id
    assert verified.envelope.message_type == "op7.mla.MutualLegalAssistanceRequest"


def test_tampered_ciphertext_fails_the_signature(
    trust: TrustStore, sealed: tuple[MutualLegalAssistanceRequest, bytes]
) -> None:
    _, frame = sealed
    bad = bytearray(frame)
    bad[-80] ^= 1
    with pytest.raises(VerificationError):
        verify_frame(bytes(bad), trust)


def _resign(frame: bytes, key: SigningKey, *, header: bytes | None = None, payload: bytes | None = None) -> bytes:
    raw = parse_frame(frame)
    prefix = raw.signed[: len(raw.signed) - len(raw.header) - len(raw.payload) - 8]
    header = raw.header if header is None else header
    payload = raw.payload if payload is None else payload
    signed = prefix + struct.pack(">I", len(header)) + header + struct.pack(">I", len(payload)) + payload
    return signed + struct.pack(">H", 64) + key.sign(signed)


def test_altered_then_re_signed_content_or_header_does_not_decrypt(
    keys: dict[str, tuple[SigningKey, EncryptionKey]],
    trust: TrustStore,
    sealed: tuple[MutualLegalAssistanceRequest, bytes],
) -> None:
    """The header is associated data: a sender cannot move a ciphertext under another header either."""
    _, frame = sealed
    raw = parse_frame(frame)
    opener = Opener("ES.PN", [keys["ES.PN"][1]])
    altered_payload = _resign(frame, keys["FR.GN"][0], payload=raw.payload[:-1] + bytes([raw.payload[-1] ^ 1]))
    with pytest.raises(DecryptionError, match="does not decrypt"):
        open_frame(altered_payload, trust, opener=opener)
    _, other = build(
        NodeIdentity("FR.GN", keys["FR.GN"][0]),
        example("MutualLegalAssistanceRequest"),
        recipients=("ES.PN",),
        now=now(),
        seal_to={"ES.PN": keys["ES.PN"][1].public},
    )
    swapped = _resign(frame, keys["FR.GN"][0], header=parse_frame(other).header)
    with pytest.raises(DecryptionError):
        open_frame(swapped, trust, opener=opener)


def test_sealing_needs_a_key_for_every_recipient(keys: dict[str, tuple[SigningKey, EncryptionKey]]) -> None:
    request = example("MutualLegalAssistanceRequest")
    with pytest.raises(ConfigError, match="sealed to each of them"):
        build(
            NodeIdentity("FR.GN", keys["FR.GN"][0]),
            request,
            recipients=("ES.PN", "NL.NCC"),
            now=now(),
            seal_to={"ES.PN": keys["ES.PN"][1].public},
        )


def test_several_recipients_each_open_it(keys: dict[str, tuple[SigningKey, EncryptionKey]], trust: TrustStore) -> None:
    request = example("MutualLegalAssistanceRequest")
    _, frame = build(
        NodeIdentity("FR.GN", keys["FR.GN"][0]),
        request,
        recipients=("ES.PN", "NL.NCC"),
        now=now(),
        seal_to={n: keys[n][1].public for n in ("ES.PN", "NL.NCC")},
    )
    for node in ("ES.PN", "NL.NCC"):
        assert open_frame(frame, trust, opener=Opener(node, [keys[node][1]])).message == request


def test_a_message_sealed_to_nobody_is_refused(keys: dict[str, tuple[SigningKey, EncryptionKey]]) -> None:
    """Sealed with no recipient, no one could ever read it: refused before anything is encrypted."""
    with pytest.raises(ConfigError, match=r"^a sealed message names its recipients, and is sealed to each of them$"):
        build(NodeIdentity("FR.GN", keys["FR.GN"][0]), example("KidnappingAlert"), recipients=(), now=now(), seal_to={})


def test_refusals_name_the_recipients_and_the_missing_key(
    keys: dict[str, tuple[SigningKey, EncryptionKey]], trust: TrustStore
) -> None:
    _, frame = build(
        NodeIdentity("FR.GN", keys["FR.GN"][0]),
        example("MutualLegalAssistanceRequest"),
        recipients=("NL.NCC", "ES.PN"),
        now=now(),
        seal_to={n: keys[n][1].public for n in ("ES.PN", "NL.NCC")},
    )
    with pytest.raises(DecryptionError) as info:
        open_frame(frame, trust, opener=Opener("FR.GN", [keys["FR.GN"][1]]))
    assert str(info.value) == "sealed for ES.PN, NL.NCC, not for FR.GN"
    assert info.value.reason == "not-a-recipient"
    held = EncryptionKey.generate()
    with pytest.raises(DecryptionError) as info:
        open_frame(frame, trust, opener=Opener("NL.NCC", [held]))
    key_id = keys["NL.NCC"][1].public.key_id.hex()
    assert str(info.value) == f"sealed to key {key_id} of NL.NCC, which this node does not hold"
    assert info.value.reason == "cannot-decrypt"
    # Among the keys a node holds (current and past), the one the wrap names opens it.
    assert open_frame(frame, trust, opener=Opener("NL.NCC", [held, keys["NL.NCC"][1]])).envelope.sealed is not None


def test_the_seal_plan_wraps_one_content_key_for_each_recipient_in_order(
    keys: dict[str, tuple[SigningKey, EncryptionKey]],
) -> None:
    stream = iter(range(256))
    plan = plan_seal(
        "msg-1", {n: keys[n][1].public for n in ("NL.NCC", "ES.PN")}, lambda n: bytes(next(stream) for _ in range(n))
    )
    header = plan.header
    assert header["nonce"] == bytes(range(32, 44))  # after the 32 bytes of the content key
    assert header["ephemeral_key"] == EncryptionKey.from_seed(bytes(range(44, 76))).public.raw
    assert [w["recipient"] for w in header["wraps"]] == ["ES.PN", "NL.NCC"]
    assert [w["key_id"] for w in header["wraps"]] == [keys[n][1].public.key_id.hex() for n in ("ES.PN", "NL.NCC")]
    assert all(len(w["wrapped_key"]) == 48 for w in header["wraps"])  # a 32-byte key and its tag
    assert plan.encrypt(b"payload", b"aad") == aead_encrypt(bytes(range(32)), bytes(range(32, 44)), b"payload", b"aad")
