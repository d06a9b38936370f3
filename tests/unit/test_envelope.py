from __future__ import annotations

import struct
from typing import Any

import pytest

from broker.errors import DecodeError, FrameError, MessageError, VerificationError
from broker.models import KidnappingAlert
from broker.trust.store import TrustStore
from broker.wire import codec as codec_module
from broker.wire import envelope as envelope_module
from broker.wire.envelope import NodeIdentity, build, open_frame, parse_frame
from broker.wire.signing import SigningKey
from tests.conftest import now


def test_build_then_open(fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert) -> None:
    env, frame = build(fr, alert, recipients=("ES.PN",), now=now())
    opened = open_frame(frame, trust)
    assert opened.message == alert
    assert opened.envelope == env
    assert opened.envelope.sender == "FR.GN"
    assert opened.envelope.recipients == ("ES.PN",)
    assert opened.envelope.case_id == alert.case_id
    assert opened.raw == frame


def test_frame_layout_matches_the_protocol(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    _, frame = build(fr, alert, now=now())
    assert frame[:4] == b"OP7\x01"
    assert frame[4] == 1  # Ed25519
    assert frame[5] == 5 and frame[6:11] == b"FR.GN"
    assert frame[11:19] == fr.key.public.key_id
    (h,) = struct.unpack(">I", frame[19:23])
    (p,) = struct.unpack(">I", frame[23 + h : 27 + h])
    signed_end = 27 + h + p
    assert frame[signed_end : signed_end + 2] == b"\x00\x40"
    fr.key.public.verify(frame[signed_end + 2 :], frame[:signed_end])


def test_every_single_flipped_byte_is_refused(fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert) -> None:
    _, frame = build(fr, alert, now=now())
    for i in range(len(frame)):
        bad = bytearray(frame)
        bad[i] ^= 0x01
        with pytest.raises(MessageError):
            open_frame(bytes(bad), trust)


def test_every_truncation_is_refused(fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert) -> None:
    _, frame = build(fr, alert, now=now())
    for n in range(len(frame)):
        with pytest.raises(MessageError):
            open_frame(frame[:n], trust)
    with pytest.raises(FrameError, match="trailing"):
        open_frame(frame + b"\x00", trust)


def test_altered_payload_is_refused_before_anything_is_decoded(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, frame = build(fr, alert, now=now())
    decoded: list[Any] = []
    # Headers and payloads are both decoded through the codec's decode_datum.
    monkeypatch.setattr(codec_module, "decode_datum", lambda *a, **k: decoded.append(a))
    monkeypatch.setattr(envelope_module, "decode", lambda *a, **k: decoded.append(a))
    bad = bytearray(frame)
    bad[-80] ^= 0x01  # inside the payload
    with pytest.raises(VerificationError):
        open_frame(bytes(bad), trust)
    assert decoded == []


def test_unknown_sender_is_refused(keys: dict[str, SigningKey], trust: TrustStore, alert_data: dict[str, Any]) -> None:
    stranger = NodeIdentity("MX.FGR", keys["MX.FGR"])
    alert = KidnappingAlert.model_validate({**alert_data, "issuer": {**alert_data["issuer"], "node": "MX.FGR"}})
    _, frame = build(stranger, alert, now=now())
    with pytest.raises(VerificationError) as info:
        open_frame(frame, trust)
    assert info.value.reason == "unknown-sender"


def test_signed_by_a_claiming_to_be_b_is_refused(
    keys: dict[str, SigningKey], trust: TrustStore, alert: KidnappingAlert
) -> None:
    # ES.PN signs with its own key but writes FR.GN as the sender.
    impostor = NodeIdentity("FR.GN", keys["ES.PN"])
    _, frame = build(impostor, alert, now=now())
    with pytest.raises(VerificationError) as info:
        open_frame(frame, trust)
    assert info.value.reason == "unknown-key"
    # Same, but also copying FR.GN's key id into the prefix: the signature no longer verifies.
    forged = bytearray(frame)
    forged[11:19] = keys["FR.GN"].public.key_id
    with pytest.raises(VerificationError) as info:
        open_frame(bytes(forged), trust)
    assert info.value.reason == "bad-signature"


def test_alert_issued_in_another_nodes_name_is_refused(
    keys: dict[str, SigningKey], trust: TrustStore, alert: KidnappingAlert
) -> None:
    # ES.PN signs honestly as ES.PN, but the alert says FR.GN issued it.
    _, frame = build(NodeIdentity("ES.PN", keys["ES.PN"]), alert, now=now())
    with pytest.raises(VerificationError) as info:
        open_frame(frame, trust)
    assert info.value.reason == "issuer-mismatch"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: b"XYZ" + f[3:], "bad-magic"),
        (lambda f: f[:3] + b"\x02" + f[4:], "bad-version"),
        (lambda f: f[:4] + b"\x09" + f[5:], "bad-scheme"),
    ],
)
def test_structural_errors_have_reasons(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert, mutate: Any, reason: str
) -> None:
    _, frame = build(fr, alert, now=now())
    with pytest.raises(FrameError) as info:
        parse_frame(mutate(frame))
    assert info.value.reason == reason


def test_a_signed_but_undecodable_payload_is_a_decode_error(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    # A correctly signed frame whose payload is not a KidnappingAlert: signature passes, decoding refuses.
    _, frame = build(fr, alert, now=now())
    raw = parse_frame(frame)
    signed = raw.signed[: len(raw.signed) - len(raw.payload) - 4] + struct.pack(">I", 3) + b"\x02\x41\x41"
    sig = fr.key.sign(signed)
    with pytest.raises(DecodeError):
        open_frame(signed + struct.pack(">H", len(sig)) + sig, trust)


def test_envelope_handling_cannot_contradict_the_payload(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    from broker.errors import ConfigError
    from broker.models import Handling, Tlp

    with pytest.raises(ConfigError, match="must restate"):
        build(fr, alert, handling=Handling(tlp=Tlp.CLEAR), now=now())
    env, _ = build(fr, alert, handling=alert.handling, now=now())
    assert env.handling == alert.handling


@pytest.mark.parametrize("sender", [b"", b"FR", b"fr.gn", b"FR.GN\x00", b"FR.G N"])
def test_a_sender_that_is_not_a_node_id_is_a_bad_frame(fr: NodeIdentity, alert: KidnappingAlert, sender: bytes) -> None:
    _, frame = build(fr, alert, now=now())
    altered = frame[:5] + bytes((len(sender),)) + sender + frame[11:]
    with pytest.raises(FrameError) as info:
        parse_frame(altered)
    assert info.value.reason == "bad-frame"
