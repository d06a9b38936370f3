"""Directory updates under the rules of python-tuf's root update: the next version only, a threshold of the old
and of the new authority set, an expiry nodes enforce, and refusals that say what is missing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError, VerificationError
from broker.models import KidnappingAlert
from broker.models.directory import KeyEntry, Role, SignedDirectory
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
from broker.wire.compat import incompatibilities
from broker.wire.envelope import NodeIdentity, build, open_frame
from broker.wire.schemas import SchemaRegistry, default_registry, schema_dir
from broker.wire.signing import EncryptionKey, SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]
FR_KEY = SigningKey.generate()


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    clock.set(T0)


def card(node: str, key: SigningKey) -> PublicKeyCard:
    return PublicKeyCard(node, key.public, EncryptionKey.generate().public)


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


def chain(length: int, *, expires_in: timedelta = admin.DEFAULT_LIFETIME) -> list[SignedDirectory]:
    """Versions 1..length, each the one before with nothing changed, signed by the first two authorities."""
    draft = admin.create(
        "op7-test", 2, [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)], now=T0, expires_in=expires_in
    )
    draft = admin.add_node(draft, card("FR.GN", FR_KEY), "GN", [Role.NATIONAL_NODE], ["all"], now=T0)
    versions = [signed_by(draft, *AUTHORITIES[:2])]
    while len(versions) < length:
        versions.append(signed_by(admin.renew(versions[-1], now=T0), *AUTHORITIES[:2]))
    return versions


def anchor_of(signed: SignedDirectory) -> DirectoryAnchor:
    return DirectoryAnchor.of(admin.read(signed))


def entries(keys: list[SigningKey]) -> list[dict[str, object]]:
    return [KeyEntry(key_id=k.public.key_id.hex(), public_key=k.public.raw, valid_from=T0).model_dump() for k in keys]


# 1. The next version only


def test_a_version_that_skips_one_is_refused_and_waits_for_it(tmp_path: Path) -> None:
    v1, v2, v3 = chain(3)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    with pytest.raises(VerificationError) as info:
        trust.offer(v3, T0)
    assert info.value.reason == "directory-gap"
    assert str(info.value).startswith("directory version 3 refused (version 1 held): version 2 must come first")
    assert trust.version == 1 and trust.waiting == [3]
    assert trust.offer(v2, T0)  # the missing version arrives: the waiting one follows it
    assert trust.version == 3 and trust.waiting == []
    keep_directory(tmp_path, trust)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{v:010d}.json" for v in (1, 2, 3)]


def test_hostile_far_off_versions_cannot_crowd_out_the_next_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.trust import directory

    monkeypatch.setattr(directory, "MAX_WAITING", 4)
    v1, v2, v3 = chain(3)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    # Unsigned bodies that claim far-off versions (anyone who can write to the topic can put them there).
    for version in range(1000, 1004):
        body = admin.read(v1).model_copy(update={"version": version})
        with pytest.raises(VerificationError, match="must come first"):
            trust.offer(DirectoryDocument.draft(body).signed, T0)
    assert trust.waiting == [1000, 1001, 1002, 1003]
    with pytest.raises(VerificationError, match="version 2 must come first"):
        trust.offer(v3, T0)
    assert 3 in trust.waiting and 1003 not in trust.waiting  # the highest claim made room
    assert trust.offer(v2, T0) and trust.version == 3


def test_the_first_version_follows_the_anchor_s_version() -> None:
    v1, v2, v3 = chain(3)
    with pytest.raises(VerificationError, match=r"version 3 refused \(no version held yet, anchor of version 1\)"):
        DirectoryTrust(anchor_of(v1)).offer(v3, T0)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v2, T0) and trust.version == 2  # the anchor holds version 1's authorities
    assert trust.offer(v1, T0) is False  # older: passed over, as the follower reads the topic from its start
    anchored_at_2 = DirectoryTrust(anchor_of(v2))
    assert anchored_at_2.offer(v1, T0) is False and anchored_at_2.offer(v2, T0)
    # An anchor written before anchors named a version accepts any first version its authorities signed.
    legacy = DirectoryAnchor(anchor_of(v1).network, 2, anchor_of(v1).authorities)
    assert DirectoryTrust(legacy).offer(v3, T0)


def test_another_body_under_the_version_held_is_refused() -> None:
    (v1,) = chain(1)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    assert trust.offer(signed_by(v1, AUTHORITIES[2]), T0) is False  # same body, one more signature: nothing new
    forked = DirectoryDocument.draft(admin.read(v1).model_copy(update={"nodes": ()})).signed
    with pytest.raises(VerificationError, match=r"version 1 refused \(version 1 held\): it differs from") as info:
        trust.offer(signed_by(forked, *AUTHORITIES[:2]), T0)
    assert info.value.reason == "directory-fork"


def test_a_restart_walks_the_kept_files_in_order_and_waits_at_a_gap(tmp_path: Path) -> None:
    v1, v2, v3 = chain(3)
    for signed in (v1, v3):  # as kept by a node that once took version 3 straight after 1
        DirectoryDocument(signed).to_file(tmp_path / f"{admin.read(signed).version:010d}.json")
    restarted = DirectoryTrust(anchor_of(v1))
    restore_directory(tmp_path, restarted, T0)
    assert restarted.version == 1 and restarted.waiting == [3]
    assert restarted.offer(v2, T0) and restarted.version == 3


# 2. Both thresholds


def test_a_handover_needs_a_threshold_of_the_outgoing_and_of_the_incoming_authorities() -> None:
    (v1,) = chain(1)
    incoming = [SigningKey.generate() for _ in range(3)]
    handover = admin.edit(v1, lambda d: d.update(threshold=2, authorities=entries(incoming)), now=T0)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    ids = [k.public.key_id.hex() for k in incoming]
    with pytest.raises(VerificationError) as info:
        trust.offer(signed_by(handover, *AUTHORITIES, incoming[0]), T0)
    assert info.value.reason == "directory-new-signatures"
    assert str(info.value) == (
        "directory version 2 refused (version 1 held): 1 valid signature(s) by the authorities of version 2 itself, "
        f"2 required (threshold 2 of 3 keys; signed by {ids[0]}; 1 more needed from {ids[1]}, {ids[2]})"
    )
    with pytest.raises(VerificationError, match="by the authorities of version 1 held, 2 required") as info:
        trust.offer(signed_by(handover, AUTHORITIES[0], *incoming), T0)
    assert info.value.reason == "directory-signatures"
    assert trust.offer(signed_by(handover, *AUTHORITIES[1:], *incoming[1:]), T0) and trust.version == 2


def test_a_raised_threshold_must_already_be_met_by_the_version_that_raises_it() -> None:
    (v1,) = chain(1)
    raised = admin.edit(v1, lambda d: d.update(threshold=3), now=T0)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    with pytest.raises(VerificationError, match=r"2 valid signature.* of version 2 itself, 3 required"):
        trust.offer(signed_by(raised, *AUTHORITIES[:2]), T0)
    assert trust.offer(signed_by(raised, *AUTHORITIES), T0)


# 3. Expiry


def test_an_expired_directory_verifies_nothing(clock: ManualClock, alert: KidnappingAlert) -> None:
    (v1,) = chain(1, expires_in=timedelta(days=10))
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, T0)
    _, frame = build(NodeIdentity("FR.GN", FR_KEY, network="op7-test"), alert, now=T0 + timedelta(days=9))
    clock.set(T0 + timedelta(days=9))
    open_frame(frame, trust)
    clock.set(T0 + timedelta(days=10))
    with pytest.raises(VerificationError) as info:
        open_frame(frame, trust)
    assert info.value.reason == "directory-expired"
    assert str(info.value).startswith(
        "the network directory held (version 1) expired at 2026-11-11T00:00:00Z; nothing is verified with it"
    )
    with pytest.raises(ConfigError, match=r"\(version 1\) expired at 2026-11-11"):
        trust.encryption_key("FR.GN", T0)
    assert DirectoryTrust(anchor_of(v1), clock=ManualClock(T0)).offer(v1, T0)  # a trust may read its own clock


def test_an_expired_version_still_leads_to_the_next(clock: ManualClock, alert: KidnappingAlert) -> None:
    """As in python-tuf, only the version finally held must be in force: a node that was offline walks on."""
    v1 = chain(1, expires_in=timedelta(days=10))[0]
    later = T0 + timedelta(days=30)
    v2 = signed_by(admin.renew(v1, now=later, expires_in=timedelta(days=30)), *AUTHORITIES[:2])
    clock.set(later)
    trust = DirectoryTrust(anchor_of(v1))
    assert trust.offer(v1, later) and trust.expired() is not None
    assert trust.offer(v2, later) and trust.expired() is None
    _, frame = build(NodeIdentity("FR.GN", FR_KEY, network="op7-test"), alert, now=later)
    open_frame(frame, trust)


def test_the_admin_tool_sets_the_expiry_and_edits_keep_the_lifetime() -> None:
    (v1,) = chain(1, expires_in=timedelta(days=90))
    assert admin.read(v1).expires_at == T0 + timedelta(days=90)
    edited = admin.remove_node(v1, "FR.GN", now=T0 + timedelta(days=5))
    assert admin.read(edited).expires_at == T0 + timedelta(days=95)
    renewed = admin.renew(v1, now=T0 + timedelta(days=1), expires_in=timedelta(days=7))
    assert (admin.read(renewed).version, admin.read(renewed).expires_at) == (2, T0 + timedelta(days=8))
    default = admin.create("op7-test", 1, [card("NL.NA0", AUTHORITIES[0])], now=T0)
    assert admin.read(default).expires_at == T0 + admin.DEFAULT_LIFETIME
    with pytest.raises(ConfigError, match="must be in force for some time"):
        admin.renew(v1, now=T0, expires_in=timedelta(0))


# Schema evolution: the directory before expiry existed


def _legacy_body(signed: SignedDirectory) -> bytes:
    """The body of ``signed`` as the released schema 1 writes it (no ``expires_at``)."""
    released = SchemaRegistry(schema_dir() / "released" / "1", include_released=False)
    data = admin.read(signed).model_dump()
    del data["expires_at"]
    return encode_datum(released.get("op7.directory.Directory"), data)


def test_directories_written_before_expiry_existed_are_read_and_never_expire(
    tmp_path: Path, clock: ManualClock
) -> None:
    (v1,) = chain(1)
    legacy = signed_by(SignedDirectory(body=_legacy_body(v1)), *AUTHORITIES[:2])
    DirectoryDocument(legacy).to_file(tmp_path / "0000000001.json")
    trust = DirectoryTrust(anchor_of(v1))
    restore_directory(tmp_path, trust, T0)
    assert trust.version == 1 and trust.directory is not None and trust.directory.expires_at is None
    clock.set(T0 + timedelta(days=3650))
    assert trust.expired() is None
    next_version = admin.read(admin.remove_node(legacy, "FR.GN", now=T0))
    assert next_version.expires_at == T0 + admin.DEFAULT_LIFETIME  # the next version expires


def test_the_directory_schema_stays_compatible_with_the_released_one() -> None:
    released = SchemaRegistry(schema_dir() / "released" / "1", include_released=False)
    old = released.get("op7.directory.Directory").parsed
    new = default_registry().get("op7.directory.Directory").parsed
    assert incompatibilities(new, old, "Directory") == []
    assert incompatibilities(old, new, "Directory") == []


def test_an_anchor_names_its_version_and_anchors_without_one_still_load(tmp_path: Path) -> None:
    (v1,) = chain(1)
    anchor = anchor_of(v1)
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(anchor.to_json()))
    loaded = DirectoryAnchor.load(path)
    assert (loaded.network, loaded.version, loaded.threshold) == ("op7-test", 1, 2)
    assert [a.public_key for a in loaded.authorities] == [a.public_key for a in anchor.authorities]
    path.write_text(json.dumps({k: v for k, v in anchor.to_json().items() if k != "version"}))
    assert DirectoryAnchor.load(path).version is None
    path.write_text(json.dumps({**anchor.to_json(), "version": "one"}))
    with pytest.raises(ConfigError, match=r"version 'one' is not a directory version"):
        DirectoryAnchor.load(path)
