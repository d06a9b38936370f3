"""The exchange store: every change of an exchange is one transaction; a conversation reads only its own rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.node.exchange_store import Direction, ExchangeState, ExchangeStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "exchanges.db"


@pytest.fixture
def store(path: Path) -> Iterator[ExchangeStore]:
    store = ExchangeStore(path)
    yield store
    store.close()


def _add(store: ExchangeStore, message_id: str, in_reply_to: str | None = None, minutes: int = 0) -> bool:
    return store.add(
        message_id=message_id,
        direction=Direction.OUT,
        peer="FR.GN",
        message_type="op7.case.CaseInformation",
        case_id="case-1",
        conversation_id=None,
        in_reply_to=in_reply_to,
        state=ExchangeState.SENT,
        deadline=None,
        sha256=b"\x00" * 32,
        frame=b"frame",
        now=T0 + timedelta(minutes=minutes),
    )


def _sql(path: Path, statement: str) -> None:
    """Change the database from another connection, as another process would."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(statement)
    db.close()


def test_a_move_whose_update_fails_writes_no_event_either(store: ExchangeStore, path: Path) -> None:
    _add(store, "a")
    _sql(path, "CREATE TRIGGER refuse BEFORE UPDATE ON exchanges BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.move("a", ExchangeState.DELIVERED, "receipt", T0)
    assert [e.state for e in store.events("a")] == ["sent"]
    record = store.get("a")
    assert record is not None and record.state is ExchangeState.SENT
    _sql(path, "DROP TRIGGER refuse")  # the failed move left no transaction open
    assert store.move("a", ExchangeState.DELIVERED, "receipt", T0)
    assert [e.state for e in store.events("a")] == ["sent", "delivered"]


def test_an_exchange_whose_first_event_fails_is_not_recorded(store: ExchangeStore, path: Path) -> None:
    _sql(path, "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        _add(store, "a")
    assert store.get("a") is None
    _sql(path, "DROP TRIGGER refuse")
    assert _add(store, "a") and not _add(store, "a")


def test_a_move_from_another_state_is_kept_as_history_only(store: ExchangeStore) -> None:
    _add(store, "a")
    assert not store.move("a", ExchangeState.DELIVERED, "late receipt", T0, only_from=(ExchangeState.ANSWERED,))
    assert [e.state for e in store.events("a")] == ["sent", "delivered (no change)"]
    assert not store.move("unknown", ExchangeState.CLOSED, "", T0)


def test_a_conversation_is_the_exchange_what_it_answers_and_what_answers_it(store: ExchangeStore, path: Path) -> None:
    _add(store, "a")
    _add(store, "b", in_reply_to="a", minutes=1)
    _add(store, "c", in_reply_to="b", minutes=2)
    _add(store, "d", minutes=3)
    # A row the conversation must not read: it would not even load.
    _sql(path, "UPDATE exchanges SET state = 'unreadable' WHERE message_id = 'd'")

    def ids(message_id: str) -> list[str]:
        record = store.get(message_id)
        assert record is not None
        return [r.message_id for r in store.conversation(record)]

    assert ids("b") == ["a", "b", "c"]
    assert ids("a") == ["a", "b"]
    assert ids("c") == ["b", "c"]
