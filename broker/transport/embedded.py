"""One machine, no server: topics as tables of an SQLite database.

``EmbeddedTransport()`` keeps everything in memory for one process; ``EmbeddedTransport(path)`` uses a
file that several processes on the same host can share (SQLite WAL mode; writers serialise on the
database lock). Each topic has a single partition, so every record of a topic is in order. Consumer
groups keep committed offsets like Kafka's, but there is no rebalancing: two live members of one group
would both read every record. Records are never deleted. Deployments use Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from broker._sqlite import immediate
from broker.clock import Clock, default_clock
from broker.errors import TransportError
from broker.transport.base import Consumer, Record, Sent, Transport

__all__ = ["EmbeddedTransport"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, compacted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, offset INTEGER NOT NULL, key BLOB, value BLOB NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, offset)
);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, next INTEGER NOT NULL, PRIMARY KEY (grp, topic)
);
"""

#: How often a consumer looks for records written by other processes.
_POLL_INTERVAL = 0.05


class EmbeddedTransport(Transport):
    """SQLite-backed topics; in memory when ``path`` is None."""

    name = "embedded"

    def __init__(self, path: Path | str | None = None, *, clock: Clock | None = None) -> None:
        self.path = Path(path) if path is not None else None
        #: Record timestamps (as Kafka's CreateTime) read this clock.
        self.clock: Clock = clock or default_clock()
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._written = asyncio.Event()

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def start(self) -> None:
        if self._executor is not None:
            return
        # One thread owns the connection: SQLite calls never block the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="op7-embedded")
        try:
            await self._call(self._open)
        except (TransportError, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise TransportError(f"embedded transport: cannot open {self.path or 'memory'}: {exc}") from exc

    def _open(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            str(self.path) if self.path else ":memory:",
            timeout=10,
            isolation_level=None,
            check_same_thread=False,
        )
        if self.path is not None:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db

    async def stop(self) -> None:
        if self._executor is None:
            return
        db = self._db
        if db is not None:
            await self._call(db.close)
        self._db = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise TransportError("embedded transport is not started")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:  # locked database, full disk: may pass
            raise TransportError(f"embedded transport: {exc}", retriable=True) from exc
        except sqlite3.Error as exc:
            raise TransportError(f"embedded transport: {exc}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise TransportError("embedded transport is not started")
        return self._db

    async def create_topic(
        self, topic: str, *, partitions: int = 3, compacted: bool = False, retention: timedelta | None = None
    ) -> None:
        await self._call(
            self.db.execute,
            "INSERT OR IGNORE INTO topics (name, compacted) VALUES (?, ?)",
            (topic, int(compacted)),
        )

    def _delete(self, topic: str) -> None:
        with immediate(self.db) as db:
            for table, column in (("records", "topic"), ("offsets", "topic"), ("topics", "name")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (topic,))  # noqa: S608 (fixed names)

    async def delete_topic(self, topic: str) -> None:
        await self._call(self._delete, topic)

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None) -> Sent:
        (sent,) = await self.send_many(topic, [(key, value)])
        return sent

    def _append(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[int]:
        """Append ``records`` in one transaction: all of them at consecutive offsets, or none."""
        with immediate(self.db) as db:
            if db.execute("SELECT 1 FROM topics WHERE name = ?", (topic,)).fetchone() is None:
                raise TransportError(f"embedded transport: unknown topic {topic!r}")
            (first,) = db.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
            ).fetchone()
            now = self._now_ms()
            db.executemany(
                "INSERT INTO records (topic, offset, key, value, ts) VALUES (?, ?, ?, ?, ?)",
                [(topic, first + i, key, value, now) for i, (key, value) in enumerate(records)],
            )
        return [int(first) + i for i in range(len(records))]

    async def send_many(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[Sent]:
        offsets = await self._call(self._append, topic, list(records))
        # Wake this process's consumers waiting in fetch; the next writes get a fresh event to wait on.
        self._written.set()
        self._written = asyncio.Event()
        return [Sent(topic, 0, o) for o in offsets]

    def consumer(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> Consumer:
        return EmbeddedConsumer(self, list(topics), group, from_beginning)


class EmbeddedConsumer(Consumer):
    def __init__(self, transport: EmbeddedTransport, topics: list[str], group: str, from_beginning: bool) -> None:
        self._t = transport
        self._topics = topics
        self._group = group
        self._from_beginning = from_beginning
        self._position: dict[str, int] = {}

    def _positions(self) -> dict[str, int]:
        out = {}
        for topic in self._topics:
            row = self._t.db.execute(
                "SELECT next FROM offsets WHERE grp = ? AND topic = ?", (self._group, topic)
            ).fetchone()
            if row is not None:
                out[topic] = int(row[0])
            elif self._from_beginning:
                out[topic] = 0
            else:
                (end,) = self._t.db.execute(
                    "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
                ).fetchone()
                out[topic] = int(end)
        return out

    async def start(self) -> None:
        self._position = await self._t._call(self._positions)

    async def stop(self) -> None:
        self._position = {}

    def _read(self, max_records: int, topics: Collection[str] | None) -> list[Record]:
        out: list[Record] = []
        for topic in self._topics:
            if topics is not None and topic not in topics:
                continue
            rows = self._t.db.execute(
                "SELECT offset, key, value, ts FROM records WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT ?",
                (topic, self._position[topic], max_records - len(out)),
            ).fetchall()
            out.extend(Record(topic, 0, o, k, v, ts) for o, k, v, ts in rows)
            if len(out) >= max_records:
                break
        return out

    async def fetch(
        self, timeout: float = 1.0, max_records: int = 500, *, topics: Collection[str] | None = None
    ) -> list[Record]:
        if not self._position:
            raise TransportError("embedded consumer is not started")
        deadline = time.monotonic() + timeout
        while True:
            written = self._t._written
            records = await self._t._call(self._read, max_records, topics)
            if records:
                for r in records:
                    self._position[r.topic] = r.offset + 1
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # Woken at once by a writer in this process; other processes are seen on the next poll.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as the
            # event is set (a write of this process waking the reader as its run is cancelled), and the run goes on.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _POLL_INTERVAL)):
                    await written.wait()

    async def lag(self) -> dict[tuple[str, int], int]:
        if not self._position:
            return {}
        ends = await self._t._call(self._ends)
        return {(topic, 0): max(0, ends[topic] - position) for topic, position in self._position.items()}

    def _ends(self) -> dict[str, int]:
        """The offset after the last record of each topic read."""
        return {
            topic: int(
                self._t.db.execute(
                    "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
                ).fetchone()[0]
            )
            for topic in self._topics
        }

    async def commit_many(self, records: Sequence[Record]) -> list[Record]:
        last: dict[str, int] = {}
        for record in records:  # one partition per topic here
            last[record.topic] = max(last.get(record.topic, -1), record.offset)
        if last:
            await self._t._call(self._store_offsets, last)
        return []

    def _store_offsets(self, last: dict[str, int]) -> None:
        with immediate(self._t.db) as db:
            db.executemany(
                "INSERT INTO offsets (grp, topic, next) VALUES (?, ?, ?) "
                "ON CONFLICT (grp, topic) DO UPDATE SET next = excluded.next",
                [(self._group, topic, offset + 1) for topic, offset in last.items()],
            )
