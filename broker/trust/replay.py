"""Freshness and replay protection: refuse stale or future-dated messages, hand each message id over once.

The set of handled message ids is kept in SQLite (a file under the node's home, or memory), so that a
message is never handed to a handler twice, across restarts too. Ids are kept for longer than the
freshness window; anything older is refused as stale anyway, so the table stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from broker._sqlite import open_database
from broker.errors import PolicyError
from broker.models import Envelope

__all__ = ["Freshness", "ReplayGuard"]


@dataclass(frozen=True)
class Freshness:
    """How old (and how far in the future) a message's ``created_at`` may be when it is received."""

    max_age: timedelta = timedelta(days=7)
    max_skew: timedelta = timedelta(minutes=5)

    def check(self, envelope: Envelope, now: datetime) -> None:
        age = now - envelope.created_at
        if age > self.max_age:
            raise PolicyError(
                f"message created {envelope.created_at:%Y-%m-%dT%H:%M:%SZ} is older than the "
                f"{self.max_age} freshness window",
                reason="stale",
            )
        if -age > self.max_skew:
            raise PolicyError(
                f"message created {envelope.created_at:%Y-%m-%dT%H:%M:%SZ} is dated more than "
                f"{self.max_skew} in the future",
                reason="from-the-future",
            )


class ReplayGuard:
    """Message ids this node has handled, with the digest of the bytes it handled."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = open_database(
            path,
            "CREATE TABLE IF NOT EXISTS handled (sender TEXT NOT NULL, message_id TEXT NOT NULL, sha256 BLOB NOT NULL, "
            "created_at INTEGER NOT NULL, handled_at INTEGER NOT NULL, PRIMARY KEY (sender, message_id));",
            "replay store",
        )

    def digest_of(self, sender: str, message_id: str) -> bytes | None:
        """The digest of the bytes ``sender`` sent under ``message_id`` that were handled, or None.

        Scoped by sender: one node cannot block another's message by reusing its id.
        """
        row = self._db.execute(
            "SELECT sha256 FROM handled WHERE sender = ? AND message_id = ?", (sender, message_id)
        ).fetchone()
        return bytes(row[0]) if row else None

    def remember(self, envelope: Envelope, sha256: bytes, now: datetime) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO handled VALUES (?, ?, ?, ?, ?)",
            (
                envelope.sender,
                envelope.message_id,
                sha256,
                int(envelope.created_at.timestamp() * 1e6),
                int(now.timestamp() * 1e6),
            ),
        )

    def prune(self, created_before: datetime) -> int:
        """Forget ids of messages created before ``created_before`` (they are refused as stale anyway)."""
        cursor = self._db.execute("DELETE FROM handled WHERE created_at < ?", (int(created_before.timestamp() * 1e6),))
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
