"""Freshness and replay protection: refuse stale or future-dated messages, hand each message id over once.

The set of handled message ids is kept in SQLite (a file under the node's home, or memory), so that a
message is never handed to a handler twice, across restarts too. Ids are kept for longer than the
freshness window; anything older is refused as stale anyway, so the table stays bounded.

Ids are remembered in memory as messages are handled and written in one transaction per batch
(:meth:`ReplayGuard.take` then :meth:`ReplayGuard.write`, or :meth:`ReplayGuard.flush`): a subscription writes once
per fetched batch, in a thread beside the event loop, before it commits the batch's offsets, so one fsync covers the
batch, the loop goes on meanwhile, and a message whose offset is committed is always remembered on disk.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from broker._sqlite import immediate, open_database
from broker.errors import PolicyError
from broker.models import Envelope

__all__ = ["Freshness", "ReplayGuard", "Row"]

#: A handled message as the replay store keeps it: sender, message id, SHA-256, created and handled (microseconds).
Row = tuple[str, str, bytes, int, int]


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
        #: Remembered, not yet taken to be written: (sender, message id) -> the row to write.
        self._unflushed: dict[tuple[str, str], Row] = {}
        #: Taken, being written.
        self._writing: dict[tuple[str, str], Row] = {}
        # Writes go through a connection of their own, which a thread may use (one at a time: the lock), so that the
        # event loop reads on while a batch is made durable; a store in memory has one connection for both.
        self._writer = self._db if path is None else open_database(path, "", "replay store", any_thread=True)
        self._write_lock = threading.Lock()

    def digest_of(self, sender: str, message_id: str) -> bytes | None:
        """The digest of the bytes ``sender`` sent under ``message_id`` that were handled, or None.

        Scoped by sender: one node cannot block another's message by reusing its id. Ids remembered but not yet
        flushed count too.
        """
        key = (sender, message_id)
        unflushed = self._unflushed.get(key) or self._writing.get(key)
        if unflushed is not None:
            return unflushed[2]
        row = self._db.execute(
            "SELECT sha256 FROM handled WHERE sender = ? AND message_id = ?", (sender, message_id)
        ).fetchone()
        return bytes(row[0]) if row else None

    def remember(self, envelope: Envelope, sha256: bytes, now: datetime) -> None:
        """Count ``envelope``'s message as handled; on disk once written (:meth:`flush`)."""
        key = (envelope.sender, envelope.message_id)
        if key not in self._unflushed:
            created, handled = int(envelope.created_at.timestamp() * 1e6), int(now.timestamp() * 1e6)
            self._unflushed[key] = (envelope.sender, envelope.message_id, sha256, created, handled)

    @property
    def unflushed(self) -> int:
        """How many remembered ids are not on disk yet."""
        return len(self._unflushed) + len(self._writing)

    def take(self) -> list[Row]:
        """The rows remembered since the last take, to :meth:`write` (still known to :meth:`digest_of` until then)."""
        rows = list(self._unflushed.values())
        self._writing.update(self._unflushed)
        self._unflushed.clear()
        return rows

    def write(self, rows: list[Row]) -> None:
        """Write ``rows`` in one transaction (one fsync); from any thread."""
        if rows:
            with self._write_lock, immediate(self._writer) as db:
                db.executemany("INSERT OR IGNORE INTO handled VALUES (?, ?, ?, ?, ?)", rows)

    def written(self, rows: list[Row]) -> None:
        """Forget the taken ``rows`` once :meth:`write` returned: the file answers for them now."""
        for row in rows:
            self._writing.pop((row[0], row[1]), None)

    async def write_taken(self, rows: list[Row]) -> None:
        """:meth:`write` in a thread (a file's fsync does not stop the event loop), then :meth:`written`."""
        if self.path is None:
            self.write(rows)
        else:
            await asyncio.to_thread(self.write, rows)
        self.written(rows)

    def flush(self) -> None:
        """Write what was remembered and not taken, in one transaction, here and now."""
        rows = self.take()
        self.write(rows)
        self.written(rows)

    def prune(self, created_before: datetime) -> int:
        """Forget ids of messages created before ``created_before`` (they are refused as stale anyway)."""
        self.flush()
        cursor = self._db.execute("DELETE FROM handled WHERE created_at < ?", (int(created_before.timestamp() * 1e6),))
        return cursor.rowcount

    def close(self) -> None:
        """Flush what was remembered (each was handled: if its offset was not committed, a reader of it again
        recognises a duplicate) and close the store."""
        try:
            self.flush()
        finally:
            self._db.close()
            if self._writer is not self._db:
                self._writer.close()
