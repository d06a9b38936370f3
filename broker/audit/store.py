"""The evidence log's storage: its entries in log order, and the auditor's signed checkpoints.

Two backends keep the same tables: SQLite (:mod:`broker.audit.sqlite_store`, one file, the default) and PostgreSQL
(:mod:`broker.audit.postgres_store`, for deployments); :func:`open_store` picks one by URL. An entry's row keeps
every field as it was placed, its leaf hash included, beside its ``position`` in the table. Read back, an entry is
what was stored, never recomputed, so that verification sees what a change to the rows did: a deleted row leaves a
gap in the positions, a moved one an ``entry_index`` other than its position, an altered one a leaf hash that no
longer covers its fields. Values taken from the metadata (sender, message id and type, case, creation time, the
message replied to) have columns of their own for reports and case bundles, all but the type indexed.
"""

from __future__ import annotations

import json
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from broker.audit.entry import GENESIS, Draft, Entry, Kind, Outcome
from broker.errors import ConfigError, VerificationError

__all__ = ["COLUMNS", "INDEXES", "SCHEMA_VERSION", "Coordinates", "EvidenceStore", "open_store", "redacted_url"]

#: The version of the tables. A store of another version is refused: a later version migrates those before it.
SCHEMA_VERSION = 1

#: A record's place in Kafka: topic, partition, offset.
Coordinates = tuple[str, int, int]

#: The columns of an entry's row, in the order of :func:`_row`. The first 16 hold the entry; the others are taken
#: from its metadata for queries. ("partition" and "offset" are SQL keywords.)
COLUMNS = (
    "position",
    "entry_index",
    "topic",
    '"partition"',
    '"offset"',
    "record_ms",
    "logged_at",
    "key",
    "value",
    "kind",
    "outcome",
    "reason",
    "detail",
    "meta",
    "previous",
    "leaf",
    "sender",
    "message_id",
    "message_type",
    "case_id",
    "created_at",
    "in_reply_to",
)
_READ = ", ".join(COLUMNS)

