"""Every rule of the directory modules on its own, with the words of its refusal: the anchor a node starts from, the
encryption keys messages are sealed to, and the conditions of versions, keys and signatures."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError
from broker.models.directory import Role, SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.store import PublicKeyCard
from broker.wire.signing import EncryptionKey, SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUTHORITIES = [SigningKey.generate() for _ in range(3)]


@pytest.fixture(autouse=True)
def _at_t0(clock: ManualClock) -> None:
    clock.set(T0)


def card(node: str, key: SigningKey, enc: EncryptionKey | None = None) -> PublicKeyCard:
    return PublicKeyCard(node, key.public, (enc or EncryptionKey.generate()).public)


def draft() -> SignedDirectory:
    return admin.create("op7-test", 2, [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)], now=T0)


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


# The anchor


def anchor_data(**changes: Any) -> dict[str, Any]:
    data = DirectoryAnchor.of(admin.read(draft())).to_json()
    return {**data, **changes}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(data))
    return path


def test_an_anchor_round_trips_through_its_file(tmp_path: Path) -> None:
    anchor = DirectoryAnchor.of(admin.read(draft()))
    loaded = DirectoryAnchor.load(write(tmp_path, anchor.to_json()))
    assert (loaded.network, loaded.threshold, loaded.version) == ("op7-test", 2, 1)
    assert [a.public_key for a in loaded.authorities] == [k.public.raw for k in AUTHORITIES]
    assert loaded.authorities[0].valid_from == datetime(1970, 1, 1, tzinfo=UTC)  # valid at all times
    unnamed = anchor_data()
    del unnamed["version"]
    for entry in unnamed["authorities"]:
        del entry["key_id"]  # the key id may be left out: it is the key's
    assert DirectoryAnchor.load(write(tmp_path, unnamed)).version is None
    for threshold in (1, 3):  # from one key to all of them
        assert DirectoryAnchor.load(write(tmp_path, anchor_data(threshold=threshold))).threshold == threshold


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "not an op7 directory anchor"),
        (anchor_data(format="op7-directory-anchor/2"), "not an op7 directory anchor"),
        (anchor_data(network=None), "network None is not a network name"),
        (anchor_data(network="Op7 Test"), "network 'Op7 Test' is not a network name"),
        (anchor_data(network=7), "network 7 is not a network name"),
        (anchor_data(threshold=0), "threshold 0 must be a whole number between 1 and the 3 authority keys"),
        (anchor_data(threshold=4), "threshold 4 must be a whole number between 1 and the 3 authority keys"),
        (anchor_data(threshold=-1), "threshold -1 must be"),
        (anchor_data(threshold="2"), "threshold '2' must be"),
        (anchor_data(threshold=True), "threshold True must be"),
        (anchor_data(threshold=None), "threshold None must be"),
        (anchor_data(version=0), "version 0 is not a directory version"),
        (anchor_data(version=True), "version True is not a directory version"),
        (anchor_data(version="1"), "version '1' is not a directory version"),
        (anchor_data(authorities=[]), "authorities must list the network authorities' keys"),
        (anchor_data(authorities=None), "authorities must list the network authorities' keys"),
        (anchor_data(authorities={"key_id": "00"}), "authorities must list the network authorities' keys"),
        (anchor_data(authorities=["AAAA"]), "an authority is not an object with key_id and public_key"),
    ],
)
def test_a_bad_anchor_is_refused_naming_the_problem(tmp_path: Path, data: Any, problem: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match="^" + str(path).replace(".", r"\.") + ": ") as info:
        DirectoryAnchor.load(path)
    assert problem in str(info.value)


def test_a_bad_authority_key_in_an_anchor_is_refused(tmp_path: Path) -> None:
    good = anchor_data()["authorities"]
    other = SigningKey.generate().public
    short = base64.b64encode(AUTHORITIES[0].public.raw[:31]).decode()
    cases = {
        "is not valid base64": [{**good[0], "public_key": "not base64!"}],
        f"authority key {good[0]['key_id']} is not a valid Ed25519 key": [{**good[0], "public_key": short}],
        f"authority key {other.key_id.hex()} is not a valid Ed25519 key": [{**good[0], "key_id": other.key_id.hex()}],
        f"authority key {good[1]['key_id']} is listed twice": [good[0], good[1], good[1]],
    }
    for problem, authorities in cases.items():
        with pytest.raises(ConfigError, match=problem):
            DirectoryAnchor.load(write(tmp_path, anchor_data(authorities=authorities, threshold=1)))


# Encryption keys: a message is never sealed to a key that expired, was revoked or is not valid yet


def with_fr(enc: EncryptionKey, change: Any = None) -> DirectoryTrust:
    v1 = admin.add_node(draft(), card("FR.GN", SigningKey.generate(), enc), "GN", [Role.NATIONAL_NODE], ["all"], now=T0)
    if change is not None:
        v1 = admin.edit(v1, change, now=T0)
    v1 = signed_by(v1, *AUTHORITIES[:2])
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    assert trust.offer(v1, T0)
    return trust


def fr_key(key: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["nodes"][0]["encryption_keys"][0][key] = value

    return change


def test_the_encryption_key_in_force_is_the_one_sealed_to() -> None:
    enc = EncryptionKey.generate()
    trust = with_fr(enc)
    assert trust.encryption_key("FR.GN", T0).raw == enc.public.raw
    with pytest.raises(ConfigError, match=r"unknown sender ES\.PN: not in the network directory"):
        trust.encryption_key("ES.PN", T0)


@pytest.mark.parametrize(
    ("change", "at"),
    [
        (fr_key("valid_until", T0 + timedelta(days=1)), T0 + timedelta(days=1, seconds=1)),  # expired
        (fr_key("valid_from", T0 + timedelta(days=1)), T0),  # not valid yet
        (
            lambda d: d["nodes"][0]["encryption_keys"][0].update(revoked_at=T0, revocation_reason="lost"),
            T0,
        ),  # revoked
        (lambda d: d["nodes"][0].update(encryption_keys=[]), T0),  # none
    ],
    ids=["expired", "not-yet-valid", "revoked", "none"],
)
def test_no_message_is_sealed_to_a_key_out_of_use(change: Any, at: datetime) -> None:
    trust = with_fr(EncryptionKey.generate(), change)
    with pytest.raises(ConfigError, match=r"^FR\.GN has no valid encryption key in the directory$"):
        trust.encryption_key("FR.GN", at)


def test_of_two_usable_encryption_keys_the_newest_is_sealed_to() -> None:
    old, new = EncryptionKey.generate(), EncryptionKey.generate()
    trust = with_fr(old)
    v2 = admin.rotate_key(
        trust.signed or draft(),
        card("FR.GN", SigningKey.generate(), new),
        timedelta(days=7),
        now=T0 + timedelta(hours=1),
    )
    assert trust.offer(signed_by(v2, *AUTHORITIES[:2]), T0 + timedelta(hours=1))
    assert trust.encryption_key("FR.GN", T0 + timedelta(hours=2)).raw == new.public.raw
    assert trust.encryption_key("FR.GN", T0 + timedelta(minutes=30)).raw == old.public.raw  # new not valid yet
    assert trust.encryption_key("FR.GN", T0 + timedelta(days=8)).raw == new.public.raw


def test_nothing_is_sealed_with_an_expired_directory(clock: ManualClock) -> None:
    trust = with_fr(EncryptionKey.generate())
    assert trust.directory is not None and trust.directory.expires_at is not None
    clock.set(trust.directory.expires_at)  # the directory's expiry is read from the clock, not the time asked
    with pytest.raises(ConfigError, match=r"expired at .*nothing is verified with it"):
        trust.encryption_key("FR.GN", T0)
