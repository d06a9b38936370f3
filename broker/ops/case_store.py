"""Every alert an operations centre handled, and its operators' acknowledgements (SQLite).

One row per message (its id is the key: a redelivery changes nothing), with the message and the envelope as JSON
and the frame as received, so that the picture of a case (:mod:`broker.ops.cases`) can be folded again at any
time, after a restart too. Rows are never changed: a message read once is kept parsed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from broker._sqlite import immediate, open_database
from broker.models import Envelope, KidnappingAlert, Message

__all__ = ["case_key", "Ack", "AlertDelivery", "CaseStore", "Entry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    message_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, sender TEXT NOT NULL, received_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL, sent_at INTEGER NOT NULL, message TEXT NOT NULL, envelope TEXT NOT NULL,
    frame BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_case ON alerts (case_id);
CREATE TABLE IF NOT EXISTS acknowledgements (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, message_id TEXT NOT NULL, operator TEXT NOT NULL,
    node TEXT NOT NULL, at INTEGER NOT NULL, receipt_id TEXT
);
CREATE INDEX IF NOT EXISTS acknowledgements_case ON acknowledgements (case_id);
CREATE TABLE IF NOT EXISTS store (id TEXT NOT NULL);
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_COLUMNS = "message_id, case_id, sender, received_at, created_at, sent_at, message, envelope, frame"


def _us(at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (at - _EPOCH) // _US


def _at(us: int) -> datetime:
    return _EPOCH + us * _US


class AlertDelivery(Protocol):
    """What the store reads of a delivery (:class:`broker.node.subscription.Delivery` is one)."""

    @property
    def envelope(self) -> Envelope: ...

    @property
    def message(self) -> Message: ...

    @property
    def raw(self) -> bytes: ...


@dataclass(frozen=True)
class Entry:
    """One alert handled: the verified message, its envelope and frame, and when it was received here."""

    case_id: str
    message_id: str
    sender: str
    received_at: datetime
    created_at: datetime
    message: KidnappingAlert
    envelope: Envelope
    raw: bytes


@dataclass(frozen=True)
class Ack:
    """An operator's acknowledgement of a case as it stood at ``message_id``; ``receipt_id`` is the message id of the
    receipt sent for it, if one was."""

    case_id: str
    message_id: str
    operator: str
    node: str
    at: datetime
    receipt_id: str | None


def case_key(sender: str, case_id: str) -> str:
    """A case as the centre keys it: the issuing node's and its own id (``FR.GN/FR-GN-2026-000142``). Case ids are
    chosen by each country: two countries' cases of one id stay two cases, and no node can close, update or hide
    another's case (node ids hold no '/', so the key splits back unambiguously)."""
    return f"{sender}/{case_id}"


class CaseStore:
    """Alerts and acknowledgements of an operations centre; ``path`` None keeps them in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        # One event loop uses it; any_thread lets a test client (or a worker thread of the web server) read it too.
        self._db = open_database(path, _SCHEMA, "case store", any_thread=True)
        with immediate(self._db) as db:
            row = db.execute("SELECT id FROM store").fetchone()
            if row is None:
                row = (secrets.token_hex(6),)
                db.execute("INSERT INTO store (id) VALUES (?)", row)
        #: This store's own id, made with it: the consumer group that fills it is named after it, so a new store
        #: (a lost file, a new centre) reads the alerts topic again from the beginning of its retention.
        self.store_id: str = row[0]
        #: Messages parsed once: rows never change, so this is right whoever else writes the file.
        self._parsed: dict[str, tuple[KidnappingAlert, Envelope]] = {}

    def close(self) -> None:
        self._db.close()

    def add(self, delivery: AlertDelivery, received_at: datetime) -> bool:
        """Keep an alert received at ``received_at`` under its case (:func:`case_key`); False when its message id is
        here already (a redelivery)."""
        return self._add(delivery, received_at)

    def _add(self, delivery: AlertDelivery, received_at: datetime) -> bool:
        message, envelope = delivery.message, delivery.envelope
        if not isinstance(message, KidnappingAlert):
            raise TypeError(f"the case store keeps kidnapping alerts, not {type(message).__name__}")
        row = (
            envelope.message_id,
            case_key(envelope.sender, message.case_id),
            envelope.sender,
            _us(received_at),
            _us(envelope.created_at),
            _us(message.sent_at),
            json.dumps(message.model_dump(mode="json"), ensure_ascii=False),
            json.dumps(envelope.model_dump(mode="json"), ensure_ascii=False),
            bytes(delivery.raw),
        )
        with immediate(self._db) as db:
            cursor = db.execute(f"INSERT OR IGNORE INTO alerts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)  # noqa: S608
        added = bool(cursor.rowcount)
        if added:
            self._parsed[envelope.message_id] = (message, envelope)
        return added

    def entries(self, case_id: str) -> list[Entry]:
        """The alerts of a case, in the order they were stored."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE case_id = ? ORDER BY rowid",  # noqa: S608
            (case_id,),
        ).fetchall()
        return [self._entry(r) for r in rows]

    def all_entries(self) -> dict[str, list[Entry]]:
        """The alerts of every case (case id -> its alerts in the order they were stored), in one query."""
        found: dict[str, list[Entry]] = {}
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM alerts ORDER BY rowid"):  # noqa: S608
            found.setdefault(row[1], []).append(self._entry(row))
        return found

    def case_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT case_id FROM alerts ORDER BY case_id")]

    def _entry(self, row: tuple[Any, ...]) -> Entry:
        message_id = row[0]
        parsed = self._parsed.get(message_id)
        if parsed is None:
            # Valid when stored: validated again as of its time of sending (a birth date is checked against it).
            sent_at = _at(row[5])
            message = KidnappingAlert.model_validate(json.loads(row[6]), context={"now": sent_at})
            parsed = self._parsed[message_id] = (message, Envelope.model_validate(json.loads(row[7])))
        return Entry(row[1], message_id, row[2], _at(row[3]), _at(row[4]), parsed[0], parsed[1], bytes(row[8]))

    def acknowledge(
        self, case_id: str, message_id: str, operator: str, at: datetime, receipt_id: str | None, *, node: str
    ) -> None:
        """Record that ``operator`` of ``node`` acknowledged the case as it stood at ``message_id``."""
        self._db.execute(
            "INSERT INTO acknowledgements (case_id, message_id, operator, node, at, receipt_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (case_id, message_id, operator, node, _us(at), receipt_id),
        )

    def acknowledgements(self, case_id: str) -> list[Ack]:
        """The acknowledgements of a case, oldest first."""
        rows = self._db.execute(
            "SELECT case_id, message_id, operator, node, at, receipt_id FROM acknowledgements"
            " WHERE case_id = ? ORDER BY at, id",
            (case_id,),
        ).fetchall()
        return [Ack(r[0], r[1], r[2], r[3], _at(r[4]), r[5]) for r in rows]

    def all_acknowledgements(self) -> dict[str, list[Ack]]:
        """The acknowledgements of every case, oldest first."""
        found: dict[str, list[Ack]] = {}
        for r in self._db.execute(
            "SELECT case_id, message_id, operator, node, at, receipt_id FROM acknowledgements ORDER BY at, id"
        ):
            found.setdefault(r[0], []).append(Ack(r[0], r[1], r[2], r[3], _at(r[4]), r[5]))
        return found
