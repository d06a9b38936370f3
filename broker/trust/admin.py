"""Editing the network directory, as a network authority does: create, add and remove nodes, rotate and
revoke keys, sign. Every edit of a signed version starts the next version and drops the signatures, which
must then be gathered again; an unsigned draft keeps its version while it is edited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from broker.errors import ConfigError, DecodeError
from broker.models import MESSAGE_MODELS, message_model
from broker.models.directory import Directory, KeyEntry, NodeEntry, Role, SignedDirectory
from broker.models.inputs import first_problem
from broker.trust.directory import DirectoryDocument
from broker.trust.store import PublicKeyCard
from broker.wire.signing import SigningKey

__all__ = [
    "add_node",
    "create",
    "edit",
    "read",
    "remove_node",
    "revoke_key",
    "rotate_key",
    "sign",
]


def _validated(data: dict[str, Any]) -> Directory:
    try:
        return Directory.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"the directory would be invalid: {first_problem(exc)}") from None


def read(signed: SignedDirectory) -> Directory:
    """Decode a directory's body (for editing and showing; trust comes from :meth:`DirectoryDocument.verify`)."""
    try:
        return DirectoryDocument(signed).directory
    except DecodeError as exc:
        raise ConfigError(str(exc)) from None


def _key(public_key: bytes, key_id: str, valid_from: datetime, valid_until: datetime | None = None) -> KeyEntry:
    return KeyEntry(key_id=key_id, public_key=public_key, valid_from=valid_from, valid_until=valid_until)


def create(network: str, threshold: int, authorities: Iterable[PublicKeyCard], *, now: datetime) -> SignedDirectory:
    """Version 1 of a network's directory, unsigned, with its authority keys."""
    keys = [_key(c.key.raw, c.key.key_id.hex(), now).model_dump() for c in authorities]
    directory = _validated(
        {"network": network, "version": 1, "issued_at": now, "threshold": threshold, "authorities": keys, "nodes": []}
    )
    return DirectoryDocument.draft(directory).signed


def edit(signed: SignedDirectory, change: Callable[[dict[str, Any]], None], *, now: datetime) -> SignedDirectory:
    """Apply ``change`` to the directory's data; a signed version becomes the next, unsigned version."""
    data = _lists(read(signed).model_dump())
    change(data)
    if signed.signatures:
        data["version"] += 1
    data["issued_at"] = now
    return DirectoryDocument.draft(_validated(data)).signed


def _lists(value: Any) -> Any:
    """Model data with tuples turned into lists, so that edits can append and remove."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    node = next((n for n in data["nodes"] if n["node_id"] == node_id), None)
    if node is None:
        raise ConfigError(f"{node_id} is not in the directory")
    return node  # type: ignore[no-any-return]


def allowed_types(names: Iterable[str]) -> list[str]:
    """Full type names from short or full names; ``all`` for every type of the catalogue."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out.extend(sorted(MESSAGE_MODELS))
            continue
        try:
            out.append(message_model(name).avro_name)
        except KeyError:
            raise ConfigError(f"unknown message type {name!r}") from None
    return sorted(set(out))


def add_node(
    signed: SignedDirectory,
    card: PublicKeyCard,
    agency: str,
    roles: Iterable[Role],
    allowed: Iterable[str],
    *,
    now: datetime,
) -> SignedDirectory:

    def change(data: dict[str, Any]) -> None:
        if any(n["node_id"] == card.node for n in data["nodes"]):
            raise ConfigError(f"{card.node} is already in the directory")
        enc = (
            [_key(card.encryption_key.raw, card.encryption_key.key_id.hex(), now).model_dump()]
            if card.encryption_key
            else []
        )
        data["nodes"].append(
            NodeEntry(
                node_id=card.node,
                agency=agency,
                roles=tuple(roles),
                signing_keys=(_key(card.key.raw, card.key.key_id.hex(), now),),
                encryption_keys=tuple(KeyEntry.model_validate(e) for e in enc),
                allowed_types=tuple(allowed_types(allowed)),
            ).model_dump()
        )

    return edit(signed, change, now=now)


def remove_node(signed: SignedDirectory, node_id: str, *, now: datetime) -> SignedDirectory:
    def change(data: dict[str, Any]) -> None:
        _node(data, node_id)
        data["nodes"] = [n for n in data["nodes"] if n["node_id"] != node_id]

    return edit(signed, change, now=now)


def rotate_key(signed: SignedDirectory, card: PublicKeyCard, overlap: timedelta, *, now: datetime) -> SignedDirectory:
    """Add the card's keys, valid from now; the node's current keys stay valid for ``overlap`` more."""

    def change(data: dict[str, Any]) -> None:
        node = _node(data, card.node)
        if any(k["key_id"] == card.key.key_id.hex() for k in node["signing_keys"]):
            raise ConfigError(f"key {card.key.key_id.hex()} is already a key of {card.node}")
        for kind in ("signing_keys", "encryption_keys"):
            for key in node[kind]:
                if key["valid_until"] is None or key["valid_until"] > now + overlap:
                    key["valid_until"] = now + overlap
        node["signing_keys"].append(_key(card.key.raw, card.key.key_id.hex(), now).model_dump())
        if card.encryption_key is not None:
            node["encryption_keys"].append(
                _key(card.encryption_key.raw, card.encryption_key.key_id.hex(), now).model_dump()
            )

    return edit(signed, change, now=now)


def revoke_key(
    signed: SignedDirectory,
    node_id: str,
    key_id: str,
    reason: str,
    at: datetime | None = None,
    *,
    now: datetime,
) -> SignedDirectory:
    """Revoke a key of ``node_id`` from ``at`` (default now): messages signed from then on are refused."""

    def change(data: dict[str, Any]) -> None:
        node = _node(data, node_id)
        key = next(
            (k for kind in ("signing_keys", "encryption_keys") for k in node[kind] if k["key_id"] == key_id), None
        )
        if key is None:
            raise ConfigError(f"{node_id} has no key {key_id}")
        key["revoked_at"], key["revocation_reason"] = at or now, reason

    return edit(signed, change, now=now)


def sign(signed: SignedDirectory, key: SigningKey) -> SignedDirectory:
    """Add a signature. Whether it counts is the verifier's decision: the authorities of the version a node holds
    sign the next one, so when a version replaces the authorities, the outgoing ones sign it."""
    read(signed)  # never sign a body that does not decode
    return DirectoryDocument(signed).sign(key).signed
