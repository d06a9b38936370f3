"""What a subscription remembers about the records it refused or holds, beside the replay store
(docs/PROTOCOL.md §4.4, §6).

Kept in SQLite, in the replay store's file (a node's state folder; memory for a node without one), so that it holds
across restarts. Every table is bounded: quarantined frames are forgotten after :attr:`QuarantineBook.remember`, held
frames are capped per sender and in all (:class:`HeldFrames`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broker._sqlite import immediate, open_database
from broker.transport.base import Record

__all__ = ["Held", "HeldFrames", "Keep", "QuarantineBook", "source_of"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantined (
    sha256 BLOB PRIMARY KEY, copies INTEGER NOT NULL, first_at INTEGER NOT NULL,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantined_by_time ON quarantined (first_at);
CREATE TABLE IF NOT EXISTS quarantine_budget (
    source TEXT PRIMARY KEY, window_start INTEGER NOT NULL, whole INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    sha256 BLOB PRIMARY KEY, sender TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, key BLOB, value BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL, received_at INTEGER NOT NULL, version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_by_sender ON held (sender, received_at);
CREATE INDEX IF NOT EXISTS held_by_time ON held (received_at);
"""


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _where(record: Record) -> tuple[str, int, int, bytes | None]:
    return record.topic, record.partition, record.offset, record.key


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def source_of(record: Record, sender: str | None) -> str:
    """Whom a refusal is counted against: the verified sender, or for a frame that did not verify, the topic
    partition it was read from (anyone may write there, and no unverified claim is believed)."""
    return f"sender {sender}" if sender is not None else f"partition {record.topic}[{record.partition}]"


@dataclass(frozen=True)
class Keep:
    """How much of a refused record its quarantine entry keeps: whole, or without its value (``omitted`` says why:
    ``repeat`` of a frame kept before, or ``over-budget`` for its source)."""

    omitted: str | None = None
    #: For a repeat: which copy of the frame this is (the first is 1), and where the first was read.
    copy: int = 1
    first: dict[str, Any] | None = None

    @property
    def whole(self) -> bool:
        return self.omitted is None


