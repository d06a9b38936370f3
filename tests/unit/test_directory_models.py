"""The rules of the directory's models (broker.models.directory), each at its boundary and with its words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from broker.models.directory import Directory, KeyEntry, NodeEntry, SignedDirectory
from broker.wire.signing import SigningKey

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEYS = [SigningKey.generate() for _ in range(3)]


def entry(key: SigningKey = KEYS[0], **changes: Any) -> dict[str, Any]:
    return {"key_id": key.public.key_id.hex(), "public_key": key.public.raw, "valid_from": T0, **changes}


def test_a_key_entry_is_under_its_own_key_id_with_a_window_and_a_whole_revocation() -> None:
    with pytest.raises(ValidationError, match=f"key_id {'00' * 8} is not the key id of its public key"):
        KeyEntry.model_validate(entry(key_id="00" * 8))
    with pytest.raises(ValidationError, match="valid_until is not after valid_from"):
        KeyEntry.model_validate(entry(valid_until=T0))  # an empty window
    assert KeyEntry.model_validate(entry(valid_until=T0 + timedelta(microseconds=1))).valid_until is not None
    for half in ({"revoked_at": T0}, {"revocation_reason": "lost"}):
        with pytest.raises(ValidationError, match="a revocation has both a time and a reason"):
            KeyEntry.model_validate(entry(**half))
    assert KeyEntry.model_validate(entry(revoked_at=T0, revocation_reason="lost")).revoked_at == T0


def test_a_key_is_usable_from_valid_from_to_valid_until_and_before_its_revocation() -> None:
    end, revoked = T0 + timedelta(days=10), T0 + timedelta(days=5)
    key = KeyEntry.model_validate(entry(valid_until=end))
    kid = key.key_id
    assert key.problem_at(T0) is None and key.problem_at(end) is None  # both ends included
    assert key.problem_at(T0 - timedelta(microseconds=1)) == (
        "key-not-yet-valid",
        f"key {kid} is valid from 2026-11-01T00:00:00Z",
    )
    assert key.problem_at(end + timedelta(microseconds=1)) == (
        "key-expired",
        f"key {kid} expired at 2026-11-11T00:00:00Z",
    )
    open_ended = KeyEntry.model_validate(entry())
    assert open_ended.problem_at(T0 + timedelta(days=36500)) is None
    lost = KeyEntry.model_validate(entry(valid_until=end, revoked_at=revoked, revocation_reason="laptop stolen"))
    assert lost.problem_at(revoked - timedelta(microseconds=1)) is None
    assert lost.problem_at(revoked) == ("key-revoked", f"key {kid} was revoked at 2026-11-06T00:00:00Z: laptop stolen")
    # A revocation outranks every other problem: a stolen key never reads as merely expired.
    assert lost.problem_at(end + timedelta(days=1))[0] == "key-revoked"  # type: ignore[index]


def node(**changes: Any) -> dict[str, Any]:
    return {"node_id": "FR.GN", "agency": "GN", "roles": ["NationalNode"], "signing_keys": [entry()], **changes}


def test_a_node_lists_each_key_once_across_its_signing_and_encryption_keys() -> None:
    with pytest.raises(ValidationError, match=r"FR\.GN lists a key id twice"):
        NodeEntry.model_validate(node(encryption_keys=[entry()]))
    with pytest.raises(ValidationError, match=r"FR\.GN lists a key id twice"):
        NodeEntry.model_validate(node(signing_keys=[entry(), entry()]))
    assert len(NodeEntry.model_validate(node(encryption_keys=[entry(KEYS[1])])).encryption_keys) == 1


def directory(**changes: Any) -> dict[str, Any]:
    base = {
        "network": "op7-test",
        "version": 1,
        "issued_at": T0,
        "threshold": 2,
        "authorities": [entry(k) for k in KEYS],
        "expires_at": T0 + timedelta(days=1),
    }
    return {**base, **changes}


def test_a_directory_is_consistent() -> None:
    assert Directory.model_validate(directory(threshold=3)).threshold == 3  # all the keys
    with pytest.raises(ValidationError, match="threshold 4 exceeds the 3 authority keys"):
        Directory.model_validate(directory(threshold=4))
    with pytest.raises(ValidationError, match="expires_at is not after issued_at"):
        Directory.model_validate(directory(expires_at=T0))
    assert Directory.model_validate(directory(expires_at=T0 + timedelta(microseconds=1))).expires_at is not None
    with pytest.raises(ValidationError, match="an authority key is listed twice"):
        Directory.model_validate(directory(authorities=[entry(), entry(), entry(KEYS[1])]))
    with pytest.raises(ValidationError, match="a node id appears twice"):
        Directory.model_validate(directory(nodes=[node(), node(signing_keys=[entry(KEYS[1])])]))
    two = Directory.model_validate(directory(nodes=[node(), node(node_id="ES.PN", signing_keys=[entry(KEYS[1])])]))
    assert two.node("ES.PN") is two.nodes[1] and two.node("NL.NCC") is None


def test_a_signed_directory_names_each_signing_key_once() -> None:
    signature = {"key_id": KEYS[0].public.key_id.hex(), "signature": b"\x01" * 64}
    other = {"key_id": KEYS[1].public.key_id.hex(), "signature": b"\x01" * 64}
    assert len(SignedDirectory.model_validate({"body": b"", "signatures": [signature, other]}).signatures) == 2
    with pytest.raises(ValidationError, match=f"key {signature['key_id']} signs twice"):
        SignedDirectory.model_validate({"body": b"", "signatures": [signature, other, signature]})
