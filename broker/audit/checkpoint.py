"""Signed checkpoints of the evidence log: its size and Merkle root at an instant, signed by the auditor.

A checkpoint is a small JSON document (canonical: sorted keys, no spaces). The auditor signs, with its node key,
the context ``op7 audit checkpoint v1`` and 0x00 followed by the canonical JSON of every field but the signature.
Checkpoints are kept in the log's store and published on the checkpoint topic, where anyone can hold the auditor to
them: a log rewritten afterwards no longer has the root a checkpoint signed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from broker.audit.entry import canonical_json
from broker.audit.history import DirectoryHistory
from broker.errors import DecodeError, VerificationError
from broker.models.directory import Role
from broker.wire.envelope import NodeIdentity

__all__ = ["CHECKPOINT_CONTEXT", "CHECKPOINT_FORMAT", "Checkpoint"]

CHECKPOINT_CONTEXT = b"op7 audit checkpoint v1\x00"
CHECKPOINT_FORMAT = "op7-audit-checkpoint/1"
#: A signing key's id: the first 8 bytes of its SHA-256, in hex.
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Checkpoint:
    """The log of ``size`` entries has Merkle root ``root`` (RFC 9162 MTH over the entries' leaf hashes), as the
    auditor ``auditor`` signed at ``at`` with its key ``key_id``."""

    network: str | None
    auditor: str
    key_id: str
    size: int
    root: bytes
    at: datetime
    signature: bytes = field(default=b"", repr=False)

    def _fields(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "network": self.network,
            "auditor": self.auditor,
            "key_id": self.key_id,
            "size": self.size,
            "root": self.root.hex(),
            "at": self.at.isoformat(),
        }

    def signed_part(self) -> bytes:
        return CHECKPOINT_CONTEXT + canonical_json(self._fields())

    def to_bytes(self) -> bytes:
        return canonical_json({**self._fields(), "signature": base64.b64encode(self.signature).decode()})

    @classmethod
    def sign(cls, identity: NodeIdentity, size: int, root: bytes, at: datetime) -> Checkpoint:
        unsigned = cls(identity.network, identity.node_id, identity.key.public.key_id.hex(), size, root, at)
        return replace(unsigned, signature=identity.key.sign(unsigned.signed_part()))

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse a checkpoint; :class:`DecodeError` naming the field that is wrong."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"checkpoint is not JSON: {exc}", reason="bad-checkpoint") from None
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise DecodeError(f"not an op7 checkpoint (format {CHECKPOINT_FORMAT})", reason="bad-checkpoint")
        try:
            checkpoint = cls(
                network=_optional_text(doc, "network"),
                auditor=_text(doc, "auditor"),
                key_id=_text(doc, "key_id"),
                size=_size(doc),
                root=bytes.fromhex(_text(doc, "root")),
                at=datetime.fromisoformat(_text(doc, "at")),
                signature=base64.b64decode(_text(doc, "signature"), validate=True),
            )
        except (ValueError, binascii.Error) as exc:
            raise DecodeError(f"checkpoint: {exc}", reason="bad-checkpoint") from None
        if len(checkpoint.root) != 32 or checkpoint.at.tzinfo is None:
            raise DecodeError("checkpoint: root must be 32 bytes and at a UTC instant", reason="bad-checkpoint")
        if not _KEY_ID.fullmatch(checkpoint.key_id):
            raise DecodeError(f"checkpoint: key_id {checkpoint.key_id!r} is not a key id", reason="bad-checkpoint")
        return checkpoint

    def verify(self, history: DirectoryHistory) -> None:
        """The signature, by a key the auditor held when it signed, of a node that is an auditor (when the
        directory says roles); :class:`VerificationError` otherwise."""
        if history.network is not None and self.network != history.network:
            raise VerificationError(
                f"checkpoint of size {self.size} is for network {self.network!r}, not {history.network!r}",
                reason="wrong-network",
            )
        key = history.key_at(self.auditor, bytes.fromhex(self.key_id), self.at)
        key.verify(self.signature, self.signed_part())
        version = history.in_force(self.at)
        entry = version.directory.node(self.auditor) if version else None
        if entry is not None and Role.AUDITOR not in entry.roles:
            raise VerificationError(
                f"checkpoint of size {self.size} signed by {self.auditor}, which is not an auditor in the directory",
                reason="not-an-auditor",
            )

    def describe(self) -> str:
        return f"checkpoint of size {self.size} signed by {self.auditor} at {self.at:%Y-%m-%dT%H:%M:%SZ}"


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} {value!r} is not text")
    return value


def _optional_text(doc: dict[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _text(doc, name)


def _size(doc: dict[str, Any]) -> int:
    size = doc.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size {size!r} is not a number of entries")
    return size
