"""What the auditor makes of one record: a :class:`Draft` of its entry, with the outcome of verifying it.

Every record becomes an entry, whatever it holds: a verified message with the metadata its signed header gives, a
refused one with the reason (and the sender its unverified prefix claims, called so), a directory version, a node's
quarantine account. Nothing is opened: a sealed payload stays ciphertext, and a payload is never decoded here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from typing import Any

from broker.audit.entry import Draft, Kind, Outcome
from broker.audit.history import DirectoryHistory
from broker.audit.meta import envelope_meta
from broker.errors import MessageError
from broker.node.topics import DIRECTORY, QUARANTINE, TopicLayout
from broker.transport.base import Record
from broker.trust.directory import DirectoryDocument
from broker.wire.envelope import parse_frame

__all__ = ["Judge"]

log = logging.getLogger("op7.audit")


class Judge:
    """Judges records of the topics of ``layout`` against the directory ``history``."""

    def __init__(self, history: DirectoryHistory, layout: TopicLayout) -> None:
        self.history = history
        self.layout = layout

    def kind(self, topic: str) -> Kind:
        short = self.layout.short(topic)
        if short == DIRECTORY:
            return Kind.DIRECTORY
        if short.split(".")[0] == QUARANTINE:
            return Kind.QUARANTINE
        return Kind.MESSAGE

    def draft(self, record: Record) -> Draft:
        """The record's entry, never an exception: whatever a record holds, the log keeps it with its outcome."""
        kind = self.kind(record.topic)
        try:
            if not record.value:
                return _draft(record, kind, Outcome.REFUSED, "tombstone", "an empty record (a Kafka tombstone)", {})
            if kind is Kind.DIRECTORY:
                return self._directory(record)
            if kind is Kind.QUARANTINE:
                return self._quarantine(record)
            verified = self.history.verify(record.value)
            return _draft(record, kind, Outcome.VERIFIED, None, None, envelope_meta(verified.envelope))
        except MessageError as exc:
            return _draft(record, kind, Outcome.REFUSED, exc.reason, str(exc), _claimed(record.value))
        except Exception as exc:  # a record must never stop the log; it is kept with what went wrong
            log.exception("internal error judging %s[%d]@%d", record.topic, record.partition, record.offset)
            return _draft(record, kind, Outcome.REFUSED, "internal-error", repr(exc)[:500], _claimed(record.value))

    def _directory(self, record: Record) -> Draft:
        """A version the history holds or takes now; a fork, a forgery, a version before the chain from the anchor
        starts and one that waits for the version before it are refused (offer raises)."""
        self.history.offer(record.value)
        directory = DirectoryDocument.from_bytes(record.value).directory
        meta = {
            "network": directory.network,
            "version": directory.version,
            "issued_at": directory.issued_at.isoformat(),
            "nodes": sorted(n.node_id for n in directory.nodes),
        }
        return _draft(record, Kind.DIRECTORY, Outcome.VERIFIED, None, None, meta)

    def _quarantine(self, record: Record) -> Draft:
        """A node's account of a record it refused: unsigned, kept as that node's statement."""
        short = self.layout.short(record.topic)
        by = short.partition(".")[2] or None
        try:
            account = json.loads(record.value)
            if not isinstance(account, dict):
                raise TypeError("it is not a JSON object")
            reason, detail = account["reason"], account["detail"]
            if not isinstance(reason, str) or not isinstance(detail, str):
                raise TypeError("reason and detail must be text")
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"not a quarantine entry: {exc}"
            return _draft(record, Kind.QUARANTINE, Outcome.REFUSED, "bad-quarantine-entry", problem, {})
        meta: dict[str, Any] = {
            "quarantined_by": by,
            "origin_topic": account.get("topic"),
            "origin_partition": account.get("partition"),
            "origin_offset": account.get("offset"),
            "consumer_group": account.get("consumer_group"),
            "value_sha256": account.get("value_sha256"),
        }
        kept = account.get("value") or account.get("value_prefix")
        if isinstance(kept, str):
            with contextlib.suppress(binascii.Error, ValueError):
                meta |= _claimed(base64.b64decode(kept, validate=True))
        return _draft(record, Kind.QUARANTINE, Outcome.VERIFIED, reason[:100], detail[:1000], meta)


def _draft(
    record: Record, kind: Kind, outcome: Outcome, reason: str | None, detail: str | None, meta: dict[str, Any]
) -> Draft:
    return Draft(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp_ms,
        record.key,
        record.value,
        kind,
        outcome,
        reason,
        detail,
        meta,
    )


def _claimed(value: bytes) -> dict[str, Any]:
    """The sender a frame's unverified prefix names, as ``claimed_sender`` (nothing when it names none)."""
    try:
        return {"claimed_sender": parse_frame(value).sender}
    except MessageError:
        return {}
