"""Opening the node's local SQLite databases (replay store, exchange store) the same way everywhere."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from broker.errors import ConfigError


def open_database(path: Path | None, schema: str, what: str, *, any_thread: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL for files (readers do not block the writer), ``schema`` applied;
    ``any_thread`` lets another thread use it (its user then makes sure one thread at a time does)."""
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Several processes of one home (listener workers, the inbox) may write at once: a writer waits its turn.
        db = sqlite3.connect(
            str(path) if path else ":memory:", isolation_level=None, check_same_thread=not any_thread, timeout=30
        )
        if path is not None:
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(f"{what} {path or 'in memory'}: {exc}") from exc
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit connection: committed, or rolled back when anything fails, the
    COMMIT included (a connection is never left inside a transaction). IMMEDIATE takes the write lock at once, so
    what is read inside cannot change before the write."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
