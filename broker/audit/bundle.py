"""Case bundles: every logged message of one case in one file that a court or an oversight body checks offline.

A bundle holds each message's exact signed bytes as logged (sealed content stays ciphertext), the entry that logged
it, the directory versions from the anchor on (to verify every signature by the keys of its time), the auditor's
signed checkpoint, and for each entry its RFC 9162 inclusion proof against that checkpoint. Checking it needs the
file and the network's anchor: no Kafka, no database, no key that opens anything.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import Entry, Kind, Outcome
from broker.audit.history import DirectoryHistory
from broker.audit.meta import envelope_meta
from broker.audit.store import EvidenceStore
from broker.errors import ConfigError, MessageError
from broker.trust.directory import DirectoryAnchor
from broker.wire import merkle

__all__ = ["BUNDLE_FORMAT", "BundleAccount", "case_entries", "export_case", "verify_bundle"]

BUNDLE_FORMAT = "op7-audit-bundle/1"


def case_entries(store: EvidenceStore, case_id: str) -> list[Entry]:
    """The verified messages of ``case_id`` and every message answering one of them (receipts, answers, their
    receipts), in log order; each message once (its first entry)."""
    found: dict[str, Entry] = {}
    batch = [e for e in store.find(case_id=case_id) if _message(e)]
    while batch:
        fresh: dict[str, Entry] = {}
        for entry in batch:  # in log order: the first entry of a message read twice is kept
            if str(entry.meta["message_id"]) not in found:
                fresh.setdefault(str(entry.meta["message_id"]), entry)
        found.update(fresh)
        batch = [e for e in store.find(in_reply_to=list(fresh)) if _message(e)] if fresh else []
    return sorted(found.values(), key=lambda e: e.index)


def _message(entry: Entry) -> bool:
    return entry.kind is Kind.MESSAGE and entry.outcome is Outcome.VERIFIED


def export_case(store: EvidenceStore, history: DirectoryHistory, case_id: str, now: datetime) -> dict[str, Any]:
    """The bundle of ``case_id``, against the log's latest checkpoint, which must cover every entry of the case."""
    entries = case_entries(store, case_id)
    if not entries:
        raise ConfigError(f"case {case_id!r}: no verified message of it is in the evidence log")
    latest = store.latest_checkpoint()
    checkpoint = Checkpoint.from_bytes(latest) if latest else None
    if checkpoint is None or checkpoint.size <= entries[-1].index:
        raise ConfigError(
            f"case {case_id!r}: entry {entries[-1].index} is not covered by a signed checkpoint yet; "
            "let 'op7 audit run' sign one (it does when it stops, and every --checkpoint-interval)"
        )
    if history.anchor is None:
        raise ConfigError("a case bundle needs the network's directory anchor in this home: none is installed")
    leaves = store.leaves(checkpoint.size)
    return {
        "format": BUNDLE_FORMAT,
        "case_id": case_id,
        "network": history.network,
        "exported_at": now.isoformat(),
        "anchor": history.anchor.to_json(),
        "directory": [_b64(v.data) for v in history.versions],
        "checkpoint": checkpoint.to_bytes().decode(),
        "entries": [
            {**entry_json(e), "proof": [h.hex() for h in merkle.inclusion_proof(leaves, e.index)]} for e in entries
        ],
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "index": entry.index,
        "logged_at": entry.logged_at.isoformat(),
        "topic": entry.topic,
        "partition": entry.partition,
        "offset": entry.offset,
        "record_ms": entry.record_ms,
        "key": _b64(entry.key) if entry.key is not None else None,
        "value": _b64(entry.value),
        "kind": entry.kind.value,
        "outcome": entry.outcome.value,
        "reason": entry.reason,
        "detail": entry.detail,
        "meta": dict(entry.meta),
        "previous": entry.previous.hex(),
    }


