"""What the directory tells its operator, word for word (the follower's log reaches the user: logger op7.directory),
and the boundaries of its rules: versions that wait, the expiry instant, keys unknown to the directory."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models.directory import DirectorySignature, Role, SignedDirectory
from broker.trust import admin
from broker.trust import directory as directory_module
from broker.trust.directory import (
    DirectoryAnchor,
    DirectoryDocument,
    DirectoryTrust,
    keep_directory,
    restore_directory,
)
from broker.trust.store import PublicKeyCard
from broker.wire.codec import encode_datum
from broker.wire.schemas import SchemaRegistry, schema_dir
from broker.wire.signing import EncryptionKey, SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]
FR_KEY = SigningKey.generate()


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    clock.set(T0)


@pytest.fixture
def said(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The messages of the op7.directory logger so far (debug and up), as the operator reads them."""
    caplog.set_level(logging.DEBUG, logger="op7.directory")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "op7.directory"]


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


def chain(length: int) -> list[SignedDirectory]:
    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    draft = admin.create("op7-test", 2, cards, now=T0)
    fr = PublicKeyCard("FR.GN", FR_KEY.public, EncryptionKey.generate().public)
    draft = admin.add_node(draft, fr, "GN", [Role.NATIONAL_NODE], ["KidnappingAlert"], now=T0)
    versions = [signed_by(draft, *AUTHORITIES[:2])]
    while len(versions) < length:
        versions.append(signed_by(admin.renew(versions[-1], now=T0), *AUTHORITIES[:2]))
    return versions


def trust_of(first: SignedDirectory, *, anchor_version: bool = True) -> DirectoryTrust:
    anchor = DirectoryAnchor.of(admin.read(first))
    if not anchor_version:
        anchor = DirectoryAnchor(anchor.network, anchor.threshold, anchor.authorities)
    return DirectoryTrust(anchor)


def test_taking_a_version_says_what_it_is_and_when_it_expires(said: Callable[[], list[str]]) -> None:
    (v1,) = chain(1)
    assert trust_of(v1).offer(v1, T0)
    assert said() == ["directory of op7-test now at version 1 (1 nodes, expires 2027-11-01T00:00:00Z)"]


def test_a_version_written_before_expiry_existed_is_said_never_to_expire(said: Callable[[], list[str]]) -> None:
    (v1,) = chain(1)
    data = admin.read(v1).model_dump()
    del data["expires_at"]
    released = SchemaRegistry(schema_dir() / "released" / "1", include_released=False)
    legacy = signed_by(
        SignedDirectory(body=encode_datum(released.get("op7.directory.Directory"), data)), *AUTHORITIES[:2]
    )
    assert trust_of(v1).offer(legacy, T0)
    assert said() == ["directory of op7-test now at version 1 (1 nodes, expires never)"]


def test_a_version_held_or_older_is_passed_over_saying_so(said: Callable[[], list[str]]) -> None:
    v1, v2 = chain(2)
    trust = trust_of(v1)
    assert trust.offer(v1, T0) and trust.offer(v2, T0)
    assert not trust.offer(v1, T0) and not trust.offer(v2, T0)
    assert said()[2:] == [
        "ignored directory version 1: version 2 is held",
        "ignored directory version 2: version 2 is held",
    ]


def test_a_refusal_before_any_version_names_the_anchor_or_its_absence() -> None:
    (v1,) = chain(1)
    unsigned = SignedDirectory(body=v1.body)
    for anchor_version, held in ((True, "no version held yet, anchor of version 1"), (False, "no version held yet")):
        with pytest.raises(VerificationError, match=rf"^directory version 1 refused \({held}\): 0 valid"):
            trust_of(v1, anchor_version=anchor_version).offer(unsigned, T0)


def test_a_version_that_waits_is_kept_once_and_said_once(said: Callable[[], list[str]]) -> None:
    v1, _, v3 = chain(3)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    for _ in range(2):
        with pytest.raises(VerificationError, match="version 2 must come first"):
            trust.offer(v3, T0)
    assert said()[1:] == ["directory version 3 waits for version 2 (version 1 held)"]
    assert trust.waiting == [3]


def test_every_version_that_waited_is_taken_in_turn(said: Callable[[], list[str]]) -> None:
    v1, v2, v3, v4 = chain(4)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    for later in (v4, v3):
        with pytest.raises(VerificationError):
            trust.offer(later, T0)
    assert trust.offer(v2, T0)
    assert trust.version == 4 and trust.waiting == []


def test_a_version_that_waited_and_is_refused_says_why(said: Callable[[], list[str]]) -> None:
    v1, v2, v3 = chain(3)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    with pytest.raises(VerificationError):
        trust.offer(SignedDirectory(body=v3.body), T0)  # unsigned: it waits, and is refused when its turn comes
    assert trust.offer(v2, T0) and trust.version == 2 and trust.waiting == []
    assert said()[-1] == (
        "refused a directory version that waited: directory version 3 refused (version 2 held): 0 valid signature(s) "
        "by the authorities of version 2 held, 2 required (threshold 2 of 3 keys; signed by none of them; 2 more "
        f"needed from {', '.join(k.public.key_id.hex() for k in AUTHORITIES)})"
    )


