"""What an adapter run did, kept in the node's home: each record it sent (its signed frame, its loss report) and
each received message it delivered to the local system.

The frame of a record is written here, durably, before it leaves (``Node.publish``'s ``before_send``): after a
crash, a record found ``signed`` is sent again with these very bytes, which receivers that had it recognise as a
copy. A record found ``sent`` is not sent again. Loss reports stay under the message id (``op7 adapter losses ID``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker._sqlite import immediate, open_database

__all__ = ["Ledger", "Sent", "State"]

_SCHEMA = """
PRAGMA synchronous=FULL;
CREATE TABLE IF NOT EXISTS sent (
    message_id TEXT PRIMARY KEY, source TEXT NOT NULL, state TEXT NOT NULL, frame BLOB,
    report TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (
    message_id TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
    last_error TEXT, report TEXT NOT NULL, at INTEGER NOT NULL,
    body BLOB, media_type TEXT, sender TEXT, PRIMARY KEY (message_id, target));
"""


class State(StrEnum):
    SIGNED = "signed"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Sent:
    message_id: str
    source: str
    state: State
    frame: bytes | None
    report: dict[str, Any]
    at: datetime


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


class Ledger:
    """One SQLite file per node and adapter, in the node's home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection = open_database(path, _SCHEMA, "adapter ledger")

    def close(self) -> None:
        self._db.close()

    def get(self, message_id: str) -> Sent | None:
        row = self._db.execute(
            "SELECT message_id, source, state, frame, report, at FROM sent WHERE message_id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return None
        return Sent(
            row[0], row[1], State(row[2]), row[3], json.loads(row[4]), datetime.fromtimestamp(row[5] / 1e6, UTC)
        )

    def signed(self, message_id: str, source: str, frame: bytes, report: dict[str, Any], at: datetime) -> None:
        """The record's frame, before it is sent."""
        with immediate(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?, ?)",
                (message_id, source, State.SIGNED.value, frame, json.dumps(report), _us(at)),
            )

    def mark(self, message_id: str, state: State, at: datetime) -> None:
        with immediate(self._db) as db:
            db.execute("UPDATE sent SET state = ?, at = ? WHERE message_id = ?", (state.value, _us(at), message_id))

    def waiting(self) -> list[Sent]:
        """Records signed and not known to be sent: what a crash may have left."""
        ids = [r[0] for r in self._db.execute("SELECT message_id FROM sent WHERE state = 'signed' ORDER BY at")]
        return [s for s in (self.get(i) for i in ids) if s is not None]

    def report(self, message_id: str) -> dict[str, Any] | None:
        """The loss report kept under ``message_id``: of a record sent, else of a message delivered."""
        sent = self.get(message_id)
        if sent is not None:
            return sent.report
        row = self._db.execute("SELECT report FROM delivered WHERE message_id = ? LIMIT 1", (message_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def delivered(
        self,
        message_id: str,
        target: str,
        state: str,
        attempts: int,
        error: str | None,
        report: dict[str, Any],
        at: datetime,
        kept: tuple[bytes, str, str] | None = None,
    ) -> None:
        """A delivery's outcome; ``kept`` (body, media type, sender) for one that failed for good, to send again
        with ``op7 adapter redeliver``."""
        body, media_type, sender = kept or (None, None, None)
        with immediate(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO delivered VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, target, state, attempts, error, json.dumps(report), _us(at), body, media_type, sender),
            )

    def failed_deliveries(self, target: str) -> list[tuple[str, bytes, str, str, dict[str, Any]]]:
        """Deliveries to ``target`` that failed for good and kept their body: (message id, body, media type,
        sender, report), oldest first."""
        rows = self._db.execute(
            "SELECT message_id, body, media_type, sender, report FROM delivered "
            "WHERE target = ? AND state = 'failed' AND body IS NOT NULL ORDER BY at",
            (target,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def deliveries(self, *, only_failed: bool = False) -> list[dict[str, Any]]:
        """Each delivery to the local system, newest first: message id, target, state, attempts, last error."""
        where = "WHERE state = 'failed'" if only_failed else ""
        rows = self._db.execute(
            f"SELECT message_id, target, state, attempts, last_error, at FROM delivered {where} ORDER BY at DESC"  # noqa: S608 (a fixed clause)
        ).fetchall()
        return [
            {
                "message_id": r[0],
                "target": r[1],
                "state": r[2],
                "attempts": r[3],
                "last_error": r[4],
                "at": datetime.fromtimestamp(r[5] / 1e6, UTC).isoformat(timespec="seconds"),
            }
            for r in rows
        ]

    def delivery_state(self, message_id: str, target: str) -> str | None:
        row = self._db.execute(
            "SELECT state FROM delivered WHERE message_id = ? AND target = ?", (message_id, target)
        ).fetchone()
        return None if row is None else str(row[0])
