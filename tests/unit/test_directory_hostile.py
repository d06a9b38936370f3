"""Hostile directory records: signature lists padded to cost checks, one signature counted twice, signatures by
keys that are no authority. What arrives on the directory topic is untrusted until its signatures verify, and
checking them must cost at most one signature check per authority key."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from broker.clock import ManualClock
from broker.errors import DecodeError, VerificationError
from broker.models.directory import DirectorySignature, SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryDocument, DirectoryTrust
from broker.trust.store import PublicKeyCard
from broker.wire.signing import EncryptionKey, SigningKey, VerifyKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]
PADDING = 5000


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    clock.set(T0)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every Ed25519 signature check made from now on, by the raw public key it was made with."""
    made: list[bytes] = []
    real = VerifyKey.verify

    def counting(self: VerifyKey, signature: bytes, data: bytes) -> None:
        made.append(self.raw)
        real(self, signature, data)

    monkeypatch.setattr(VerifyKey, "verify", counting)
    return made


def draft() -> SignedDirectory:
    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    return admin.create("op7-test", 2, cards, now=T0)


def key_id(key: SigningKey) -> str:
    return key.public.key_id.hex()


def forged(key: str) -> DirectorySignature:
    return DirectorySignature(key_id=key, signature=b"\x01" * 64)


def padded(signed: SignedDirectory, signatures: list[DirectorySignature]) -> SignedDirectory:
    """``signed`` with ``signatures`` as they would arrive if nothing refused them when read."""
    return SignedDirectory.model_construct(body=signed.body, signatures=tuple(signatures))


def test_a_record_padded_with_thousands_of_signatures_is_refused_before_any_check(checks: list[bytes]) -> None:
    body = draft()
    genuine = admin.sign(admin.sign(body, AUTHORITIES[0]), AUTHORITIES[1])
    strangers = [forged(os.urandom(8).hex()) for _ in range(PADDING)]
    record = DirectoryDocument(padded(body, [*genuine.signatures, *strangers])).to_bytes()
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(body)))
    started = time.perf_counter()
    with pytest.raises(VerificationError) as info:
        trust.offer(DirectoryDocument.from_bytes(record).signed, T0)
    assert time.perf_counter() - started < 2.0
    assert info.value.reason == "directory-too-many-signatures"
    assert f"it carries {PADDING + 2} signatures, more than the 3 authority keys that may sign it" in str(info.value)
    assert checks == []
    assert trust.directory is None


def test_the_cap_counts_the_authorities_of_the_held_version_and_of_the_new_one_together(checks: list[bytes]) -> None:
    # A handover to three new keys is signed by two outgoing and two incoming authorities: 4 entries of 6 keys.
    v1 = admin.sign(admin.sign(draft(), AUTHORITIES[0]), AUTHORITIES[1])
    incoming = [SigningKey.generate() for _ in range(3)]
    cards = [PublicKeyCard(f"NL.NB{i}", k.public, None) for i, k in enumerate(incoming)]
    v2 = admin.replace_authorities(v1, 2, cards, now=T0)
    for key in (*AUTHORITIES[:2], *incoming[:2]):
        v2 = admin.sign(v2, key)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    assert trust.offer(v1, T0) and trust.offer(v2, T0)
    assert len(checks) == 4 + 4  # each version: two keys of the held set, then two of its own
    v3 = admin.renew(v2, now=T0)
    entries = [admin.sign(v3, k).signatures[0] for k in incoming] + [forged(key_id(k)) for k in AUTHORITIES]
    with pytest.raises(VerificationError) as info:  # 6 entries, 3 authority keys may sign version 3
        trust.offer(padded(v3, entries), T0)
    assert info.value.reason == "directory-too-many-signatures"
    assert "than the 3 authority keys" in str(info.value)
    assert trust.offer(padded(v3, entries[:3]), T0)  # as many entries as keys: checked, and taken


def test_each_authority_key_is_checked_once_however_often_it_appears(checks: list[bytes]) -> None:
    body = draft()
    authority = AUTHORITIES[0]
    copies = [forged(key_id(authority))] * PADDING  # what a reader that refused no copy would see
    document = DirectoryDocument(padded(body, copies))
    started = time.perf_counter()
    assert document.signers(DirectoryAnchor.of(admin.read(body)).authorities, T0) == []
    assert time.perf_counter() - started < 1.0
    assert checks == [authority.public.raw]
    # A copy of a valid signature after a forged one does not count either: the key was tried.
    good = admin.sign(body, authority).signatures[0]
    assert (
        DirectoryDocument(padded(body, [forged(key_id(authority)), good])).signers(
            DirectoryAnchor.of(admin.read(body)).authorities, T0
        )
        == []
    )


def test_one_signature_twice_never_reaches_a_threshold_of_two(checks: list[bytes]) -> None:
    body = draft()
    one = admin.sign(body, AUTHORITIES[0])
    twice = padded(body, [*one.signatures, *one.signatures])
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(body)))
    with pytest.raises(VerificationError) as info:
        trust.offer(twice, T0)
    assert info.value.reason == "directory-signatures"
    assert "1 valid signature(s) by the authorities of the anchor, 2 required" in str(info.value)
    assert len(checks) == 1
    with pytest.raises(DecodeError, match=f"key {key_id(AUTHORITIES[0])} signs twice") as decode:
        DirectoryDocument.from_bytes(DirectoryDocument(twice).to_bytes())  # as read from the topic
    assert decode.value.reason == "bad-directory"


def test_signatures_by_keys_that_are_no_authority_are_never_checked(checks: list[bytes]) -> None:
    body = draft()
    outsider = SigningKey.generate()
    by_outsider = DirectoryDocument(body).sign(outsider).signed
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(body)))
    with pytest.raises(VerificationError) as info:
        trust.offer(by_outsider, T0)
    assert info.value.reason == "directory-signatures"
    assert checks == []


def test_a_lapsed_authority_key_is_never_checked(checks: list[bytes]) -> None:
    body = draft()
    signed = admin.sign(admin.sign(body, AUTHORITIES[0]), AUTHORITIES[1])
    authorities = DirectoryAnchor.of(admin.read(body)).authorities
    assert DirectoryDocument(signed).signers(authorities, T0) == [key_id(k) for k in AUTHORITIES[:2]]
    assert len(checks) == 2
    before = authorities[0].valid_from.replace(year=1969)  # before the authority keys are valid
    assert DirectoryDocument(signed).signers(authorities, before) == []
    assert len(checks) == 2