def test_when_the_waiting_room_is_full_a_claim_as_high_as_the_highest_is_dropped(
    monkeypatch: pytest.MonkeyPatch, said: Callable[[], list[str]]
) -> None:
    monkeypatch.setattr(directory_module, "MAX_WAITING", 2)
    v1, _, v3 = chain(3)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    drafts = [DirectoryDocument.draft(admin.read(v1).model_copy(update={"version": v})).signed for v in (50, 60)]
    for waiting in drafts:
        with pytest.raises(VerificationError):
            trust.offer(waiting, T0)
    other_60 = DirectoryDocument.draft(
        admin.read(v1).model_copy(update={"version": 60, "issued_at": T0 + timedelta(seconds=1)})
    ).signed
    other_60 = signed_by(other_60, AUTHORITIES[2])  # another body for version 60
    with pytest.raises(VerificationError):
        trust.offer(other_60, T0)
    assert said()[-1] == "dropped directory version 60: 2 versions already wait"
    with pytest.raises(VerificationError):
        trust.offer(v3, T0)
    assert said()[-2:] == [
        "dropped waiting directory version 60 for version 3",
        "directory version 3 waits for version 2 (version 1 held)",
    ]
    assert trust.waiting == [3, 50]


def test_expiry_is_read_at_the_time_asked_or_the_clock_s(clock: ManualClock) -> None:
    (v1,) = chain(1)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    expires_at = T0 + admin.DEFAULT_LIFETIME
    assert trust.expired(expires_at - timedelta(microseconds=1)) is None
    problem = trust.expired(expires_at)  # from the instant it names on
    assert problem is not None and problem.reason == "directory-expired"
    assert str(problem) == (
        "the network directory held (version 1) expired at 2027-11-01T00:00:00Z; nothing is verified with it until "
        "the network authorities publish version 2"
    )
    clock.set(expires_at)
    assert trust.expired() is not None
    assert trust.expired(T0) is None  # the time asked, not the clock's


def test_a_key_the_directory_does_not_list_for_a_known_node() -> None:
    (v1,) = chain(1)
    trust = trust_of(v1)
    assert trust.offer(v1, T0)
    stranger = SigningKey.generate().public.key_id
    for check in (
        lambda: trust.key_for("FR.GN", stranger),
        lambda: trust.check_use("FR.GN", stranger, T0, "op7.alert.KidnappingAlert"),
    ):
        with pytest.raises(VerificationError) as info:
            check()
        assert info.value.reason == "unknown-key"
        assert str(info.value) == f"key {stranger.hex()} is not a signing key of FR.GN in the directory"
    trust.check_use("FR.GN", FR_KEY.public.key_id, T0, "op7.alert.KidnappingAlert")
    with pytest.raises(VerificationError, match=r"^FR\.GN is not allowed to send op7\.case\.CaseInformation"):
        trust.check_use("FR.GN", FR_KEY.public.key_id, T0, "op7.case.CaseInformation")


def test_a_restart_that_waits_at_a_gap_says_which_versions_wait(tmp_path: Path, said: Callable[[], list[str]]) -> None:
    v1, v2, v3, v4 = chain(4)
    trust = trust_of(v1)
    for version in (v1, v2, v3, v4):
        assert trust.offer(version, T0)
    keep_directory(tmp_path, trust)
    (tmp_path / f"{2:010d}.json").unlink()
    restarted = trust_of(v1)
    restore_directory(tmp_path, restarted, T0)
    assert restarted.version == 1 and restarted.waiting == [3, 4]
    assert said()[-1] == (
        f"{tmp_path}: kept directory version(s) 3, 4 wait for version 2, which is not kept; version 1 stays in "
        "force until it arrives on the directory topic or is installed"
    )
    restore_directory(tmp_path / "absent", trust_of(v1), T0)  # no folder: nothing kept, nothing said


def test_a_kept_file_that_does_not_decode_is_named(tmp_path: Path) -> None:
    (v1,) = chain(1)
    broken = tmp_path / f"{1:010d}.json"
    DirectoryDocument(SignedDirectory(body=b"\x00")).to_file(broken)
    with pytest.raises(
        ConfigError, match=rf"^{broken}: does not follow from the versions before it: invalid directory"
    ):
        restore_directory(tmp_path, trust_of(v1), T0)


def test_bad_base64_in_a_directory_or_anchor_file_is_named(tmp_path: Path) -> None:
    (v1,) = chain(1)
    path = tmp_path / "v1.json"
    DirectoryDocument(v1).to_file(path)
    data = json.loads(path.read_text())
    data["signatures"][0]["signature"] = "not base64!"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=rf"^{path}: a signature is not valid base64$"):
        DirectoryDocument.from_file(path)
    anchor = DirectoryAnchor.of(admin.read(v1)).to_json()
    anchor["authorities"][0]["public_key"] = "not base64!"
    path.write_text(json.dumps(anchor))
    with pytest.raises(ConfigError, match=rf"^{path}: an authority key is not valid base64$"):
        DirectoryAnchor.load(path)


