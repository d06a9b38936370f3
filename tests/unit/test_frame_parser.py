"""Negative tests of the frame parser and the checks around it (docs/PROTOCOL.md section 4.2): every malformed input
is refused with a MessageError naming its reason, at the exact boundary, never with another exception."""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any

import pytest

from broker.errors import ConfigError, DecodeError, FrameError, MessageError, VerificationError
from broker.models import KidnappingAlert, Message
from broker.trust.store import TrustStore
from broker.wire import envelope as wire
from broker.wire.envelope import (
    MAX_FRAME_SIZE,
    NodeIdentity,
    build,
    build_batch,
    open_frame,
    parse_frame,
    read_header,
    verify_frame,
    write_header,
)
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example, now

U32, U16 = struct.Struct(">I"), struct.Struct(">H")
KEY_ID = b"\x01" * 8


def frame_of(
    *,
    sender: bytes = b"FR.GN",
    header: bytes = b"h",
    payload: bytes = b"p",
    block: bytes = b"s" * 64,
    scheme: int = 1,
    version: int = 1,
) -> bytes:
    """A frame of the right shape with these fields (no valid signature: for structure only)."""
    return (
        b"OP7"
        + bytes((version, scheme, len(sender)))
        + sender
        + KEY_ID
        + U32.pack(len(header))
        + header
        + U32.pack(len(payload))
        + payload
        + U16.pack(len(block))
        + block
    )


def refused(data: bytes, reason: str, match: str | None = None) -> FrameError:
    with pytest.raises(FrameError, match=match) as info:
        parse_frame(data)
    assert info.value.reason == reason
    return info.value


def resigned(frame: bytes, key: SigningKey, *, header: bytes | None = None, payload: bytes | None = None) -> bytes:
    """``frame`` with its header or payload replaced and signed again: a valid signature over bad content."""
    raw = parse_frame(frame)
    prefix = raw.signed[: len(raw.signed) - len(raw.header) - len(raw.payload) - 8]
    header = raw.header if header is None else header
    payload = raw.payload if payload is None else payload
    signed = prefix + U32.pack(len(header)) + header + U32.pack(len(payload)) + payload
    signature = key.sign(signed)
    return signed + U16.pack(len(signature)) + signature


def test_a_well_formed_frame_splits_into_its_fields() -> None:
    raw = parse_frame(frame_of(header=b"HEAD", payload=b"PAYLOAD", scheme=2))
    assert (raw.scheme, raw.sender, raw.key_id, raw.header, raw.payload) == (2, "FR.GN", KEY_ID, b"HEAD", b"PAYLOAD")
    assert raw.signature == b"s" * 64
    assert raw.signed == frame_of(header=b"HEAD", payload=b"PAYLOAD", scheme=2)[: -64 - 2]


def test_the_size_limit_is_inclusive() -> None:
    fill = MAX_FRAME_SIZE - len(frame_of(payload=b""))
    parse_frame(frame_of(payload=b"x" * fill))  # exactly the limit
    refused(frame_of(payload=b"x" * (fill + 1)), "too-large", f"exceeds {MAX_FRAME_SIZE}")
    assert len(wire._framed(b"x" * (MAX_FRAME_SIZE - 2 - 64), b"s" * 64)) == MAX_FRAME_SIZE
    with pytest.raises(FrameError, match=f"the limit is {MAX_FRAME_SIZE}") as info:
        wire._framed(b"x" * (MAX_FRAME_SIZE - 2 - 63), b"s" * 64)
    assert info.value.reason == "too-large"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bad-magic"),
        (b"OP", "bad-magic"),
        (b"OP8\x01\x01\x05", "bad-magic"),
        (b"OP7", "truncated"),
        (b"OP7\x01\x01", "truncated"),
        (frame_of(version=0), "bad-version"),
        (frame_of(version=2), "bad-version"),
        (frame_of(scheme=0), "bad-scheme"),
        (frame_of(scheme=3), "bad-scheme"),
    ],
)
def test_the_prefix_checks_in_order(data: bytes, reason: str) -> None:
    refused(data, reason)


