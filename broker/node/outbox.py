"""The durable outbox: every outgoing frame is written here before it is sent, and stays until the transport has
acknowledged it.

A frame not acknowledged (the cluster out of reach, a producer that lost its sequence state, a send that took longer
than the delivery timeout) is sent again later with the same bytes: the same message id and signature, so a copy that
did arrive the first time is a duplicate that every receiver's replay store recognises, never a second message. One
row per copy: a directed message goes to each recipient's inbox, and each copy is acknowledged on its own.

A copy the transport refuses for good (a record too large, a topic this node may not write) is kept as ``failed`` for
an operator to see (``op7 outbox list``), retry or drop; it is not retried by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker._sqlite import immediate, open_database

__all__ = ["Outbox", "Outgoing", "State"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    message_id   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    record_key   BLOB,
    frame        BLOB NOT NULL,
    message_type TEXT NOT NULL,
    case_id      TEXT,
    queued_at    REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_attempt REAL,
    last_error   TEXT,
    state        TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (message_id, topic)
);
CREATE INDEX IF NOT EXISTS outbox_queued ON outbox (state, queued_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (topic, record_key);
"""

#: The longest wait between two attempts at one copy.
MAX_BACKOFF = timedelta(seconds=60)


class State(StrEnum):
    #: Not yet acknowledged; sent again until it is.
    PENDING = "pending"
    #: Refused by the transport for good; kept for an operator to retry or drop.
    FAILED = "failed"


@dataclass(frozen=True)
class Outgoing:
    """One copy of a signed frame on its way to one topic."""

    message_id: str
    topic: str
    key: bytes | None
    frame: bytes
    message_type: str
    case_id: str | None
    queued_at: datetime
    attempts: int = 0
    last_attempt: datetime | None = None
    last_error: str | None = None
    state: State = State.PENDING

    @property
    def ident(self) -> tuple[str, str]:
        return self.message_id, self.topic

    def due(self, now: datetime) -> bool:
        """Whether a pending copy's next attempt is due: the wait doubles with each attempt, up to a minute."""
        if self.state is not State.PENDING:
            return False
        if self.last_attempt is None:
            return True
        wait = min(timedelta(seconds=2 ** min(self.attempts, 10)), MAX_BACKOFF)
        return now >= self.last_attempt + wait


def _ts(at: datetime) -> float:
    return at.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Outbox:
    """Frames not yet acknowledged, in a SQLite file (or in memory, for a node without a home: then a retry is
    still the same bytes, but a restart forgets them). Safe to call from several threads of one process."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = open_database(path, _SCHEMA, "outbox", any_thread=True)
        # A row written survives the process's crash; a power cut may take the last ones, as it would the
        # records a broker had not yet replicated. An fsync per message would halve what a node can send.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, copies: Iterable[Outgoing]) -> None:
        """Record ``copies`` durably (one transaction), before any of them is sent."""
        rows = [
            (c.message_id, c.topic, c.key, c.frame, c.message_type, c.case_id, _ts(c.queued_at), c.state.value)
            for c in copies
        ]
        with self._lock, immediate(self._db):
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (message_id, topic, record_key, frame, message_type, case_id, "
                "queued_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def acknowledged(self, idents: Sequence[tuple[str, str]]) -> None:
        """The transport holds these copies durably: they leave the outbox (one transaction)."""
        if not idents:
            return
        with self._lock, immediate(self._db):
            self._db.executemany("DELETE FROM outbox WHERE message_id = ? AND topic = ?", idents)

    def attempted(self, ident: tuple[str, str], at: datetime, error: str, *, permanent: bool = False) -> None:
        """An attempt at this copy failed with ``error``; ``permanent`` marks it failed (no retry by itself)."""
        state = State.FAILED if permanent else State.PENDING
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt = ?, last_error = ?, state = ? "
                "WHERE message_id = ? AND topic = ?",
                (_ts(at), error, state.value, *ident),
            )

    def reopen(self, message_ids: Sequence[str] = ()) -> int:
        """Make failed copies (of ``message_ids``, or all) pending again, due at once; returns how many."""
        where, args = self._which(message_ids)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE outbox SET state = 'pending', last_attempt = NULL WHERE {where}",  # noqa: S608
                args,
            )
        return cursor.rowcount

    def drop(self, message_ids: Sequence[str]) -> int:
        """Give up on every copy of ``message_ids``; returns how many copies were removed."""
        where, args = self._which(message_ids)
        with self._lock:
            return self._db.execute(f"DELETE FROM outbox WHERE {where}", args).rowcount  # noqa: S608

    def copies(self, message_ids: Sequence[str] = (), *, state: State | None = None) -> list[Outgoing]:
        """The copies of ``message_ids`` (or all), oldest first, optionally of one ``state``."""
        where, args = self._which(message_ids)
        if state is not None:
            where += " AND state = ?"
            args = (*args, state.value)
        with self._lock:
            rows = self._db.execute(f"{_SELECT} WHERE {where} ORDER BY queued_at, rowid", args).fetchall()
        return [_outgoing(row) for row in rows]

    def due(self, now: datetime) -> list[Outgoing]:
        """Pending copies whose next attempt is due at ``now``, oldest first. A copy waits while an older one of its
        topic and key (its case) is not due: the copies of one case go in the order they were sent."""
        waiting: set[tuple[str, bytes | None]] = set()
        due = []
        for copy in self.copies(state=State.PENDING):
            key = (copy.topic, copy.key)
            if key in waiting:
                continue
            if copy.due(now):
                due.append(copy)
            else:
                waiting.add(key)
        return due

    def before(self, copy: Outgoing) -> list[Outgoing]:
        """Pending copies of ``copy``'s topic and key (its case) recorded before it, oldest first: they go first."""
        with self._lock:
            rows = self._db.execute(
                f"{_SELECT} WHERE topic = ? AND record_key IS ? AND state = 'pending' AND rowid < "  # noqa: S608
                "(SELECT rowid FROM outbox WHERE message_id = ? AND topic = ?) ORDER BY queued_at, rowid",
                (copy.topic, copy.key, copy.message_id, copy.topic),
            ).fetchall()
        return [_outgoing(row) for row in rows]

    def count(self, state: State = State.PENDING) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM outbox WHERE state = ?", (state.value,)).fetchone()
        return int(row[0])

    @staticmethod
    def _which(message_ids: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        if not message_ids:
            return "1 = 1", ()
        return f"message_id IN ({', '.join('?' * len(message_ids))})", tuple(message_ids)


_SELECT = (
    "SELECT message_id, topic, record_key, frame, message_type, case_id, queued_at, attempts, last_attempt, "
    "last_error, state FROM outbox"
)


def _outgoing(row: tuple[Any, ...]) -> Outgoing:
    message_id, topic, key, frame, message_type, case_id, queued_at, attempts, last, error, state = row
    return Outgoing(
        message_id=message_id,
        topic=topic,
        key=key,
        frame=frame,
        message_type=message_type,
        case_id=case_id,
        queued_at=datetime.fromtimestamp(queued_at, UTC),
        attempts=attempts,
        last_attempt=_dt(last),
        last_error=error,
        state=State(state),
    )