def test_the_time_a_version_was_accepted_is_kept_in_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    monkeypatch.setenv("TZ", "America/Mexico_City")  # the machine's zone never shows in the file
    time.tzset()
    try:
        (v1,) = chain(1)
        at = datetime(2026, 11, 1, 3, tzinfo=UTC).astimezone(UTC)
        DirectoryDocument(v1).to_file(tmp_path / "v1.json", accepted_at=at.astimezone())
        assert json.loads((tmp_path / "v1.json").read_text())["accepted_at"] == "2026-11-01T03:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_anchor_check_alone_names_the_network() -> None:
    (v1,) = chain(1)
    anchor = DirectoryAnchor.of(admin.read(v1))
    other = DirectoryAnchor("op7-other", anchor.threshold, anchor.authorities)
    with pytest.raises(VerificationError, match=r"^directory is for network 'op7-test', not 'op7-other'$"):
        DirectoryDocument(v1).verify(other, T0)


def test_an_anchor_file_names_each_key_by_its_id() -> None:
    (v1,) = chain(1)
    written = DirectoryAnchor.of(admin.read(v1)).to_json()
    assert written["authorities"] == [
        {"key_id": k.public.key_id.hex(), "public_key": base64.b64encode(k.public.raw).decode()} for k in AUTHORITIES
    ]
    assert list(written) == ["format", "network", "version", "threshold", "authorities"]


def test_a_body_no_schema_reads_is_a_bad_directory() -> None:
    with pytest.raises(DecodeError, match=r"^invalid directory: ") as info:
        _ = DirectoryDocument(SignedDirectory(body=b"\x00")).directory
    assert info.value.reason == "bad-directory"


def test_a_forged_signature_does_not_hide_the_valid_ones_after_it() -> None:
    (v1,) = chain(1)
    forged = DirectorySignature(key_id=AUTHORITIES[0].public.key_id.hex(), signature=b"\x01" * 64)
    valid = [s for s in signed_by(SignedDirectory(body=v1.body), *AUTHORITIES[1:]).signatures]
    document = DirectoryDocument(SignedDirectory(body=v1.body, signatures=(forged, *valid)))
    authorities = DirectoryAnchor.of(admin.read(v1)).authorities
    assert document.signers(authorities, T0) == [k.public.key_id.hex() for k in AUTHORITIES[1:]]


def test_the_trust_s_own_clock_says_when_its_directory_expired() -> None:
    (v1,) = chain(1)
    late = ManualClock(T0 + admin.DEFAULT_LIFETIME)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)), clock=late)
    assert trust.offer(v1, T0)
    assert trust.expired() is not None  # while the process clock still reads T0


def test_refusals_name_the_version_offered_the_version_held_and_what_is_missing(
    said: Callable[[], list[str]],
) -> None:
    v1, v2, v3 = chain(3)
    anchored_at_2 = trust_of(v2)
    assert not anchored_at_2.offer(v1, T0)
    assert said() == ["ignored directory version 1: older than the anchor's"]
    trust = trust_of(v1)
    with pytest.raises(VerificationError) as gap:
        trust.offer(v3, T0)
    assert str(gap.value) == (
        "directory version 3 refused (no version held yet, anchor of version 1): version 2 must come first (each "
        "version is accepted only after the one before it, whose authorities sign it); this one waits for it"
    )
    other = admin.read(v1).model_copy(update={"network": "op7-other"})
    elsewhere = signed_by(DirectoryDocument.draft(other).signed, *AUTHORITIES)
    with pytest.raises(VerificationError) as network:
        trust.offer(elsewhere, T0)
    assert network.value.reason == "directory-network"
    assert str(network.value) == (
        "directory version 1 refused (no version held yet, anchor of version 1): it is for network 'op7-other', "
        "not 'op7-test'"
    )
    anchor = DirectoryAnchor.of(admin.read(v1))
    strict = DirectoryTrust(DirectoryAnchor(anchor.network, 3, anchor.authorities, 1))
    with pytest.raises(VerificationError) as short:
        strict.offer(v1, T0)
    ids = [k.public.key_id.hex() for k in AUTHORITIES]
    assert str(short.value) == (
        "directory version 1 refused (no version held yet, anchor of version 1): 2 valid signature(s) by the "
        f"authorities of the anchor, 3 required (threshold 3 of 3 keys; signed by {ids[0]}, {ids[1]}; 1 more needed "
        f"from {ids[2]})"
    )
    padded = SignedDirectory.model_construct(
        body=v1.body, signatures=(*v1.signatures, *signed_by(SignedDirectory(body=v1.body), AUTHORITIES[2]).signatures)
    )
    padded = SignedDirectory.model_construct(body=v1.body, signatures=padded.signatures * 2)
    with pytest.raises(VerificationError) as many:
        trust.offer(padded, T0)
    assert str(many.value) == (
        "directory version 1 refused (no version held yet, anchor of version 1): it carries 6 signatures, more than "
        "the 3 authority keys that may sign it (those of the anchor and its own)"
    )