#: The indexes of the entries table, the same on both backends.
INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS entries_{column} ON entries ({column})"
    for column in ("sender", "message_id", "case_id", "created_at", "in_reply_to")
)
_STORE_TABLE = "CREATE TABLE IF NOT EXISTS store (id TEXT NOT NULL, version INTEGER NOT NULL)"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class EvidenceStore(ABC):
    """The entries of an evidence log and its checkpoints. One thread at a time uses a store; two stores (two
    connections, two processes) may append to one log at once: each append holds the writer lock.

    SQL here is written with ``?`` parameters; a backend runs it in its own dialect."""

    #: The store's own id, made with it: the auditor's consumer group is named after it, so that a new store is
    #: filled again from the topics.
    store_id: str
    #: The store as messages name it: a path, or a URL without its password.
    name: str
    #: Rows read per query when streaming entries (an entry may hold a record of several hundred kilobytes).
    chunk_rows = 100

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def append(self, drafts: Sequence[Draft], logged_at: datetime) -> list[Entry]:
        """Log ``drafts`` in order, at ``logged_at`` (timezone-aware; kept in UTC), after the entries here, in one
        transaction that holds the writer lock. A draft whose record (topic, partition, offset) is logged already, or
        earlier in ``drafts``, is skipped: a consumer reads records again after a restart. The entries appended."""
        at = _utc(logged_at)
        if not drafts:
            return []
        with self._writing():
            size, previous = self.head()
            known = self._logged(sorted({d.coordinates for d in drafts}))
            entries: list[Entry] = []
            for draft in drafts:
                if draft.coordinates in known:
                    continue
                known.add(draft.coordinates)
                entry = Entry.place(draft, size + len(entries), at, previous)
                entries.append(entry)
                previous = entry.leaf
            if entries:
                self._insert([_row(e) for e in entries])
        return entries

    def head(self) -> tuple[int, bytes]:
        """The log's size (the position after the last row) and the leaf hash of its last entry (GENESIS when empty)."""
        rows = self._query("SELECT position, leaf FROM entries ORDER BY position DESC LIMIT 1")
        return (rows[0][0] + 1, bytes(rows[0][1])) if rows else (0, GENESIS)

    def size(self) -> int:
        return self.head()[0]

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Entry]]:
        """``(position, entry)`` of the rows at positions ``start`` to ``stop`` (excluded), in position order, read a
        chunk at a time; each entry exactly as stored, its ``index`` the one it was placed with."""
        for row in self._chunks(_READ, start, stop, self.chunk_rows):
            yield self._read(row)

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """The entries of :meth:`rows`."""
        for _, entry in self.rows(start, stop):
            yield entry

    def leaves(self, stop: int | None = None) -> list[bytes]:
        """The stored leaf hashes of the rows before position ``stop`` (all when None), in position order."""
        return [bytes(row[1]) for row in self._chunks("position, leaf", 0, stop, 10_000)]

    def find(
        self,
        *,
        case_id: str | None = None,
        message_ids: Collection[str] | None = None,
        in_reply_to: Collection[str] | None = None,
    ) -> list[Entry]:
        """The entries that meet every criterion given (at least one), in log order: of the case ``case_id``, of a
        message id in ``message_ids``, replying to a message id in ``in_reply_to``."""
        conditions: list[str] = []
        params: list[Any] = []
        if case_id is not None:
            conditions.append("case_id = ?")
            params.append(case_id)
        for column, values in (("message_id", message_ids), ("in_reply_to", in_reply_to)):
            if values is None:
                continue
            if isinstance(values, str):
                raise TypeError(f"find: {column} takes a collection of message ids, not one string")
            if not values:
                return []
            condition, param = self._any(column, sorted(set(values)))
            conditions.append(condition)
            params.append(param)
        if not conditions:
            raise ValueError("find: give at least one of case_id, message_ids, in_reply_to")
        where = " AND ".join(conditions)
        rows = self._query(f"SELECT {_READ} FROM entries WHERE {where} ORDER BY position", params)  # noqa: S608
        return [self._read(row)[1] for row in rows]

    def add_checkpoint(self, size: int, data: bytes) -> None:
        """Keep a signed checkpoint (opaque bytes) of the log at ``size`` entries."""
        if size < 0:
            raise ValueError(f"a checkpoint's size cannot be negative (got {size})")
        self._execute("INSERT INTO checkpoints (size, data) VALUES (?, ?)", (size, bytes(data)))

    def checkpoints(self) -> list[bytes]:
        """The checkpoints, in the order they were added."""
        return [bytes(row[0]) for row in self._query("SELECT data FROM checkpoints ORDER BY id")]

    def latest_checkpoint(self) -> bytes | None:
        rows = self._query("SELECT data FROM checkpoints ORDER BY id DESC LIMIT 1")
        return bytes(rows[0][0]) if rows else None

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _writing(self) -> AbstractContextManager[object]:
        """A transaction holding the writer lock: committed when the block ends, rolled back when it raises."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def _logged(self, coordinates: Sequence[Coordinates]) -> set[Coordinates]:
        """Those of ``coordinates`` whose record is logged."""

    @abstractmethod
    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows of :data:`COLUMNS`."""

    @abstractmethod
    def _any(self, column: str, values: list[str]) -> tuple[str, Any]:
        """A condition that ``column`` is one of ``values``, and its one parameter."""

    def _claim(self, schema: Sequence[str]) -> str:
        """Inside the transaction that opens the store: its id. The tables (``schema``) are made for a new store;
        one of another schema version is refused."""
        self._execute(_STORE_TABLE)
        rows = self._query("SELECT id, version FROM store")
        if len(rows) > 1:
            raise ConfigError(f"evidence store {self.name}: its store table holds {len(rows)} rows, not one")
        if rows:
            store_id, version = rows[0]
            if version != SCHEMA_VERSION:
                raise ConfigError(
                    f"evidence store {self.name}: its schema is version {version}, this op7 reads version "
                    f"{SCHEMA_VERSION} (a store made by another op7 version?)"
                )
            return str(store_id)
        for statement in (*schema, *INDEXES):
            self._execute(statement)
        store_id = secrets.token_hex(8)
        self._execute("INSERT INTO store (id, version) VALUES (?, ?)", (store_id, SCHEMA_VERSION))
        return store_id

    def _chunks(self, columns: str, start: int, stop: int | None, size: int) -> Iterator[tuple[Any, ...]]:
        """The rows at positions ``start`` to ``stop`` in position order, ``size`` per query; ``columns`` starts with
        the position, which is where the next query resumes (no cursor stays open between chunks)."""
        if start < 0 or (stop is not None and stop < 0):
            raise ValueError(f"positions cannot be negative (got {start} to {stop})")
        bound = "" if stop is None else " AND position < ?"
        sql = f"SELECT {columns} FROM entries WHERE position >= ?{bound} ORDER BY position LIMIT ?"  # noqa: S608
        while True:
            rows = self._query(sql, (start, size) if stop is None else (start, stop, size))
            yield from rows
            if len(rows) < size:
                return
            start = rows[-1][0] + 1

    def _read(self, row: tuple[Any, ...]) -> tuple[int, Entry]:
        """A row of :data:`COLUMNS` as (position, entry); :class:`VerificationError` when it does not read as one, or
        when its query columns say other than its metadata (a changed ``case_id`` column would hide the entry from
        its case's bundle without touching what the hashes cover)."""
        try:
            meta = json.loads(row[13])
            if not isinstance(meta, dict):
                raise ValueError(f"meta is a JSON {type(meta).__name__}, not an object")
            entry = Entry(
                topic=row[2],
                partition=row[3],
                offset=row[4],
                record_ms=row[5],
                key=None if row[7] is None else bytes(row[7]),
                value=bytes(row[8]),
                kind=Kind(row[9]),
                outcome=Outcome(row[10]),
                reason=row[11],
                detail=None if row[12] is None else json.loads(row[12]),
                meta=meta,
                index=row[1],
                logged_at=_EPOCH + row[6] * _US,
                previous=bytes(row[14]),
                leaf=bytes(row[15]),
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise VerificationError(
                f"evidence store {self.name}: the row at position {row[0]} is unreadable: {exc}"
            ) from exc
        for name, stored, derived in zip(COLUMNS[16:], row[16:], _row(entry)[16:], strict=True):
            if stored != derived:
                raise VerificationError(
                    f"evidence store {self.name}: the row at position {row[0]} has {name} {stored!r} where its "
                    f"logged metadata says {derived!r}"
                )
        return row[0], entry


def open_store(url: str, *, create: bool = True) -> EvidenceStore:
    """The evidence store at ``url``: ``sqlite:///ABSOLUTE/PATH``, ``sqlite:RELATIVE/PATH`` or a plain path (SQLite),
    ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` or ``postgres://...`` (libpq's parameters in the query).
    Without ``create``, a SQLite file that does not exist is an error (a reader never makes an empty log)."""
    if not url.strip():
        raise ConfigError("evidence store: no URL or path given")
    scheme, colon, rest = url.partition(":")
    if colon and scheme.lower() in ("postgresql", "postgres"):
        from broker.audit.postgres_store import PostgresEvidenceStore

        return PostgresEvidenceStore(url)
    if colon and scheme.lower() == "sqlite":
        if rest.startswith("//") and not rest.startswith("///"):
            raise ConfigError(
                f"evidence store {redacted_url(url)}: a SQLite URL names no host: write sqlite:///ABSOLUTE/PATH or "
                "sqlite:RELATIVE/PATH"
            )
        path = Path(rest[2:] if rest.startswith("///") else rest)
        if not rest or not path.name:
            raise ConfigError(f"evidence store {url}: no file path in the URL")
    elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise ConfigError(
            f"evidence store {redacted_url(url)}: unknown kind of store {scheme!r} (sqlite:PATH, a path, or "
            "postgresql://...)"
        )
    else:
        path = Path(url)
    if not create and not path.exists():
        raise ConfigError(f"evidence store {path}: no such file ('op7 audit run' makes the log)")
    from broker.audit.sqlite_store import SqliteEvidenceStore

    return SqliteEvidenceStore(path)


def redacted_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password`` parameter), to name a store in messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.partition(':')[0]}:(an unparsable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, hosts = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}{':***' if ':' in user else ''}@{hosts}"
    query = "&".join(
        "password=***" if p.split("=", 1)[0].strip().lower() == "password" else p for p in parts.query.split("&")
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"an entry's logged_at must be timezone-aware (got {at.isoformat()})")
    return at.astimezone(UTC)