def test_the_sender_must_be_an_ascii_node_id() -> None:
    refused(frame_of(sender="FR.GÑ".encode()[:5]), "bad-frame", "is not ASCII")
    refused(frame_of(sender=b"fr.gn"), "bad-frame", "is not a node id")
    refused(frame_of(sender=b""), "bad-frame", "is not a node id")
    refused(frame_of(sender=b"FR.G\x00"), "bad-frame", "is not a node id")
    assert parse_frame(frame_of(sender=b"FR.A" + b"B" * 15)).sender == "FR.A" + "B" * 15  # 19 bytes, the longest


def test_a_sender_the_frame_cuts_short_is_truncated() -> None:
    data = b"OP7\x01\x01\x05FR.G"  # n = 5, four bytes left
    refused(data, "truncated", r"sender needs 5 bytes, 4 left")
    refused(data + b"N", "truncated", r"key id needs 8 bytes, 0 left")


@pytest.mark.parametrize(
    ("cut", "what"),
    [
        (11 + 7, "key id"),
        (19 + 3, "header length"),
        (23 + 0, "header needs 1 bytes"),
        (24 + 3, "payload length"),
        (28 + 0, "payload needs 1 bytes"),
        (29 + 1, "signature length"),
        (31 + 63, "signature needs 64 bytes, 63 left"),
    ],
)
def test_every_field_cut_short_is_truncated(cut: int, what: str) -> None:
    data = frame_of()
    assert len(data) == 31 + 64
    refused(data[:cut], "truncated", what)


def test_bytes_after_the_signature_are_refused() -> None:
    refused(frame_of() + b"\x00\x00", "trailing-bytes", "2 trailing bytes")


def test_every_prefix_of_a_frame_is_refused_as_a_frame_error() -> None:
    data = frame_of()
    for n in range(len(data)):
        with pytest.raises(FrameError):
            parse_frame(data[:n])


def test_a_scheme_1_signature_block_is_64_bytes(fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert) -> None:
    _, frame = build(fr, alert, now=now())
    raw = parse_frame(frame)
    for size in (63, 65, 0):
        block = (raw.signature + b"\x00")[:size]
        with pytest.raises(VerificationError, match=f"signature block of {size} bytes") as info:
            verify_frame(raw.signed + U16.pack(len(block)) + block, trust)
        assert info.value.reason == "bad-signature"


