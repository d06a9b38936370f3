"""Editing the network directory, as a network authority does: create, add and remove nodes, rotate and
revoke keys, renew, sign. Every edit of a signed version starts the next version and drops the signatures,
which must then be gathered again; an unsigned draft keeps its version while it is edited.

Every version expires (``expires_at``): nodes verify nothing with an expired version. A new network's first
version lives :data:`DEFAULT_LIFETIME` unless told otherwise; an edit keeps the lifetime of the version edited
(its ``expires_at - issued_at``), counted from the edit, unless ``expires_in`` gives another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from broker.errors import ConfigError, DecodeError
from broker.models import MESSAGE_MODELS, Contact, message_model
from broker.models.directory import Directory, KeyEntry, NodeEntry, Role, SignedDirectory
from broker.models.inputs import first_problem
from broker.trust.directory_document import DirectoryDocument
from broker.trust.store import PublicKeyCard
from broker.wire.signing import SigningKey

__all__ = [
    "DEFAULT_LIFETIME",
    "add_node",
    "create",
    "edit",
    "read",
    "remove_node",
    "renew",
    "replace_authorities",
    "revoke_key",
    "rotate_key",
    "sign",
]

#: How long a version is in force when nothing says otherwise: a year, so that the authorities renew the
#: directory at least yearly and a node cut off from the topic stops trusting what it holds within a year.
DEFAULT_LIFETIME = timedelta(days=365)


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


def create(
    network: str,
    threshold: int,
    authorities: Iterable[PublicKeyCard],
    *,
    now: datetime,
    expires_in: timedelta = DEFAULT_LIFETIME,
) -> SignedDirectory:
    """Version 1 of a network's directory, unsigned, with its authority keys, in force for ``expires_in``."""
    keys = [_key(c.key.raw, c.key.key_id.hex(), now).model_dump() for c in authorities]
    data = {"network": network, "version": 1, "issued_at": now, "threshold": threshold, "authorities": keys}
    directory = _validated({**data, "nodes": [], "expires_at": now + _lifetime(expires_in)})
    return DirectoryDocument.draft(directory).signed


def _lifetime(period: timedelta) -> timedelta:
    if period <= timedelta(0):
        raise ConfigError(f"a directory must be in force for some time, not {period}")
    return period


def edit(
    signed: SignedDirectory,
    change: Callable[[dict[str, Any]], None],
    *,
    now: datetime,
    expires_in: timedelta | None = None,
) -> SignedDirectory:
    """Apply ``change`` to the directory's data; a signed version becomes the next, unsigned version. It
    expires ``expires_in`` from ``now`` (default: the lifetime of the version edited, or a year)."""
    current = read(signed)
    data = _lists(current.model_dump())
    change(data)
    if signed.signatures:
        data["version"] += 1
    if expires_in is None:
        expires_in = current.expires_at - current.issued_at if current.expires_at else DEFAULT_LIFETIME
    data["issued_at"], data["expires_at"] = now, now + _lifetime(expires_in)
    return DirectoryDocument.draft(_validated(data)).signed


def renew(signed: SignedDirectory, *, now: datetime, expires_in: timedelta | None = None) -> SignedDirectory:
    """The same directory issued again at ``now`` with a new expiry (the next version, if ``signed`` is)."""
    return edit(signed, lambda data: None, now=now, expires_in=expires_in)


def replace_authorities(
    signed: SignedDirectory,
    threshold: int,
    authorities: Iterable[PublicKeyCard],
    *,
    now: datetime,
    expires_in: timedelta | None = None,
) -> SignedDirectory:
    """The network authorities become ``authorities`` with ``threshold``: a threshold of the outgoing authorities
    and one of the incoming must then sign the version (the keys both hold keep their entries)."""
    cards = list(authorities)

    def change(data: dict[str, Any]) -> None:
        held = {a["key_id"]: a for a in data["authorities"]}
        data["threshold"] = threshold
        data["authorities"] = [
            held.get(c.key.key_id.hex()) or _key(c.key.raw, c.key.key_id.hex(), now).model_dump() for c in cards
        ]

    return edit(signed, change, now=now, expires_in=expires_in)


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
    expires_in: timedelta | None = None,
    contact: Contact | None = None,
) -> SignedDirectory:
    """The next version with the node of ``card``; ``contact``, its 24/7 desk, is what its receipts and reminders
    are signed with."""

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
                contact=contact,
            ).model_dump()
        )

    return edit(signed, change, now=now, expires_in=expires_in)


def remove_node(
    signed: SignedDirectory, node_id: str, *, now: datetime, expires_in: timedelta | None = None
) -> SignedDirectory:
    def change(data: dict[str, Any]) -> None:
        _node(data, node_id)
        data["nodes"] = [n for n in data["nodes"] if n["node_id"] != node_id]

    return edit(signed, change, now=now, expires_in=expires_in)


def rotate_key(
    signed: SignedDirectory,
    card: PublicKeyCard,
    overlap: timedelta,
    *,
    now: datetime,
    expires_in: timedelta | None = None,
) -> SignedDirectory:
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

    return edit(signed, change, now=now, expires_in=expires_in)


def revoke_key(
    signed: SignedDirectory,
    node_id: str,
    key_id: str,
    reason: str,
    at: datetime | None = None,
    *,
    now: datetime,
    expires_in: timedelta | None = None,
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

    return edit(signed, change, now=now, expires_in=expires_in)


def sign(signed: SignedDirectory, key: SigningKey) -> SignedDirectory:
    """Add a signature. Whether it counts is the verifier's decision: a version needs a threshold of the
    authorities of the version before it and a threshold of its own, so when a version replaces the authorities,
    both the outgoing and the incoming ones sign it."""
    read(signed)  # never sign a body that does not decode
    return DirectoryDocument(signed).sign(key).signed
