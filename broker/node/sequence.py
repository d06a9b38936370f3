"""A sending node's sequence numbers (docs/PROTOCOL.md section 3): 1 for the first frame it signs on a network, one
more for each frame it signs after, written in the signed header so that an auditor who reads every topic finds the
frames a sender withheld, or that were lost, from the gaps between the numbers it saw.

The counter is kept in the node's home, one file per node and network (as its outbox), and every process of the home
draws from it: numbers are reserved in one write transaction, so two frames never get one number, even when several
``op7`` commands sign at once. A number is drawn as its frame is built (:data:`broker.wire.envelope.Numbering`) and
never again: a frame sent again keeps its bytes and so its number; a frame built and then never sent leaves a gap.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from broker._sqlite import immediate, open_database
from broker.errors import ConfigError
from broker.models import check_node_id

__all__ = ["SenderSequence"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequence (
    node_id TEXT PRIMARY KEY,
    last    INTEGER NOT NULL CHECK (last >= 0)
);
"""


class SenderSequence:
    """The numbers of the frames ``node_id`` signs, in a SQLite file (or in memory, for a node without a home: a new
    process then starts again at 1). Safe to use from several threads and processes at once."""

    def __init__(self, node_id: str, path: Path | None = None) -> None:
        self.node_id = check_node_id(node_id)
        self.path = path
        self._db = open_database(path, _SCHEMA, "sequence numbers", any_thread=True)
        # Unlike the outbox's rows, a draw lost to a power cut would give its numbers again, to other frames, after
        # the first ones may have left: each draw reaches the disk before its number is used.
        self._db.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive numbers, never given out before, and return the first (a batch's frames
        take a run)."""
        if count < 1:
            raise ConfigError(f"{count} sequence numbers asked for: a draw reserves at least one")
        try:
            with self._lock, immediate(self._db):
                (last,) = self._db.execute(
                    "INSERT INTO sequence (node_id, last) VALUES (?, ?) "
                    "ON CONFLICT (node_id) DO UPDATE SET last = last + excluded.last RETURNING last",
                    (self.node_id, count),
                ).fetchone()
        except sqlite3.Error as exc:
            raise ConfigError(f"sequence numbers of {self.node_id} in {self.path or 'memory'}: {exc}") from exc
        return int(last) - count + 1

    def last(self) -> int:
        """The last number given out; 0 before the first."""
        with self._lock:
            row = self._db.execute("SELECT last FROM sequence WHERE node_id = ?", (self.node_id,)).fetchone()
        return 0 if row is None else int(row[0])