class QuarantineBook:
    """Which refused frames were quarantined, and how many whole entries each source added in the current window.

    The first copy of a frame is kept whole, within its source's budget of ``per_source`` whole entries per
    ``window``; a later copy (same SHA-256) gets an entry without its value only when its number is a power of two
    (2, 4, 8...), so that replays add a logarithmic trail, and is otherwise only counted.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        per_source: int = 100,
        window: timedelta = timedelta(hours=1),
        remember: timedelta = timedelta(days=8),
    ) -> None:
        self.per_source = per_source
        self.window = window
        self.remember = remember
        self._db = open_database(path, _SCHEMA, "receive state")
        # Counters only: a power cut may take their last changes (a repeat is then kept whole once more), so a
        # refusal is not made to wait for an fsync; an application crash loses nothing (WAL).
        self._db.execute("PRAGMA synchronous=NORMAL")

    def decide(self, digest: bytes, source: str, now: datetime) -> Keep | None:
        """What the entry of a refused frame keeps; None for a repeat that gets no entry of its own (counted)."""
        row = self._db.execute(
            "SELECT copies, first_at, topic, partition, offset FROM quarantined WHERE sha256 = ?", (digest,)
        ).fetchone()
        if row is not None:
            copy = int(row[0]) + 1
            if copy & (copy - 1):
                return None
            first_at = _at(row[1]).isoformat()
            where = {"topic": row[2], "partition": row[3], "offset": row[4], "quarantined_at": first_at}
            return Keep("repeat", copy, where)
        budget = self._db.execute(
            "SELECT window_start, whole FROM quarantine_budget WHERE source = ?", (source,)
        ).fetchone()
        if (
            budget is not None
            and _us(now) - budget[0] < self.window.total_seconds() * 1e6
            and budget[1] >= (self.per_source)
        ):
            return Keep("over-budget")
        return Keep()

    def kept(self, digest: bytes, source: str, keep: Keep | None, record: Record, now: datetime) -> None:
        """Note that the entry ``keep`` describes was written (or, for None, that a repeat was only counted)."""
        window_us = int(self.window.total_seconds() * 1e6)
        with immediate(self._db) as db:
            if keep is None or keep.omitted == "repeat":
                db.execute("UPDATE quarantined SET copies = copies + 1 WHERE sha256 = ?", (digest,))
                return
            db.execute(
                "INSERT OR IGNORE INTO quarantined VALUES (?, 1, ?, ?, ?, ?)",
                (digest, _us(now), record.topic, record.partition, record.offset),
            )
            if keep.whole:
                db.execute(
                    "INSERT INTO quarantine_budget VALUES (?, ?, 1) ON CONFLICT (source) DO UPDATE SET "
                    "whole = CASE WHEN ? - window_start >= ? THEN 1 ELSE whole + 1 END, "
                    "window_start = CASE WHEN ? - window_start >= ? THEN excluded.window_start ELSE window_start END",
                    (source, _us(now), _us(now), window_us, _us(now), window_us),
                )

    def prune(self, now: datetime) -> None:
        """Forget frames first quarantined longer ago than :attr:`remember`, and budgets of past windows."""
        with immediate(self._db) as db:
            db.execute("DELETE FROM quarantined WHERE first_at < ?", (_us(now - self.remember),))
            db.execute("DELETE FROM quarantine_budget WHERE window_start < ?", (_us(now - self.window),))

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Held:
    """A frame held until the directory knows its sender: the record as read, why it was refused, when it was read
    (by the receiver's clock) and the directory version held then."""

    record: Record
    reason: str
    detail: str
    received_at: datetime
    version: int


class HeldFrames:
    """Frames refused only because the directory held does not know their sender or key yet, kept to be examined
    again when a newer version arrives. At most ``per_sender`` per (claimed, unverified) sender, ``total`` in all and
    ``total_bytes`` of values: beyond, the oldest make room (:meth:`hold` returns them, for quarantine)."""

    def __init__(
        self, path: Path | None = None, *, per_sender: int = 100, total: int = 1000, total_bytes: int = 64 << 20
    ) -> None:
        self.per_sender = per_sender
        self.total = total
        self.total_bytes = total_bytes
        self._db = open_database(path, _SCHEMA, "receive state")

    def hold(
        self, digest: bytes, sender: str, error: tuple[str, str], record: Record, at: datetime, version: int
    ) -> list[Held] | None:
        """Keep ``record`` (refused with ``error``, a reason and a detail); the frames it pushed out, oldest first, or
        None when the same bytes are held already."""
        reason, detail = error
        with immediate(self._db) as db:
            if db.execute("SELECT 1 FROM held WHERE sha256 = ?", (digest,)).fetchone() is not None:
                return None
            db.execute(
                "INSERT INTO held VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (digest, sender, reason, detail, *_where(record), record.value, record.timestamp_ms, _us(at), version),
            )
        return [found for rowid in self._pushed_out(sender) for found in self._rows("WHERE rowid = ?", (rowid,))]

    def _pushed_out(self, sender: str) -> list[int]:
        """The oldest frames to let go so that every cap holds again: ``sender``'s first, then any."""
        rows = self._db.execute("SELECT rowid, sender, length(value) FROM held ORDER BY received_at, rowid").fetchall()
        excess = sum(1 for r in rows if r[1] == sender) - self.per_sender
        out = [r[0] for r in rows if r[1] == sender][: max(excess, 0)]
        rest = [r for r in rows if r[0] not in out]
        count, size = len(rest) - self.total, sum(r[2] for r in rest) - self.total_bytes
        for rowid, _, length in rest:
            if count <= 0 and size <= 0:
                break
            out.append(rowid)
            count, size = count - 1, size - length
        return out

    def _rows(self, tail: str, args: tuple[object, ...]) -> list[Held]:
        rows = self._db.execute(
            "SELECT topic, partition, offset, key, value, timestamp_ms, reason, detail, received_at, version "  # noqa: S608
            f"FROM held {tail}",  # (tail: fixed text of this module)
            args,
        ).fetchall()
        return [Held(Record(r[0], r[1], r[2], r[3], r[4], r[5]), r[6], r[7], _at(r[8]), r[9]) for r in rows]

    def frames(self, topics: frozenset[str] | None = None) -> Iterator[Held]:
        """The frames held (of ``topics`` only, when given), oldest first, read one at a time."""
        rowids = [
            rowid
            for rowid, topic in self._db.execute("SELECT rowid, topic FROM held ORDER BY received_at, rowid")
            if topics is None or topic in topics
        ]
        for rowid in rowids:
            yield from self._rows("WHERE rowid = ?", (rowid,))

    def held_before(self, before: datetime) -> list[Held]:
        """Frames read before ``before``: held longer than they may be."""
        return self._rows("WHERE received_at < ? ORDER BY received_at, rowid", (_us(before),))

    def drop(self, digest: bytes) -> None:
        self._db.execute("DELETE FROM held WHERE sha256 = ?", (digest,))

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM held").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()
