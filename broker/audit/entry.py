"""One entry of the evidence log: a record as the auditor read it, what verifying it showed, and its place in the log.

An entry keeps the record's exact bytes (a sealed message stays ciphertext: the auditor holds no key that opens it)
and the metadata its verification established. Its leaf hash (RFC 9162, ``SHA-256(0x00 || leaf data)``) covers
every field, the bytes through their SHA-256, and the leaf hash of the entry before it: the entries form one hash
chain as well as one Merkle tree, so that an entry rewritten with its stored hash is named by the entry after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from broker.wire import merkle

__all__ = ["GENESIS", "LEAF_CONTEXT", "Draft", "Entry", "Kind", "Outcome"]

#: Domain separation of the leaf data: an entry's hash can never be taken for another structure's.
LEAF_CONTEXT = b"op7 audit entry v1\x00"
#: What the first entry names as the entry before it.
GENESIS = bytes(32)


class Kind(StrEnum):
    """What a record is, by the topic it was read from."""

    MESSAGE = "message"  # an op7 frame (alerts, exchanges, inboxes)
    DIRECTORY = "directory"  # a signed directory version
    QUARANTINE = "quarantine"  # a node's account of a record it refused
    CHECKPOINT = "checkpoint"  # an auditor's signed checkpoint


class Outcome(StrEnum):
    VERIFIED = "verified"
    REFUSED = "refused"


@dataclass(frozen=True)
class Draft:
    """A record read and judged, before the log gives it a place."""

    topic: str
    partition: int
    offset: int
    #: The record's timestamp (Kafka's, milliseconds since the epoch).
    record_ms: int
    key: bytes | None
    value: bytes = field(repr=False)
    kind: Kind
    outcome: Outcome
    #: The refusal reason (a code, e.g. ``bad-signature``) and its text; None for a verified record.
    reason: str | None = None
    detail: str | None = None
    #: What verification established (JSON values only): for a message, its signed header's fields; for a refused
    #: frame, ``claimed_sender`` (read from the unverified prefix, and called so); for a quarantine entry, the
    #: quarantining node and the reason it gave.
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def coordinates(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


@dataclass(frozen=True)
class Entry(Draft):
    """A draft at its place: ``index`` in the log, when it was logged, the leaf hash of the entry before it, and
    its own leaf hash as stored (:meth:`computed_leaf` recomputes it from the fields)."""

    index: int = 0
    logged_at: datetime = datetime.min
    previous: bytes = GENESIS
    leaf: bytes = b""

    @classmethod
    def place(cls, draft: Draft, index: int, logged_at: datetime, previous: bytes) -> Entry:
        """``draft`` as entry ``index`` after the entry whose leaf hash is ``previous``, its leaf hash computed."""
        drafted = {f.name: getattr(draft, f.name) for f in fields(Draft)}
        entry = cls(**drafted, index=index, logged_at=logged_at, previous=previous)
        return entry.with_leaf(entry.computed_leaf())

    def with_leaf(self, leaf: bytes) -> Entry:
        return replace(self, leaf=leaf)

    def leaf_data(self) -> bytes:
        """The bytes the leaf hash is taken over: the context, then canonical JSON of every field."""
        content = {
            "index": self.index,
            "logged_at": self.logged_at.isoformat(),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "record_ms": self.record_ms,
            "key_sha256": hashlib.sha256(self.key).hexdigest() if self.key is not None else None,
            "value_sha256": hashlib.sha256(self.value).hexdigest(),
            "value_length": len(self.value),
            "kind": self.kind.value,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "detail": self.detail,
            "meta": dict(self.meta),
            "previous": self.previous.hex(),
        }
        return LEAF_CONTEXT + canonical_json(content)

    def computed_leaf(self) -> bytes:
        return merkle.leaf_hash(self.leaf_data())


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no spaces, ASCII (escaped, so that any string, a lone surrogate included, has one
    text): one text for one value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
