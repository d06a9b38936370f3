"""The state of every directed exchange a node sent or received, with its history (SQLite).

An exchange is one directed message and what happened to it: for an outgoing request, sent, delivered (a
signed receipt came back), answered, rejected, overdue, closed; for an incoming one, received, answered,
closed. Every change is an event with its time, so that ``op7 exchanges show`` tells the whole story.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker._sqlite import immediate, open_database
from broker.errors import ConfigError

__all__ = ["Direction", "Event", "ExchangeRecord", "ExchangeState", "ExchangeStore"]


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


class ExchangeState(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    RECEIVED = "received"
    ANSWERED = "answered"
    REJECTED = "rejected"
    OVERDUE = "overdue"
    UNDELIVERABLE = "undeliverable"
    CLOSED = "closed"


#: States in which an outgoing exchange still waits for something.
OPEN_OUT = (ExchangeState.SENT, ExchangeState.DELIVERED, ExchangeState.ACCEPTED, ExchangeState.OVERDUE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    message_id TEXT PRIMARY KEY, direction TEXT NOT NULL, peer TEXT NOT NULL, message_type TEXT NOT NULL,
    case_id TEXT, conversation_id TEXT, in_reply_to TEXT, state TEXT NOT NULL, deadline INTEGER,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
    next_attempt_at INTEGER, sha256 BLOB NOT NULL, frame BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_case ON exchanges (case_id);
CREATE INDEX IF NOT EXISTS exchanges_reply ON exchanges (in_reply_to);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, at INTEGER NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL, related_message_id TEXT
);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id);
CREATE TABLE IF NOT EXISTS receipts_sent (
    received_message_id TEXT NOT NULL, sender TEXT NOT NULL, frame BLOB NOT NULL,
    PRIMARY KEY (sender, received_message_id)
);
CREATE TABLE IF NOT EXISTS reports_sent (
    sender TEXT NOT NULL, sha256 BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sender, sha256)
);
CREATE INDEX IF NOT EXISTS reports_sent_at ON reports_sent (sender, at);
"""


def _us(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1_000_000)


def _dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, UTC)


def _at(us: int) -> datetime:
    """A NOT NULL time column."""
    return datetime.fromtimestamp(us / 1_000_000, UTC)


@dataclass(frozen=True)
class ExchangeRecord:
    message_id: str
    direction: Direction
    peer: str
    message_type: str
    case_id: str | None
    conversation_id: str | None
    in_reply_to: str | None
    state: ExchangeState
    deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    sha256: bytes
    frame: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "direction": self.direction.value,
            "peer": self.peer,
            "message_type": self.message_type,
            "case_id": self.case_id,
            "conversation_id": self.conversation_id,
            "in_reply_to": self.in_reply_to,
            "state": self.state.value,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "attempts": self.attempts,
            "sha256": self.sha256.hex(),
        }


@dataclass(frozen=True)
class Event:
    message_id: str
    at: datetime
    state: str
    detail: str
    related_message_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "state": self.state,
            "detail": self.detail,
            "related_message_id": self.related_message_id,
        }


