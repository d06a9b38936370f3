"""The signed network directory: the document (bytes, files, signing), threshold signatures, versions, key windows,
rotation, revocation, permissions."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models import KidnappingAlert
from broker.models.directory import Directory, KeyEntry, Role, SignedDirectory
from broker.trust import admin
from broker.trust.directory import (
    DirectoryAnchor,
    DirectoryDocument,
    DirectoryTrust,
    keep_directory,
    restore_directory,
)
from broker.trust.store import PublicKeyCard
from broker.wire.codec import encode_datum
from broker.wire.envelope import NodeIdentity, build, open_frame
from broker.wire.schemas import default_registry
from broker.wire.signing import EncryptionKey, SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    """The directories here are issued at T0 and expire a year later: read them at T0 whatever the date."""
    clock.set(T0)


def card(node: str, key: SigningKey) -> PublicKeyCard:
    return PublicKeyCard(node, key.public, EncryptionKey.generate().public)


def genesis(*nodes: tuple[str, SigningKey], threshold: int = 2) -> SignedDirectory:
    signed = admin.create("op7-test", threshold, [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)], now=T0)
    for node, key in nodes:
        signed = admin.add_node(signed, card(node, key), "Agency", [Role.NATIONAL_NODE], ["all"], now=T0)
    return signed


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


def anchor(signed: SignedDirectory) -> DirectoryAnchor:
    return DirectoryAnchor.of(admin.read(signed))


def authority_entries(keys: list[SigningKey]) -> list[dict[str, object]]:
    """The directory data of ``keys`` as authority keys valid from T0."""
    return [KeyEntry(key_id=k.public.key_id.hex(), public_key=k.public.raw, valid_from=T0).model_dump() for k in keys]


def test_the_document_round_trips_through_bytes_and_files(tmp_path: Path) -> None:
    document = DirectoryDocument(genesis()).sign(AUTHORITIES[0])
    assert DirectoryDocument.from_bytes(document.to_bytes()) == document
    document.to_file(tmp_path / "d.json")
    assert DirectoryDocument.from_file(tmp_path / "d.json") == document
    assert json.loads((tmp_path / "d.json").read_text())["format"] == "op7-signed-directory/1"


def test_signing_adds_or_replaces_one_signature_per_key() -> None:
    draft = DirectoryDocument(genesis())
    once = draft.sign(AUTHORITIES[0])
    assert draft.signed.signatures == ()  # the document signed is left as it was
    again = once.sign(AUTHORITIES[0]).sign(AUTHORITIES[1])
    assert [s.key_id for s in again.signed.signatures] == [k.public.key_id.hex() for k in AUTHORITIES[:2]]
    assert again.signed.body == draft.signed.body


def test_verification_returns_the_body_only_for_the_anchor_network() -> None:
    draft = DirectoryDocument(genesis())
    signed = draft.sign(AUTHORITIES[0]).sign(AUTHORITIES[1])
    assert signed.verify(anchor(draft.signed), T0) == draft.directory
    with pytest.raises(VerificationError) as info:
        signed.verify(replace(anchor(draft.signed), network="other"), T0)
    assert info.value.reason == "directory-network"


def test_bad_bytes_and_bodies_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="SignedDirectory"):
        DirectoryDocument.from_bytes(b"\x07garbage")
    with pytest.raises(DecodeError, match="Directory"):
        _ = DirectoryDocument(SignedDirectory(body=b"\x00")).directory
    too_high = {**admin.read(genesis()).model_dump(), "threshold": 4}  # valid Avro, not a valid directory
    body = encode_datum(default_registry().get("op7.directory.Directory"), too_high)
    with pytest.raises(DecodeError, match=r"invalid directory: .*threshold 4 exceeds") as info:
        _ = DirectoryDocument(SignedDirectory(body=body)).directory
    assert info.value.reason == "bad-directory"


def test_threshold_of_authority_signatures() -> None:
    draft = genesis()
    base = anchor(draft)
    with pytest.raises(VerificationError, match="0 valid authority signature") as info:
        DirectoryDocument(draft).verify(base, T0)
    assert info.value.reason == "directory-signatures"
    with pytest.raises(VerificationError, match="1 valid"):
        DirectoryDocument(signed_by(draft, AUTHORITIES[0])).verify(base, T0)
    one = signed_by(draft, AUTHORITIES[0])
    with pytest.raises(ValueError, match=f"key {one.signatures[0].key_id} signs twice"):
        SignedDirectory(body=one.body, signatures=one.signatures * 2)
    twice = SignedDirectory.model_construct(body=one.body, signatures=one.signatures * 2)  # as if let through
    with pytest.raises(VerificationError, match="1 valid"):  # the same authority twice counts once
        DirectoryDocument(twice).verify(base, T0)
    assert DirectoryDocument(signed_by(draft, *AUTHORITIES[:2])).verify(base, T0).version == 1


def test_a_signature_by_a_stranger_or_over_other_bytes_does_not_count() -> None:
    draft = genesis()
    stranger = SigningKey.generate()
    with pytest.raises(VerificationError, match="1 valid"):
        DirectoryDocument(admin.sign(admin.sign(draft, stranger), AUTHORITIES[0])).verify(anchor(draft), T0)
    good = signed_by(draft, *AUTHORITIES[:2])
    tampered = SignedDirectory(body=good.body[:-1] + bytes([good.body[-1] ^ 1]), signatures=good.signatures)
    with pytest.raises(VerificationError, match="0 valid"):
        DirectoryDocument(tampered).verify(anchor(draft), T0)


def test_versions_only_move_forward() -> None:
    v1 = signed_by(genesis(), *AUTHORITIES[:2])
    trust = DirectoryTrust(anchor(v1))
    assert trust.offer(v1, T0) and trust.version == 1
    v2 = signed_by(
        admin.add_node(v1, card("ES.PN", SigningKey.generate()), "PN", [Role.NATIONAL_NODE], ["all"], now=T0),
        *AUTHORITIES[1:],
    )
    assert admin.read(v2).version == 2
    assert trust.offer(v2, T0) and trust.version == 2
    assert trust.offer(v1, T0) is False and trust.version == 2  # an older version is refused
    assert trust.offer(v2, T0) is False


def test_authorities_of_the_held_version_and_of_the_new_one_sign_it() -> None:
    new_authorities = [SigningKey.generate() for _ in range(2)]

    def replace_authorities(data: dict[str, object]) -> None:
        data["authorities"] = authority_entries(new_authorities)

    v1 = signed_by(genesis(), *AUTHORITIES[:2])
    trust = DirectoryTrust(anchor(v1))
    trust.offer(v1, T0)
    v2 = admin.edit(v1, replace_authorities, now=T0)
    with pytest.raises(VerificationError):
        trust.offer(v2, T0)  # unsigned

    by_new = signed_by(v2, *new_authorities)
    with pytest.raises(VerificationError) as info:  # the new authorities cannot appoint themselves
        trust.offer(by_new, T0)
    assert info.value.reason == "directory-signatures"
    by_old = signed_by(v2, AUTHORITIES[0], AUTHORITIES[2])
    with pytest.raises(VerificationError) as info:  # nor the outgoing ones appoint keys that never signed
        trust.offer(by_old, T0)
    assert info.value.reason == "directory-new-signatures"
    assert trust.offer(signed_by(by_old, *new_authorities), T0)
    v3 = admin.edit(signed_by(by_old, *new_authorities), lambda d: None, now=T0)
    assert trust.offer(signed_by(v3, *new_authorities), T0)


def _trust_with(signed: SignedDirectory) -> DirectoryTrust:
    trust = DirectoryTrust(anchor(signed))
    assert trust.offer(signed_by(signed, *AUTHORITIES[:2]), T0)
    return trust


def test_rotation_overlap_then_expiry(alert: KidnappingAlert) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    v1 = genesis(("FR.GN", old))
    rotated = admin.rotate_key(
        signed_by(v1, *AUTHORITIES[:2]), card("FR.GN", new), timedelta(days=7), now=T0 + timedelta(days=1)
    )
    trust = _trust_with(rotated)
    during = T0 + timedelta(days=3)
    for key in (old, new):
        _, frame = build(NodeIdentity("FR.GN", key, network="op7-test"), alert, now=during)
        assert open_frame(frame, trust).envelope.sender == "FR.GN"
    after = T0 + timedelta(days=9)
    _, frame = build(NodeIdentity("FR.GN", old, network="op7-test"), alert, now=after)
    with pytest.raises(VerificationError, match="expired") as info:
        open_frame(frame, trust)
    assert info.value.reason == "key-expired"
    _, frame = build(NodeIdentity("FR.GN", new, network="op7-test"), alert, now=after)
    open_frame(frame, trust)


def test_revocation_applies_from_its_time_on(alert: KidnappingAlert) -> None:
    key = SigningKey.generate()
    revoked_at = T0 + timedelta(days=2)
    v = admin.revoke_key(
        genesis(("FR.GN", key)), "FR.GN", key.public.key_id.hex(), "laptop stolen", at=revoked_at, now=T0
    )
    trust = _trust_with(v)
    _, before = build(NodeIdentity("FR.GN", key, network="op7-test"), alert, now=revoked_at - timedelta(seconds=1))
    open_frame(before, trust)
    _, after = build(NodeIdentity("FR.GN", key, network="op7-test"), alert, now=revoked_at)
    with pytest.raises(VerificationError, match="revoked at 2026-11-03T00:00:00Z: laptop stolen") as info:
        open_frame(after, trust)
    assert info.value.reason == "key-revoked"


def test_a_node_may_send_only_the_types_the_directory_allows(alert: KidnappingAlert) -> None:
    key = SigningKey.generate()
    signed = admin.create("op7-test", 2, [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)], now=T0)
    signed = admin.add_node(signed, card("FR.GN", key), "GN", [Role.NATIONAL_NODE], ["CaseInformation"], now=T0)
    trust = _trust_with(signed)
    _, frame = build(NodeIdentity("FR.GN", key, network="op7-test"), alert, now=T0 + timedelta(hours=1))
    with pytest.raises(VerificationError, match=r"not allowed to send op7\.alert\.KidnappingAlert") as info:
        open_frame(frame, trust)
    assert info.value.reason == "type-not-allowed"


def test_unknown_nodes_and_bad_edits() -> None:
    signed = genesis(("FR.GN", SigningKey.generate()))
    with pytest.raises(ConfigError, match="already in the directory"):
        admin.add_node(signed, card("FR.GN", SigningKey.generate()), "GN", [Role.NATIONAL_NODE], ["all"], now=T0)
    with pytest.raises(ConfigError, match=r"ES\.PN is not in the directory"):
        admin.remove_node(signed, "ES.PN", now=T0)
    with pytest.raises(ConfigError, match="threshold 4 exceeds"):
        admin.create("op7-test", 4, [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)], now=T0)
    with pytest.raises(ConfigError, match="unknown message type"):
        admin.add_node(signed, card("ES.PN", SigningKey.generate()), "PN", [Role.NATIONAL_NODE], ["Gossip"], now=T0)
    trust = _trust_with(admin.remove_node(signed, "FR.GN", now=T0))
    with pytest.raises(VerificationError) as info:
        trust.key_for("FR.GN", b"\x00" * 8)
    assert info.value.reason == "unknown-sender"


def test_a_restarted_node_verifies_the_chain_it_kept_across_an_authority_handover(tmp_path: Path) -> None:
    """The authorities of the held version sign the next; after a restart the node walks the kept chain."""
    new_authorities = [SigningKey.generate() for _ in range(2)]
    v1 = signed_by(genesis(), *AUTHORITIES[:2])
    handover = admin.edit(
        v1,
        lambda d: d.update(
            threshold=2,
            authorities=authority_entries(new_authorities),
        ),
        now=T0,
    )
    v2 = signed_by(handover, *AUTHORITIES[1:], *new_authorities)  # by the outgoing and the incoming authorities
    v3 = signed_by(admin.edit(v2, lambda d: None, now=T0), *new_authorities)
    trust = DirectoryTrust(anchor(v1))
    for version in (v1, v2, v3):
        assert trust.offer(version, T0)
        keep_directory(tmp_path, trust)
    restarted = DirectoryTrust(anchor(v1))
    restore_directory(tmp_path, restarted, T0)
    assert restarted.version == 3
    # The retired authorities can no longer sign anything the node accepts.
    v4_by_old = signed_by(admin.edit(v3, lambda d: None, now=T0), *AUTHORITIES[:2])
    with pytest.raises(VerificationError):
        restarted.offer(v4_by_old, T0)


def test_one_authority_key_never_counts_twice() -> None:
    key = AUTHORITIES[0]
    entry = {"key_id": key.public.key_id.hex(), "public_key": key.public.raw, "valid_from": T0}
    with pytest.raises(ValueError, match="listed twice"):
        Directory.model_validate(
            {"network": "op7-test", "version": 1, "issued_at": T0, "threshold": 2, "authorities": [entry, entry]}
        )
    with pytest.raises(ValueError, match="is not the key id of its public key"):
        KeyEntry.model_validate({**entry, "key_id": "00" * 8})
