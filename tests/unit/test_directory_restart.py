"""A restart re-walks the kept directory chain at the times its versions were accepted: an authority key whose planned
end has passed since does not stop a node from starting, and still signs nothing new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError, VerificationError
from broker.models.directory import SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust, keep_directory, restore_directory
from broker.trust.store import PublicKeyCard
from broker.wire.signing import EncryptionKey, SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]
#: The planned end of the first authority key.
END = T0 + timedelta(days=10)
LATER = END + timedelta(days=10)


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    clock.set(T0)


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


def first_key_ends(data: dict[str, Any]) -> None:
    data["authorities"][0]["valid_until"] = END


def history(folder: Path) -> tuple[DirectoryAnchor, list[SignedDirectory]]:
    """Versions 1 and 2, signed by the first two authorities and accepted at T0 and T0 + 1 day, kept in ``folder``."""
    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    v1 = signed_by(admin.edit(admin.create("op7-test", 2, cards, now=T0), first_key_ends, now=T0), *AUTHORITIES[:2])
    v2 = signed_by(admin.renew(v1, now=T0 + timedelta(days=1)), *AUTHORITIES[:2])
    anchor = DirectoryAnchor.of(admin.read(v1))
    trust = DirectoryTrust(anchor)
    assert trust.offer(v1, T0) and trust.offer(v2, T0 + timedelta(days=1))
    keep_directory(folder, trust)
    return anchor, [v1, v2]


def test_a_restart_after_an_authority_key_s_planned_end_holds_the_chain_kept(tmp_path: Path) -> None:
    anchor, (_, v2) = history(tmp_path)
    restarted = DirectoryTrust(anchor)
    restore_directory(tmp_path, restarted, LATER)
    assert restarted.version == 2
    # What arrives now is checked now: the lapsed key's signature no longer counts.
    v3 = admin.renew(v2, now=LATER)
    with pytest.raises(VerificationError, match=r"1 valid signature\(s\) by the authorities of version 2 held") as info:
        restarted.offer(signed_by(v3, *AUTHORITIES[:2]), LATER)
    assert info.value.reason == "directory-signatures"
    assert restarted.offer(signed_by(v3, *AUTHORITIES[1:]), LATER)


def test_each_kept_version_records_when_it_was_accepted(tmp_path: Path) -> None:
    history(tmp_path)
    kept = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert [k["accepted_at"] for k in kept] == ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"]


def test_versions_kept_without_their_time_are_checked_at_the_time_they_were_issued(tmp_path: Path) -> None:
    anchor, _ = history(tmp_path)
    for path in tmp_path.glob("*.json"):  # as written before kept versions recorded when they were accepted
        data = json.loads(path.read_text())
        del data["accepted_at"]
        path.write_text(json.dumps(data))
    restarted = DirectoryTrust(anchor)
    restore_directory(tmp_path, restarted, LATER)
    assert restarted.version == 2


def test_a_kept_version_is_never_checked_later_than_now(tmp_path: Path) -> None:
    anchor, _ = history(tmp_path)
    first = tmp_path / f"{1:010d}.json"
    data = json.loads(first.read_text())
    first.write_text(json.dumps({**data, "accepted_at": "2026-11-20T00:00:00Z"}))  # after the planned end
    with pytest.raises(ConfigError, match="does not follow from the versions before it"):
        restore_directory(tmp_path, DirectoryTrust(anchor), LATER)
    restarted = DirectoryTrust(anchor)
    restore_directory(tmp_path, restarted, T0 + timedelta(days=2))  # the clock behind the recorded time: now counts
    assert restarted.version == 2


@pytest.mark.parametrize("recorded", ["yesterday", "2026-11-01T00:00:00", 20261101, None])
def test_a_bad_recorded_time_names_the_file(tmp_path: Path, recorded: object) -> None:
    anchor, _ = history(tmp_path)
    first = tmp_path / f"{1:010d}.json"
    first.write_text(json.dumps({**json.loads(first.read_text()), "accepted_at": recorded}))
    with pytest.raises(ConfigError, match=rf"{first}: accepted_at .* is not a UTC time"):
        restore_directory(tmp_path, DirectoryTrust(anchor), LATER)