def _us(at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (at - _EPOCH) // _US


def _row(entry: Entry) -> tuple[Any, ...]:
    """An entry as a row of :data:`COLUMNS`. The meta and the detail (free text that may quote a record: a NUL,
    a lone surrogate) are kept as ASCII JSON, which reads back exactly on both backends."""
    meta = entry.meta
    return (
        entry.index,
        entry.index,
        entry.topic,
        entry.partition,
        entry.offset,
        entry.record_ms,
        _us(entry.logged_at),
        entry.key,
        entry.value,
        entry.kind.value,
        entry.outcome.value,
        entry.reason,
        None if entry.detail is None else json.dumps(entry.detail),
        json.dumps(dict(meta), sort_keys=True),
        entry.previous,
        entry.leaf,
        _searchable(meta.get("sender") or meta.get("claimed_sender")),
        _searchable(meta.get("message_id")),
        _searchable(meta.get("message_type")),
        _searchable(meta.get("case_id")),
        _searchable(meta.get("created_at")),
        _searchable(meta.get("in_reply_to")),
    )


def _searchable(value: object) -> str | None:
    """A metadata value for an indexed column: a string that both backends keep as it is, else None (the entry's
    meta keeps the value itself; a claimed sender, read from an unverified frame, may be anything)."""
    if not isinstance(value, str) or "\x00" in value:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value