def test_a_scheme_2_block_of_the_wrong_size_is_a_bad_signature(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    """A block shorter than 72 bytes, or not 72 + 32k, is refused before any of it is read."""
    (_, frame), (_, second) = build_batch(fr, [alert, alert], now=now())
    raw = parse_frame(frame)
    assert len(raw.signature) == 72 + 32
    verify_frame(frame, trust)
    for size in (0, 63, 64, 68, 71, 72 + 31, 72 + 33):
        block = (raw.signature + b"\x00" * 40)[:size]
        with pytest.raises(VerificationError, match=f"batch signature block of {size} bytes") as info:
            verify_frame(raw.signed + U16.pack(len(block)) + block, trust)
        assert info.value.reason == "bad-signature"
    # 72 bytes (no path) is the right shape for a batch of one: refused for its proof, not its size.
    with pytest.raises(VerificationError, match=r"^batch inclusion proof does not hold$") as info:
        verify_frame(raw.signed + U16.pack(72) + raw.signature[:72], trust)
    assert info.value.reason == "bad-signature"
    verify_frame(second, trust)


def test_a_header_that_decodes_but_breaks_a_rule_is_an_invalid_header(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    env, frame = build(fr, alert, now=now())
    for change in ({"in_reply_to": "not-a-uuid"}, {"recipients": ("nobody",)}, {"network": "Not A Network"}):
        header = write_header(env.model_copy(update=change), wire.default_registry())
        with pytest.raises(DecodeError, match="invalid envelope header") as info:
            verify_frame(resigned(frame, fr.key, header=header), trust)
        assert info.value.reason == "invalid-header"
    with pytest.raises(DecodeError) as info:
        verify_frame(resigned(frame, fr.key, header=b"\x00"), trust)
    assert info.value.reason == "undecodable"


def _restating(message: Message, fr: NodeIdentity, trust: TrustStore, **header: Any) -> MessageError:
    env, frame = build(fr, message, now=now())
    data = resigned(frame, fr.key, header=write_header(env.model_copy(update=header), wire.default_registry()))
    with pytest.raises(MessageError) as info:
        open_frame(data, trust)
    return info.value


@pytest.mark.parametrize(
    "change",
    [
        {"case_id": "OTHER-CASE"},
        {"status": "Actual"},
        {"handling": {"tlp": "RED"}},
        {"languages": ("es",)},
        {"legal_basis": ({"instrument": "UNTOC"},)},
        {"expires_at": "later"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_each_restated_header_field_must_equal_the_payloads(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert, change: dict[str, Any]
) -> None:
    env, _ = build(fr, alert, now=now())
    update = dict(change)
    if "expires_at" in update:
        update["expires_at"] = (alert.expires_at or now()) + timedelta(hours=1)
    if "status" in update:
        update["status"] = type(env.status)("Actual")
    if "handling" in update:
        update["handling"] = type(env.handling).model_validate(update["handling"])
    if "legal_basis" in update:
        update["legal_basis"] = ()  # the alert has none: make the payload side have one instead
        error = _restating(example("MutualLegalAssistanceRequest"), fr, trust, legal_basis=())
    else:
        error = _restating(alert, fr, trust, **update)
    assert error.reason == "inconsistent"
    assert f"header {next(iter(change))} differs" in str(error)


def test_a_type_without_a_restated_field_has_its_absent_value(fr: NodeIdentity, trust: TrustStore) -> None:
    """A NationalReport has no case_id: the header's must be null; a Receipt has no languages: empty."""
    report = example("NationalReport")
    assert "case_id" not in type(report).model_fields
    assert _restating(report, fr, trust, case_id="SOME-CASE").reason == "inconsistent"
    receipt = example("Receipt")
    assert "languages" not in type(receipt).model_fields
    assert _restating(receipt, fr, trust, languages=("en",)).reason == "inconsistent"


def test_the_header_may_carry_an_expiry_a_payload_type_lacks(fr: NodeIdentity, trust: TrustStore) -> None:
    report = example("NationalReport")
    assert "expires_at" not in type(report).model_fields
    env, frame = build(fr, report, now=now(), expires_at=now() + timedelta(days=30))
    assert open_frame(frame, trust).envelope.expires_at == env.expires_at


def test_the_issuer_must_be_the_sender(keys: dict[str, SigningKey], alert: KidnappingAlert) -> None:
    es = NodeIdentity("ES.PN", keys["ES.PN"])
    _, frame = build(es, alert, now=now())  # FR.GN's alert, signed by ES.PN
    with pytest.raises(VerificationError, match=r"issued by FR\.GN but signed by ES\.PN") as info:
        open_frame(frame, TrustStore({"ES.PN": [keys["ES.PN"].public]}))
    assert info.value.reason == "issuer-mismatch"


def test_a_message_is_sealed_to_its_recipients_exactly(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    key = EncryptionKey.generate().public
    for recipients, seal_to in [((), {}), (("ES.PN",), {}), (("ES.PN",), {"NL.NCC": key}), ((), {"ES.PN": key})]:
        with pytest.raises(ConfigError, match="sealed to each of them"):
            build(fr, alert, recipients=recipients, seal_to=seal_to, now=now())
    two = {"ES.PN": key, "NL.NCC": EncryptionKey.generate().public}
    env, _ = build(fr, alert, recipients=("NL.NCC", "ES.PN"), seal_to=two, now=now())
    assert env.sealed is not None and {w.recipient for w in env.sealed.wraps} == {"ES.PN", "NL.NCC"}


def test_the_envelope_restates_the_payloads_handling_and_expiry(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    red = type(alert.handling).model_validate({"tlp": "RED"})
    with pytest.raises(ConfigError, match="the envelope must restate it"):
        build(fr, alert, handling=red, now=now())
    with pytest.raises(ConfigError, match="carries its own expires_at"):
        build(fr, alert, expires_at=now() + timedelta(days=400), now=now())
    env, _ = build(fr, alert, handling=alert.handling, expires_at=alert.expires_at, now=now())
    assert (env.handling, env.expires_at) == (alert.handling, alert.expires_at)


def test_read_header_names_the_first_failure() -> None:
    with pytest.raises(DecodeError, match=r"op7\.Envelope") as info:
        read_header(b"")
    assert info.value.reason == "undecodable"
