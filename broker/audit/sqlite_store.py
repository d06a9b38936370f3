"""The evidence store in a SQLite file: the default, beside the auditor (WAL: reports read while it appends)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from broker._sqlite import immediate, open_database
from broker.audit.store import COLUMNS, Coordinates, EvidenceStore
from broker.errors import ConfigError

__all__ = ["SqliteEvidenceStore"]

_SCHEMA = (
    # position is the rowid (INTEGER PRIMARY KEY): the table is stored in log order.
    """CREATE TABLE IF NOT EXISTS entries (
        position INTEGER PRIMARY KEY, entry_index INTEGER NOT NULL, topic TEXT NOT NULL,
        "partition" INTEGER NOT NULL, "offset" INTEGER NOT NULL, record_ms INTEGER NOT NULL,
        logged_at INTEGER NOT NULL, key BLOB, value BLOB NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
        reason TEXT, detail TEXT, meta TEXT NOT NULL, previous BLOB NOT NULL, leaf BLOB NOT NULL,
        sender TEXT, message_id TEXT, message_type TEXT, case_id TEXT, created_at TEXT, in_reply_to TEXT,
        UNIQUE (topic, "partition", "offset")
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT, size INTEGER NOT NULL, data BLOB NOT NULL
    )""",
)
_INSERT = f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608
_LOGGED = 'SELECT 1 FROM entries WHERE topic = ? AND "partition" = ? AND "offset" = ?'


class SqliteEvidenceStore(EvidenceStore):
    """The evidence store in the SQLite file ``path`` (made when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        # any_thread: an asyncio auditor may hand the store to a worker thread (one thread at a time uses it).
        self._db = open_database(path, "", "evidence store", any_thread=True)
        try:
            with immediate(self._db):
                self.store_id = self._claim(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise ConfigError(f"evidence store {path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _writing(self) -> AbstractContextManager[object]:
        return immediate(self._db)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def _logged(self, coordinates: Sequence[Coordinates]) -> set[Coordinates]:
        # One lookup of the unique index per record: a few microseconds each, in process.
        return {c for c in coordinates if self._db.execute(_LOGGED, c).fetchone() is not None}

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._db.executemany(_INSERT, rows)

    def _any(self, column: str, values: list[str]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(values)  # noqa: S608
