"""The one way op7 writes several rows to its SQLite stores at once."""

from __future__ import annotations

import sqlite3

import pytest

from broker._sqlite import immediate


def test_a_failing_commit_is_rolled_back_and_the_connection_is_usable_again() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(
        "PRAGMA foreign_keys = ON;"
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
    )
    # A deferred constraint is checked at COMMIT: the COMMIT itself fails, inside the transaction.
    with pytest.raises(sqlite3.IntegrityError), immediate(db):
        db.execute("INSERT INTO child VALUES (42)")
    assert not db.in_transaction
    assert db.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)
    with immediate(db):
        db.execute("INSERT INTO parent VALUES (42)")
        db.execute("INSERT INTO child VALUES (42)")
    assert db.execute("SELECT COUNT(*) FROM child").fetchone() == (1,)