def entry_from_json(data: Any) -> Entry:
    """An entry of a bundle; ValueError/KeyError/TypeError when a field is missing or malformed."""
    entry = Entry(
        topic=str(data["topic"]),
        partition=int(data["partition"]),
        offset=int(data["offset"]),
        record_ms=int(data["record_ms"]),
        key=base64.b64decode(data["key"], validate=True) if data["key"] is not None else None,
        value=base64.b64decode(data["value"], validate=True),
        kind=Kind(data["kind"]),
        outcome=Outcome(data["outcome"]),
        reason=data["reason"],
        detail=data["detail"],
        meta=dict(data["meta"]),
        index=int(data["index"]),
        logged_at=datetime.fromisoformat(data["logged_at"]),
        previous=bytes.fromhex(data["previous"]),
    )
    return entry.with_leaf(entry.computed_leaf())


@dataclass
class BundleAccount:
    """What checking a bundle showed: a line per message, and every problem."""

    case_id: str
    checkpoint: Checkpoint | None = None
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    anchor_given: bool = True

    @property
    def valid(self) -> bool:
        return self.checkpoint is not None and not self.problems


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a case bundle (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: not an op7 case bundle (format {BUNDLE_FORMAT})")
    return data


def verify_bundle(bundle: dict[str, Any], anchor: DirectoryAnchor | None) -> BundleAccount:
    """Check a bundle against ``anchor`` (None: the anchor the bundle carries, which proves only that the bundle is
    consistent with itself: the account says so)."""
    account = BundleAccount(str(bundle.get("case_id")), anchor_given=anchor is not None)
    try:
        entries = _list(bundle, "entries")
        history = _history(bundle, anchor)
        checkpoint = Checkpoint.from_bytes(str(bundle["checkpoint"]).encode())
        checkpoint.verify(history)
    except (MessageError, ConfigError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        account.problems.append(f"the bundle's directory or checkpoint does not verify: {exc}")
        return account
    account.checkpoint = checkpoint
    if not entries:
        account.problems.append("the bundle holds no message")
    for number, data in enumerate(entries):
        try:
            entry = entry_from_json(data)
            proof = [bytes.fromhex(h) for h in data["proof"]]
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            account.problems.append(f"entry #{number} of the bundle is malformed: {exc!r}")
            continue
        account.lines.append(_check_entry(entry, proof, checkpoint, history, account.problems))
    return account


def _history(bundle: dict[str, Any], anchor: DirectoryAnchor | None) -> DirectoryHistory:
    if anchor is None:
        anchor = DirectoryAnchor.from_json(bundle["anchor"], "the bundle's anchor")
    history = DirectoryHistory(anchor)
    for text in _list(bundle, "directory"):
        history.offer(base64.b64decode(str(text), validate=True))
    return history


def _check_entry(
    entry: Entry, proof: list[bytes], checkpoint: Checkpoint, history: DirectoryHistory, problems: list[str]
) -> str:
    """One line of the account; what does not hold goes to ``problems``."""
    where = f"entry {entry.index}"
    if not merkle.verify_inclusion(entry.leaf, entry.index, checkpoint.size, proof, checkpoint.root):
        problems.append(f"{where}: not in the log the {checkpoint.describe()} (its inclusion proof fails)")
    try:
        verified = history.verify(entry.value)
    except MessageError as exc:
        problems.append(f"{where}: the message does not verify: {exc}")
        return f"{where}: a message that does not verify ({exc.reason})"
    envelope = verified.envelope
    if envelope_meta(envelope) != dict(entry.meta):
        problems.append(f"{where}: the logged header differs from the message's signed header")
    to = ", ".join(envelope.recipients) or "every node (broadcast)"
    content = "content sealed to its recipients (not opened)" if envelope.sealed else "content in clear"
    return (
        f"{envelope.created_at:%Y-%m-%dT%H:%M:%SZ}  {envelope.sender} -> {to}  {envelope.message_type} "
        f"{envelope.message_id}{f' in reply to {envelope.in_reply_to}' if envelope.in_reply_to else ''}; "
        f"{content}; signature verified; logged as entry {entry.index} from {entry.topic} at "
        f"{entry.logged_at:%Y-%m-%dT%H:%M:%SZ}"
    )


def _list(bundle: dict[str, Any], name: str) -> list[Any]:
    value = bundle.get(name)
    if not isinstance(value, list):
        raise ValueError(f"the bundle's {name!r} is not a list")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
