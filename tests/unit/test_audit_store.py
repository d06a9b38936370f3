"""The evidence store, on SQLite and on a real PostgreSQL server: entries read back as they were placed, a record
logged once, one chain however many write at once, and stores that are not what they should be refused."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from broker.audit.entry import GENESIS, Draft, Entry, Kind, Outcome
from broker.audit.store import SCHEMA_VERSION, EvidenceStore, open_store
from broker.errors import ConfigError, VerificationError
from tests import audit_db
from tests.audit_db import postgres_url, tamper

#: The fixtures: a fresh store per test (its URL, or the store open), on each backend.
evidence_url = audit_db.evidence_url
evidence_store = audit_db.evidence_store

#: A time with microseconds: its isoformat is inside every leaf hash, so it must read back exactly.
LOGGED_AT = datetime(2026, 11, 1, 8, 30, 15, 123_457, tzinfo=UTC)


def draft(offset: int, topic: str = "op7.alerts", partition: int = 0, **fields: Any) -> Draft:
    values: dict[str, Any] = {
        "record_ms": 1_793_000_000_000 + offset,
        "key": b"FR.GN",
        "value": b"frame-%d" % offset,
        "kind": Kind.MESSAGE,
        "outcome": Outcome.VERIFIED,
        "meta": {"sender": "FR.GN", "message_id": f"m-{topic}-{partition}-{offset}"},
    }
    return Draft(topic=topic, partition=partition, offset=offset, **{**values, **fields})


def assert_chain(entries: list[Entry]) -> None:
    previous = GENESIS
    for index, entry in enumerate(entries):
        assert (entry.index, entry.previous) == (index, previous)
        assert entry.leaf == entry.computed_leaf()
        previous = entry.leaf


def test_entries_read_back_exactly_as_they_were_appended(evidence_store: EvidenceStore) -> None:
    drafts = [
        draft(
            0,
            meta={
                "sender": "FR.GN",
                "recipients": ["ES.PN", "NL.NCC"],
                "handling": {"code": "H2", "until": None, "levels": [1, 2.5, True]},
                "case_id": "FR-GN-2026-000142 \u2013 Zoé",
            },
        ),
        draft(1, key=None, value=bytes(range(256)) * 2800),  # ~700 KB, every byte value
        draft(
            2,
            topic="op7.quarantine.FR.GN",
            partition=5,
            kind=Kind.QUARANTINE,
            outcome=Outcome.REFUSED,
            reason="bad-signature",
            detail="claimed sender 'X\x00Y' (not trusted) \u2013 ünïcødé",
            meta={"claimed_sender": "X\x00Y", "note": "ünïcødé \U0001f600"},
        ),
        draft(3, value=b"", meta={}),
    ]
    assert evidence_store.head() == (0, GENESIS)
    appended = evidence_store.append(drafts, LOGGED_AT)
    assert [e.coordinates for e in appended] == [d.coordinates for d in drafts]
    assert all(e.logged_at == LOGGED_AT and e.logged_at.isoformat() == LOGGED_AT.isoformat() for e in appended)
    assert list(evidence_store.entries()) == appended
    assert evidence_store.size() == 4
    assert evidence_store.head() == (4, appended[-1].leaf)
    assert_chain(list(evidence_store.entries()))


def test_a_logged_at_is_kept_in_utc_and_must_say_its_zone(evidence_store: EvidenceStore) -> None:
    paris = LOGGED_AT.astimezone(timezone(timedelta(hours=1)))
    (entry,) = evidence_store.append([draft(0)], paris)
    assert entry.logged_at.utcoffset() == timedelta(0) and entry.logged_at == LOGGED_AT
    assert list(evidence_store.entries()) == [entry]
    with pytest.raises(ValueError, match="timezone-aware"):
        evidence_store.append([draft(1)], LOGGED_AT.replace(tzinfo=None))
    assert evidence_store.size() == 1


def test_a_record_is_logged_once_however_often_it_is_read(evidence_store: EvidenceStore) -> None:
    first = evidence_store.append([draft(0), draft(1), draft(0), draft(1, partition=1)], LOGGED_AT)
    assert [e.coordinates for e in first] == [("op7.alerts", 0, 0), ("op7.alerts", 0, 1), ("op7.alerts", 1, 1)]
    # A consumer restarted reads 1 and 2 again, and one more: only that one is new.
    again = evidence_store.append([draft(1), draft(1, partition=1), draft(2), draft(1, topic="op7.other")], LOGGED_AT)
    assert [e.coordinates for e in again] == [("op7.alerts", 0, 2), ("op7.other", 0, 1)]
    assert [e.index for e in again] == [3, 4]
    assert evidence_store.append([draft(0), draft(2)], LOGGED_AT) == []
    assert evidence_store.append([], LOGGED_AT) == []
    assert evidence_store.size() == 5
    assert list(evidence_store.entries()) == first + again


def test_the_entries_form_one_chain_and_their_leaves_are_the_stored_ones(evidence_store: EvidenceStore) -> None:
    for batch in range(3):
        evidence_store.append([draft(batch * 10 + i) for i in range(7)], LOGGED_AT + timedelta(seconds=batch))
    entries = list(evidence_store.entries())
    assert len(entries) == 21
    assert_chain(entries)
    assert evidence_store.leaves() == [e.leaf for e in entries]
    assert evidence_store.leaves(5) == [e.leaf for e in entries[:5]]
    assert evidence_store.leaves(0) == []


def test_entries_stream_a_chunk_at_a_time(evidence_store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    evidence_store.append([draft(i) for i in range(10)], LOGGED_AT)
    everything = list(evidence_store.entries())
    monkeypatch.setattr(evidence_store, "chunk_rows", 3)
    assert list(evidence_store.entries()) == everything
    assert list(evidence_store.entries(2, 8)) == everything[2:8]
    assert list(evidence_store.entries(9)) == everything[9:]
    assert list(evidence_store.entries(10)) == [] and list(evidence_store.entries(4, 4)) == []
    assert [p for p, _ in evidence_store.rows(3, 9)] == [3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="negative"):
        list(evidence_store.entries(-1))


def test_rows_are_read_as_they_are_stored_whatever_was_done_to_them(evidence_url: str) -> None:
    with open_store(evidence_url) as store:
        store.append([draft(i) for i in range(6)], LOGGED_AT)
        original = list(store.entries())
        changed = bytearray(original[1].value)
        changed[0] ^= 1
        assert tamper(evidence_url, "UPDATE entries SET value = ? WHERE position = 1", (bytes(changed),)) == 1
        assert tamper(evidence_url, "DELETE FROM entries WHERE position = 2") == 1
        # Two rows swapped: each moved to the other's position, its fields (its entry_index too) as they were.
        tamper(evidence_url, "UPDATE entries SET position = -1 WHERE position = 3")
        tamper(evidence_url, "UPDATE entries SET position = 3 WHERE position = 4")
        tamper(evidence_url, "UPDATE entries SET position = 4 WHERE position = -1")
        rows = list(store.rows())
    assert [(p, e.index) for p, e in rows] == [(0, 0), (1, 1), (3, 4), (4, 3), (5, 5)]
    altered = rows[1][1]
    assert altered.value == bytes(changed) and altered.leaf == original[1].leaf != altered.computed_leaf()
    assert [e for _, e in rows[2:]] == [original[4], original[3], original[5]]


def test_a_row_that_is_not_an_entry_is_named_by_its_position(evidence_url: str) -> None:
    with open_store(evidence_url) as store:
        store.append([draft(0), draft(1)], LOGGED_AT)
        tamper(evidence_url, "UPDATE entries SET kind = 'bogus' WHERE position = 1")
        with pytest.raises(VerificationError, match="position 1 is unreadable"):
            list(store.entries())
        tamper(evidence_url, "UPDATE entries SET kind = 'message', meta = '[1]' WHERE position = 1")
        with pytest.raises(VerificationError, match="position 1 is unreadable: meta is a JSON list"):
            list(store.entries())


def test_entries_are_found_by_case_message_and_reply(evidence_url: str) -> None:
    with open_store(evidence_url) as store:
        store.append(
            [
                draft(0, meta={"sender": "FR.GN", "message_id": "a", "case_id": "C1"}),
                draft(1, meta={"sender": "ES.PN", "message_id": "b", "in_reply_to": "a", "case_id": "C1"}),
                draft(2, meta={"sender": "NL.NCC", "message_id": "c", "in_reply_to": "a"}),
                draft(3, meta={"sender": "FR.GN", "message_id": "d", "case_id": "C2"}),
                draft(4, outcome=Outcome.REFUSED, reason="bad-signature", meta={"claimed_sender": "FR.GN"}),
            ],
            LOGGED_AT,
        )

        def found(**criteria: Any) -> list[int]:
            return [e.offset for e in store.find(**criteria)]

        assert found(case_id="C1") == [0, 1]
        assert found(message_ids=["d", "a", "zz"]) == [0, 3]
        assert found(in_reply_to={"a"}) == [1, 2]
        assert found(case_id="C1", in_reply_to=["a"]) == [1]
        assert found(message_ids=[]) == [] and found(case_id="none") == []
        with pytest.raises(ValueError, match="at least one"):
            store.find()
        with pytest.raises(TypeError, match="not one string"):
            store.find(message_ids="a")
    # The sender column holds the sender, or the sender a refused frame claimed.
    assert tamper(evidence_url, "UPDATE entries SET sender = sender WHERE sender = ?", ("FR.GN",)) == 3


def test_checkpoints_are_kept_in_the_order_they_were_added(evidence_url: str) -> None:
    with open_store(evidence_url) as store:
        assert store.checkpoints() == [] and store.latest_checkpoint() is None
        for size, data in ((0, b"cp-0"), (7, b"\x00cp-7\xff"), (7, b"cp-7 again"), (3, b"cp-3")):
            store.add_checkpoint(size, data)
        with pytest.raises(ValueError, match="negative"):
            store.add_checkpoint(-1, b"x")
    with open_store(evidence_url) as store:
        assert store.checkpoints() == [b"cp-0", b"\x00cp-7\xff", b"cp-7 again", b"cp-3"]
        assert store.latest_checkpoint() == b"cp-3"


def test_a_store_keeps_its_id_and_a_new_store_has_another(evidence_url: str, tmp_path: Path) -> None:
    with open_store(evidence_url) as store:
        store_id = store.store_id
        store.append([draft(0)], LOGGED_AT)
    with open_store(evidence_url) as again:
        assert again.store_id == store_id and again.size() == 1
    with open_store(str(tmp_path / "other.db")) as other:
        assert other.store_id != store_id and len(other.store_id) >= 16


def test_a_store_of_another_schema_version_is_refused(evidence_url: str) -> None:
    open_store(evidence_url).close()
    tamper(evidence_url, "UPDATE store SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match=f"schema is version {SCHEMA_VERSION + 1}, this op7 reads version 1"):
        open_store(evidence_url)


def test_sqlite_stores_are_named_by_url_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:audit/evidence.db") as store:
        store_id = store.store_id
    assert (tmp_path / "audit" / "evidence.db").is_file()
    for url in (f"sqlite://{tmp_path}/audit/evidence.db", "audit/evidence.db", str(tmp_path / "audit/evidence.db")):
        with open_store(url) as store:
            assert store.store_id == store_id


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no URL or path given"),
        ("mysql://auditor:s3cret-pw@db.example/evidence", r"mysql://auditor:\*\*\*@db.example/evidence: unknown kind"),
        ("sqlite://host/evidence.db", "names no host"),
        ("sqlite:", "no file path"),
        ("postgresql://op7:s3cret-pw@127.0.0.1:1/op7_test", r"op7:\*\*\*@127.0.0.1:1/op7_test: connection failed"),
        ("postgresql://op7@127.0.0.1:1/x?password=s3cret-pw", r"password=\*\*\*: connection failed"),
        ("postgresql://op7:s3cret-pw@127.0.0.1:port/op7_test", 'invalid integer value "port"'),
        ("postgresql://op7:s3cret-pw@[::1/op7_test", "unparsable URL"),
    ],
)
def test_a_bad_url_is_a_config_error_that_keeps_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        open_store(url)
    assert "s3cret-pw" not in str(caught.value)
    assert caught.value.__cause__ is None or "s3cret-pw" not in str(caught.value.__cause__)


def test_a_path_that_is_no_store_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="evidence store"):
        open_store(str(tmp_path))
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match=r"garbage\.db"):
        open_store(str(tmp_path / "garbage.db"))


def test_a_wrong_password_is_a_config_error_that_names_the_store_without_it() -> None:
    url = postgres_url()
    head, _, tail = url.rpartition("@")
    wrong = f"{head.rpartition(':')[0]}:not-the-password@{tail}"
    with pytest.raises(ConfigError, match=r"op7:\*\*\*@.*password authentication failed") as caught:
        open_store(wrong)
    assert "not-the-password" not in str(caught.value)


def test_two_writers_at_once_make_one_gap_free_chain(evidence_url: str) -> None:
    batches, per_batch = 12, 25
    ready = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(partition: int) -> None:
        try:
            with open_store(evidence_url) as store:  # a connection of its own
                ready.wait()
                for batch in range(batches):
                    offsets = range(batch * per_batch, (batch + 1) * per_batch)
                    # Each also sends some of the other's records: one of the two logs them, never both.
                    overlap = [draft(batch, partition=1 - partition)]
                    store.append([draft(o, partition=partition) for o in offsets] + overlap, LOGGED_AT)
        except BaseException as exc:
            failures.append(exc)
            raise

    threads = [threading.Thread(target=write, args=(p,)) for p in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    with open_store(evidence_url) as store:
        rows = list(store.rows())
    assert [p for p, _ in rows] == list(range(2 * batches * per_batch))
    entries = [e for _, e in rows]
    assert_chain(entries)
    assert len({e.coordinates for e in entries}) == len(entries)


def test_two_connections_taking_turns_each_append_after_the_other(evidence_url: str) -> None:
    with open_store(evidence_url) as one, open_store(evidence_url) as two:
        for turn in range(6):
            store, partition = (one, 0) if turn % 2 == 0 else (two, 1)
            appended = store.append(
                [draft(turn, partition=partition), draft(turn + 100, partition=partition)], LOGGED_AT
            )
            assert [e.index for e in appended] == [2 * turn, 2 * turn + 1]
        assert one.head() == two.head()
        entries = list(two.entries())
    assert_chain(entries)
    assert [e.partition for e in entries] == [0, 0, 1, 1] * 3
