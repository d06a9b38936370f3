"""Opening the node's local SQLite databases (replay store, exchange store) the same way everywhere."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from broker.errors import ConfigError


def open_database(path: Path | None, schema: str, what: str, *, any_thread: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL for files (readers do not block the writer), ``schema`` applied;
    ``any_thread`` lets another thread use it (its user then makes sure one thread at a time does)."""
    # Several processes of one home (listener workers, the inbox) may open and write the file at once: a writer waits
    # its turn (the busy timeout), and so does an opening, whose switch to WAL SQLite refuses at once while another
    # process holds the file, without waiting.
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            return _open(path, schema, any_thread)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise ConfigError(f"{what} {path or 'in memory'}: {exc}") from exc
            time.sleep(0.05)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"{what} {path or 'in memory'}: {exc}") from exc


_BUSY_TIMEOUT = 30.0


def _open(path: Path | None, schema: str, any_thread: bool) -> sqlite3.Connection:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        str(path) if path else ":memory:",
        isolation_level=None,
        check_same_thread=not any_thread,
        timeout=_BUSY_TIMEOUT,
    )
    try:
        if path is not None:
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
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
