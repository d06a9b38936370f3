"""The evidence store in PostgreSQL (psycopg 3), for deployments: the tables in the first schema of the search path.

Appends take an EXCLUSIVE lock on the entries table for their transaction: appenders wait their turn while readers
(reports, verification) go on. Entries are inserted with a binary COPY and read in binary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from broker.audit.store import COLUMNS, Coordinates, EvidenceStore, redacted_url
from broker.errors import ConfigError

__all__ = ["PostgresEvidenceStore"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        position BIGINT PRIMARY KEY, entry_index BIGINT NOT NULL, topic TEXT NOT NULL,
        "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL, record_ms BIGINT NOT NULL,
        logged_at BIGINT NOT NULL, key BYTEA, value BYTEA NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
        reason TEXT, detail TEXT, meta TEXT NOT NULL, previous BYTEA NOT NULL, leaf BYTEA NOT NULL,
        sender TEXT, message_id TEXT, message_type TEXT, case_id TEXT, created_at TEXT, in_reply_to TEXT,
        UNIQUE (topic, "partition", "offset")
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, size BIGINT NOT NULL, data BYTEA NOT NULL
    )""",
)
#: The PostgreSQL types of :data:`COLUMNS`, for the binary COPY.
_TYPES = ("int8", "int8", "text", "int4", "int8", "int8", "int8", "bytea", "bytea", *["text"] * 5, "bytea", "bytea")
_TYPES += ("text",) * (len(COLUMNS) - len(_TYPES))
_COPY = f"COPY entries ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_LOGGED = (
    'SELECT topic, "partition", "offset" FROM entries WHERE (topic, "partition", "offset") IN'
    " (SELECT * FROM unnest(?::text[], ?::integer[], ?::bigint[]))"
)
#: The advisory lock under which stores are opened: two first openings never make the tables at once.
_OPENING_LOCK = 0x6F7037_0001


class PostgresEvidenceStore(EvidenceStore):
    """The evidence store at the PostgreSQL ``url`` (``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``)."""

    def __init__(self, url: str) -> None:
        self.name = redacted_url(url)
        self._db = self._connect(url)
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_OPENING_LOCK,))
                self.store_id = self._claim(_SCHEMA)
        except psycopg.Error as exc:
            self._db.close()
            raise ConfigError(f"evidence store {self.name}: {_text(exc)}") from exc
        except BaseException:
            self._db.close()
            raise

    def _connect(self, url: str) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            # A host that does not answer is an error within seconds, unless the URL says otherwise.
            conninfo = url if "connect_timeout" in conninfo_to_dict(url) else make_conninfo(url, connect_timeout=10)
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            # libpq quotes a URL it cannot parse, password and all: the message names it without.
            reason = _text(exc).replace(url, self.name)
            raise ConfigError(f"evidence store {self.name}: {reason}") from (None if url in str(exc) else exc)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _writing(self) -> Iterator[object]:
        with self._db.transaction():
            self._db.execute("LOCK TABLE entries IN EXCLUSIVE MODE")
            yield self

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(_dialect(sql), params, binary=True).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(_dialect(sql), params)

    def _logged(self, coordinates: Sequence[Coordinates]) -> set[Coordinates]:
        if not coordinates:
            return set()
        columns = [list(column) for column in zip(*coordinates, strict=True)]
        return {(t, p, o) for t, p, o in self._query(_LOGGED, columns)}

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._db.cursor() as cursor, cursor.copy(_COPY) as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)

    def _any(self, column: str, values: list[str]) -> tuple[str, Any]:
        return f"{column} = ANY(?)", values


def _dialect(sql: str) -> str:
    """SQL written with ``?`` parameters (:class:`EvidenceStore`'s) as psycopg takes them."""
    return sql.replace("?", "%s")


def _text(exc: BaseException) -> str:
    """An error's message on one line (libpq's span several)."""
    return re.sub(r"\s+", " ", str(exc)).strip()