class ExchangeStore:
    """Exchanges, events and the receipts this node sent (to send the same one again for a resend)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = open_database(path, _SCHEMA, "exchange store")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction around several statements (the connection is in autocommit mode): all of them are
        committed, or none when one fails. IMMEDIATE takes the write lock at once, so what is read inside
        (the state a move starts from) cannot change before the write."""
        with immediate(self._db) as db:
            yield db

    def add(
        self,
        *,
        message_id: str,
        direction: Direction,
        peer: str,
        message_type: str,
        case_id: str | None,
        conversation_id: str | None,
        in_reply_to: str | None,
        state: ExchangeState,
        deadline: datetime | None,
        sha256: bytes,
        frame: bytes,
        now: datetime,
        next_attempt_at: datetime | None = None,
        detail: str = "",
    ) -> bool:
        """Record a new exchange with its first event; False if it is already known (a resend or redelivery)."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO exchanges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    message_id,
                    direction.value,
                    peer,
                    message_type,
                    case_id,
                    conversation_id,
                    in_reply_to,
                    state.value,
                    _us(deadline),
                    _us(now),
                    _us(now),
                    _us(next_attempt_at),
                    sha256,
                    frame,
                ),
            )
            if cursor.rowcount:
                self.event(message_id, state.value, detail or f"{direction.value} {message_type}", now)
        return bool(cursor.rowcount)

    def event(self, message_id: str, state: str, detail: str, at: datetime, related: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO events (message_id, at, state, detail, related_message_id) VALUES (?, ?, ?, ?, ?)",
            (message_id, _us(at), state, detail, related),
        )

    def move(
        self,
        message_id: str,
        state: ExchangeState,
        detail: str,
        at: datetime,
        related: str | None = None,
        *,
        only_from: tuple[ExchangeState, ...] | None = None,
    ) -> bool:
        """Change an exchange's state (if it is in one of ``only_from``), recording the event either way.

        The event and the new state are written in one transaction: both or neither."""
        with self._transaction() as db:
            record = self.get(message_id)
            if record is None:
                return False
            if only_from is not None and record.state not in only_from:
                # Kept in the history, marked as not changing the state (e.g. a receipt after the answer).
                self.event(message_id, f"{state.value} (no change)", detail, at, related)
                return False
            self.event(message_id, state.value, detail, at, related)
            db.execute(
                "UPDATE exchanges SET state = ?, updated_at = ? WHERE message_id = ?",
                (state.value, _us(at), message_id),
            )
            return True

    def retried(self, message_id: str, at: datetime, next_attempt_at: datetime | None) -> None:
        self._db.execute(
            "UPDATE exchanges SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE message_id = ?",
            (_us(next_attempt_at), _us(at), message_id),
        )

    def stop_retrying(self, message_id: str) -> None:
        self._db.execute("UPDATE exchanges SET next_attempt_at = NULL WHERE message_id = ?", (message_id,))

    def _rows(self, where: str = "1", args: tuple[Any, ...] = ()) -> list[ExchangeRecord]:
        rows = self._db.execute(f"SELECT * FROM exchanges WHERE {where} ORDER BY created_at", args).fetchall()  # noqa: S608
        return [
            ExchangeRecord(
                r[0],
                Direction(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                ExchangeState(r[7]),
                _dt(r[8]),
                _at(r[9]),
                _at(r[10]),
                r[11],
                _dt(r[12]),
                bytes(r[13]),
                bytes(r[14]),
            )
            for r in rows
        ]

    def get(self, message_id: str) -> ExchangeRecord | None:
        found = self._rows("message_id = ?", (message_id,))
        return found[0] if found else None

    def find(self, ref: str) -> ExchangeRecord | None:
        """An exchange by message id, or by a unique start or end of it (what a person types); ConfigError if
        ambiguous. UUIDv7 ids start with the time, so the ends (random bits, e.g. the last group) tell ids apart."""
        ref = ref.strip().lower()
        if not ref or any(c not in "0123456789abcdef-" for c in ref):
            raise ConfigError(f"{ref!r} is not a message id, nor the start or end of one (hex digits and '-')")
        n = len(ref)
        found = self._rows("substr(message_id, 1, ?) = ? OR substr(message_id, -?) = ?", (n, ref, n, ref))
        if len(found) > 1:
            ids = ", ".join(r.message_id for r in found[:5])
            raise ConfigError(f"{ref!r} matches {len(found)} exchanges ({ids}); give more of the message id")
        return found[0] if found else None

    def select(self, *, case_id: str | None = None, overdue: bool = False) -> list[ExchangeRecord]:
        where, args = ["1"], []
        if case_id is not None:
            where.append("case_id = ?")
            args.append(case_id)
        if overdue:
            where.append("state = ?")
            args.append(ExchangeState.OVERDUE.value)
        return self._rows(" AND ".join(where), tuple(args))

    def conversation(self, record: ExchangeRecord) -> list[ExchangeRecord]:
        """The exchange, what it answers and what answers it, oldest first."""
        # A NULL in_reply_to matches nothing in IN, so one query serves both cases.
        return self._rows(
            "message_id IN (?, ?) OR in_reply_to = ?", (record.message_id, record.in_reply_to, record.message_id)
        )

    def events_in_state(self, state: str) -> list[Event]:
        """Every event of one kind (e.g. ``acknowledged``), newest first, whatever message it is about."""
        rows = self._db.execute(
            "SELECT message_id, at, state, detail, related_message_id FROM events WHERE state = ? ORDER BY id DESC",
            (state,),
        ).fetchall()
        return [Event(r[0], _at(r[1]), r[2], r[3], r[4]) for r in rows]

    def events(self, message_id: str) -> list[Event]:
        rows = self._db.execute(
            "SELECT message_id, at, state, detail, related_message_id FROM events WHERE message_id = ? ORDER BY id",
            (message_id,),
        ).fetchall()
        return [Event(r[0], _at(r[1]), r[2], r[3], r[4]) for r in rows]

    def due_for_resend(self, now: datetime) -> list[ExchangeRecord]:
        # By the retry schedule, not the state: an overdue exchange without a receipt is still resent.
        return self._rows("direction = 'out' AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?", (_us(now),))

    def handled(self, sender: str, message_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM events WHERE message_id = ? AND state = 'handled' AND detail = ?", (message_id, sender)
        ).fetchone()
        return row is not None

    def mark_handled(self, sender: str, message_id: str, at: datetime) -> None:
        self.event(message_id, "handled", sender, at)

    def past_deadline(self, now: datetime) -> list[ExchangeRecord]:
        states = ", ".join(f"'{s.value}'" for s in OPEN_OUT if s is not ExchangeState.OVERDUE)
        return self._rows(
            f"direction = 'out' AND deadline IS NOT NULL AND deadline < ? AND state IN ({states})", (_us(now),)
        )

    def keep_receipt(self, sender: str, received_message_id: str, frame: bytes) -> None:
        self._db.execute("INSERT OR IGNORE INTO receipts_sent VALUES (?, ?, ?)", (received_message_id, sender, frame))

    def claim_report(self, sender: str, sha256: bytes, now: datetime, *, limit: int, window: timedelta) -> str | None:
        """Claim the one error report about the frame ``sha256`` from ``sender``: None when it may be sent (and it is
        recorded as sent), else why not: ``already-reported``, or ``rate-limited`` when ``limit`` reports went to
        ``sender`` within ``window`` before ``now``. Kept across restarts, in one transaction."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM reports_sent WHERE sender = ? AND sha256 = ?", (sender, sha256)).fetchone():
                return "already-reported"
            (recent,) = db.execute(
                "SELECT count(*) FROM reports_sent WHERE sender = ? AND at > ?", (sender, _us(now - window))
            ).fetchone()
            if recent >= limit:
                return "rate-limited"
            db.execute("INSERT INTO reports_sent VALUES (?, ?, ?)", (sender, sha256, _us(now)))
            return None

    def prune_reports(self, before: datetime) -> int:
        """Forget the reports sent before ``before`` (a frame that old is refused as stale; the table stays bounded)."""
        return self._db.execute("DELETE FROM reports_sent WHERE at < ?", (_us(before),)).rowcount

    def release_report(self, sender: str, sha256: bytes) -> None:
        """Forget a claimed report that could not be sent."""
        self._db.execute("DELETE FROM reports_sent WHERE sender = ? AND sha256 = ?", (sender, sha256))

    def receipt_for(self, sender: str, received_message_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT frame FROM receipts_sent WHERE sender = ? AND received_message_id = ?",
            (sender, received_message_id),
        ).fetchone()
        return bytes(row[0]) if row else None
