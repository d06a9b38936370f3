"""``op7.directory``: the network directory (members, keys, roles, permissions) and its signed form."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from broker.models._types import Blob, Name, NodeId, Record, Timestamp
from broker.models.common import Contact

KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
RawKey = Annotated[Blob, Field(min_length=32, max_length=32)]


class Role(StrEnum):
    NATIONAL_NODE = "NationalNode"
    OPERATIONS_CENTRE = "OperationsCentre"
    AUDITOR = "Auditor"
    NETWORK_AUTHORITY = "NetworkAuthority"


class KeyEntry(Record):
    key_id: KeyId
    public_key: RawKey
    valid_from: Timestamp
    valid_until: Timestamp | None = None
    revoked_at: Timestamp | None = None
    revocation_reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _window(self) -> KeyEntry:
        if hashlib.sha256(self.public_key).digest()[:8].hex() != self.key_id:
            raise ValueError(f"key_id {self.key_id} is not the key id of its public key")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until is not after valid_from")
        if (self.revoked_at is None) != (self.revocation_reason is None):
            raise ValueError("a revocation has both a time and a reason")
        return self

    def problem_at(self, at: datetime) -> tuple[str, str] | None:
        """Why this key cannot be used at ``at`` as (reason code, text); None when it can."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return (
                "key-revoked",
                f"key {self.key_id} was revoked at {self.revoked_at:%Y-%m-%dT%H:%M:%SZ}: {self.revocation_reason}",
            )
        if at < self.valid_from:
            return "key-not-yet-valid", f"key {self.key_id} is valid from {self.valid_from:%Y-%m-%dT%H:%M:%SZ}"
        if self.valid_until is not None and at > self.valid_until:
            return "key-expired", f"key {self.key_id} expired at {self.valid_until:%Y-%m-%dT%H:%M:%SZ}"
        return None


class NodeEntry(Record):
    node_id: NodeId
    agency: Name
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    signing_keys: tuple[KeyEntry, ...]
    encryption_keys: tuple[KeyEntry, ...] = ()
    allowed_types: tuple[str, ...] = ()
    contact: Contact | None = None

    @model_validator(mode="after")
    def _unique_keys(self) -> NodeEntry:
        ids = [k.key_id for k in (*self.signing_keys, *self.encryption_keys)]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{self.node_id} lists a key id twice")
        return self


class Directory(Record):
    network: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")]
    version: Annotated[int, Field(ge=1)]
    issued_at: Timestamp
    threshold: Annotated[int, Field(ge=1)]
    authorities: Annotated[tuple[KeyEntry, ...], Field(min_length=1)]
    nodes: tuple[NodeEntry, ...] = ()
    #: When nodes stop trusting this version (None only in versions written before directories expired).
    expires_at: Timestamp | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Directory:
        if self.expires_at is not None and self.expires_at <= self.issued_at:
            raise ValueError("expires_at is not after issued_at")
        if len({a.public_key for a in self.authorities}) != len(self.authorities):
            raise ValueError("an authority key is listed twice")
        if self.threshold > len(self.authorities):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.authorities)} authority keys")
        ids = [n.node_id for n in self.nodes]
        if len(ids) != len(set(ids)):
            raise ValueError("a node id appears twice")
        return self

    def node(self, node_id: str) -> NodeEntry | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)


class DirectorySignature(Record):
    key_id: KeyId
    signature: Annotated[Blob, Field(min_length=64, max_length=64)]


class SignedDirectory(Record):
    body: Blob
    signatures: tuple[DirectorySignature, ...] = ()

    @model_validator(mode="after")
    def _one_signature_per_key(self) -> SignedDirectory:
        # A key signs a version once: a list padded with copies would only cost its readers signature checks.
        seen: set[str] = set()
        for entry in self.signatures:
            if entry.key_id in seen:
                raise ValueError(f"key {entry.key_id} signs twice; each key signs a directory version once")
            seen.add(entry.key_id)
        return self
