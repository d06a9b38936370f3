"""``verify_log`` on SQLite and on PostgreSQL: an intact log verifies; every change to the rows is named at the first
entry it touches, with what was done to it; checkpoints are held to their signatures; withheld messages are gaps."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import GENESIS, Entry, Kind, Outcome
from broker.audit.gaps import Gap, SequenceTracker
from broker.audit.history import DirectoryHistory
from broker.audit.judge import Judge
from broker.audit.store import COLUMNS, EvidenceStore, _row
from broker.audit.verify import Finding, LogReport, verify_log
from broker.node.topics import TopicLayout
from broker.transport.base import Record
from broker.wire import merkle
from tests import audit_db
from tests.audit_db import tamper
from tests.unit.test_audit_history import T0, D, H, Net

#: The fixtures: a fresh store per test (its URL, or the store open), on each backend.
evidence_url = audit_db.evidence_url
evidence_store = audit_db.evidence_store

LAYOUT = TopicLayout("op7")
NET = Net()
AUDITOR = NET.identity("NL.AUDIT")
LOGGED = datetime(2026, 11, 20, 8, 30, 15, 123_457, tzinfo=UTC)
SIGNED_AT = T0 + 10 * D
#: The log's size, and the sizes its checkpoints were signed at.
SIZE, CHECKPOINTS = 16, (6, 11, 16)


def records() -> list[Record]:
    """A directory version, FR.GN's alerts numbered 1 to 9, a stranger's frame and a tombstone, ES.PN's messages to
    FR.GN numbered 1 to 4."""
    values = [("directory", NET.data(1))]
    values += [("alerts", NET.frame("FR.GN", T0 + n * H, sequence=n)) for n in range(1, 10)]
    values += [("inbox.ES.PN", NET.frame("BR.PF", T0 + H, "ES.PN")), ("alerts", b"")]
    values += [("inbox.FR.GN", NET.frame("ES.PN", T0 + n * H, "FR.GN", sequence=n)) for n in range(1, 5)]
    return [Record(LAYOUT.name(t), 0, offset, None, v, 1_793_000_000_000) for offset, (t, v) in enumerate(values)]


def sign(store: EvidenceStore, size: int, identity: Any = AUDITOR, at: datetime = SIGNED_AT) -> bytes:
    data = Checkpoint.sign(identity, size, merkle.root(store.leaves(size)), at).to_bytes()
    store.add_checkpoint(size, data)
    return data


def fill(store: EvidenceStore) -> list[Entry]:
    """The log of :func:`records`, judged as the auditor judges, with checkpoints at :data:`CHECKPOINTS`."""
    judge = Judge(DirectoryHistory(NET.anchor), LAYOUT)
    drafts = [judge.draft(r) for r in records()]
    entries: list[Entry] = []
    for start, stop in zip((0, *CHECKPOINTS), CHECKPOINTS, strict=False):
        entries += store.append(drafts[start:stop], LOGGED)
        sign(store, stop)
    assert len(entries) == SIZE
    return entries


def verify(store: EvidenceStore, **options: Any) -> LogReport:
    """What ``op7 audit verify`` finds, from the anchor alone (the directory versions come from the log)."""
    return verify_log(store, DirectoryHistory(NET.anchor), **options)


def first(report: LogReport) -> tuple[int, str]:
    assert report.first is not None, "the change was not found"
    return report.first.index, report.first.kind


def write(url: str, entry: Entry, position: int) -> None:
    """Replace the row at ``position`` with ``entry`` (its fields and its stored leaf)."""
    tamper(url, "DELETE FROM entries WHERE position = ?", (position,))
    insert(url, entry, position)


def insert(url: str, entry: Entry, position: int) -> None:
    row = (position, *_row(entry)[1:])
    tamper(url, f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})", row)


def test_an_intact_log_with_checkpoints_verifies(evidence_store: EvidenceStore) -> None:
    fill(evidence_store)
    seen: list[int] = []
    report = verify(evidence_store, progress=seen.append)
    assert report.intact and report.first is None and report.findings == []
    assert (report.size, report.refused, report.uncovered, len(seen)) == (SIZE, 2, 0, SIZE)
    assert [c.size for c in report.checkpoints] == list(CHECKPOINTS)
    assert report.gaps == []
    # Entries logged after the last checkpoint are not covered yet, and not a problem.
    evidence_store.append([Judge(NET.history(), LAYOUT).draft(Record("op7.alerts", 0, 99, None, b"", 1))], LOGGED)
    later = verify(evidence_store)
    assert later.intact and later.uncovered == 1


def test_one_byte_of_a_value_changed_is_named_at_its_entry(evidence_url: str, evidence_store: EvidenceStore) -> None:
    entries = fill(evidence_store)
    value = bytearray(entries[8].value)
    value[-3] ^= 1
    tamper(evidence_url, "UPDATE entries SET value = ? WHERE position = ?", (bytes(value), 8))
    report = verify(evidence_store)
    assert first(report) == (8, "modified")
    assert report.first is not None and report.first.text.startswith("entry 8 modified: its bytes or fields differ")
    # The checkpoints over it no longer match: that is the same change, not another finding.
    assert [f.index for f in report.findings] == [8]
    assert [c.size for c in report.checkpoints] == [6]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "unknown-sender"),  # a verified message made refused
        ("meta", json.dumps({"sender": "ES.PN"})),
        ("topic", "op7.inbox.ES.PN"),
        ('"offset"', 1234),
        ("logged_at", 0),
        ("outcome", "refused"),
        ("previous", GENESIS),
        # The query columns, which no hash covers, must say what the metadata says: a case id changed there would
        # hide the entry from its case's bundle.
        ("case_id", "XX-OTHER-CASE"),
        ("sender", "ES.PN"),
        ("in_reply_to", "01900000-0000-7000-8000-000000000000"),
    ],
)
def test_a_field_changed_is_named_at_its_entry(
    evidence_url: str, evidence_store: EvidenceStore, column: str, value: object
) -> None:
    fill(evidence_store)
    tamper(evidence_url, f"UPDATE entries SET {column} = ? WHERE position = ?", (value, 4))
    assert first(verify(evidence_store)) == (4, "modified")


@pytest.mark.parametrize(("column", "value"), [("meta", "{not json"), ("kind", "bogus"), ("meta", "[1, 2]")])
def test_a_row_that_no_longer_reads_is_named_and_the_rows_after_it_verified(
    evidence_url: str, evidence_store: EvidenceStore, column: str, value: str
) -> None:
    entries = fill(evidence_store)
    tamper(evidence_url, f"UPDATE entries SET {column} = ? WHERE position = ?", (value, 5))
    changed = bytes([entries[12].value[0] ^ 1]) + entries[12].value[1:]
    tamper(evidence_url, "UPDATE entries SET value = ? WHERE position = ?", (changed, 12))
    report = verify(evidence_store)
    assert [(f.index, f.kind) for f in report.findings] == [(5, "modified"), (12, "modified")]
    assert "entry 5 modified: it no longer reads as an entry" in report.findings[0].text
    assert report.size == SIZE and report.refused == 2


def test_an_entry_rewritten_with_its_hash_is_named_by_the_entry_after_it(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    entries = fill(evidence_store)
    forged = dataclasses.replace(entries[7], value=NET.frame("FR.GN", T0 + 7 * H, sequence=7))
    write(evidence_url, forged.with_leaf(forged.computed_leaf()), 7)
    report = verify(evidence_store)
    assert first(report) == (7, "rewritten")
    assert report.first is not None and "entry 8 names another before it" in report.first.text
    assert [f.index for f in report.findings] == [7]


def test_the_last_entry_rewritten_with_its_hash_is_caught_by_the_checkpoint(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    entries = fill(evidence_store)
    forged = dataclasses.replace(entries[-1], reason="forged")
    write(evidence_url, forged.with_leaf(forged.computed_leaf()), SIZE - 1)
    report = verify(evidence_store)
    assert first(report) == (11, "checkpoint")
    assert report.first is not None and "one of entries 11 to 15 changed" in report.first.text


def test_a_row_deleted_in_the_middle_is_named_and_leaves_a_gap(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    fill(evidence_store)
    tamper(evidence_url, "DELETE FROM entries WHERE position = ?", (8,))
    report = verify(evidence_store)
    assert report.findings == [Finding(8, "deleted", "entry 8 deleted: the log goes on at entry 9")]
    # FR.GN's alert number 8 is no longer in the log.
    assert [(g.sender, g.first, g.last) for g in report.gaps] == [("FR.GN", 8, 8)]
    tamper(evidence_url, "DELETE FROM entries WHERE position IN (?, ?)", (2, 3))
    assert verify(evidence_store).findings[0] == Finding(
        2, "deleted", "entries 2 to 3 deleted: the log goes on at entry 4"
    )


def test_the_last_rows_deleted_are_named_by_the_checkpoint_that_covers_them(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    fill(evidence_store)
    tamper(evidence_url, "DELETE FROM entries WHERE position >= ?", (13,))
    report = verify(evidence_store)
    assert first(report) == (13, "deleted")
    assert report.first is not None
    assert "entries 13 to 15 deleted: the log ends at entry 12, the checkpoint of size 16" in report.first.text
    assert [c.size for c in report.checkpoints] == [6, 11]


def test_the_last_rows_deleted_with_their_checkpoints_are_named_by_the_published_copy(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    fill(evidence_store)
    published = evidence_store.checkpoints()
    tamper(evidence_url, "DELETE FROM entries WHERE position >= ?", (9,))
    tamper(evidence_url, "DELETE FROM checkpoints WHERE size > ?", (6,))
    assert verify(evidence_store).intact  # the store alone cannot tell
    report = verify(evidence_store, published=published)
    assert first(report) == (9, "deleted")


def test_two_rows_swapped_are_named_at_the_first(evidence_url: str, evidence_store: EvidenceStore) -> None:
    fill(evidence_store)
    for source, target in ((3, -1), (9, 3), (-1, 9)):
        tamper(evidence_url, "UPDATE entries SET position = ? WHERE position = ?", (target, source))
    report = verify(evidence_store)
    assert report.findings == [Finding(3, "reordered", "entries 3 and 9 swapped places")]


def test_a_row_moved_is_named_at_its_new_place(evidence_url: str, evidence_store: EvidenceStore) -> None:
    fill(evidence_store)
    tamper(evidence_url, "UPDATE entries SET position = ? WHERE position = ?", (SIZE + 5, 4))
    report = verify(evidence_store)
    assert first(report) == (4, "deleted")
    assert (SIZE + 5, "reordered") in [(f.index, f.kind) for f in report.findings]


def shift(url: str, start: int) -> None:
    """Move the rows from ``start`` on one place later (two steps: positions are unique)."""
    tamper(url, "UPDATE entries SET position = position + 1000000 WHERE position >= ?", (start,))
    tamper(url, "UPDATE entries SET position = position - 999999 WHERE position >= 1000000")


def test_a_row_inserted_with_the_rows_after_it_renumbered_is_named(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    entries = fill(evidence_store)
    shift(evidence_url, 9)
    # A message FR.GN never sent through the network, placed as entry 9 and chained to entry 8 as the log would.
    forged = Record("op7.alerts", 0, 500, None, NET.frame("FR.GN", T0, sequence=20), 1)
    draft = Judge(NET.history(), LAYOUT).draft(forged)
    insert(evidence_url, Entry.place(draft, 9, LOGGED, entries[8].leaf), 9)
    report = verify(evidence_store)
    assert first(report) == (9, "inserted")
    assert report.first is not None and "the entry at 10 holds" in report.first.text
    assert all(f.index >= 9 for f in report.findings)


def test_a_copy_of_an_entry_inserted_is_named(evidence_url: str, evidence_store: EvidenceStore) -> None:
    entries = fill(evidence_store)
    shift(evidence_url, 12)
    insert(evidence_url, dataclasses.replace(entries[2], offset=10**9), 12)
    report = verify(evidence_store)
    assert first(report) == (12, "inserted")
    assert report.first is not None and "claims the place of entry 2, which the entry at 2 holds" in report.first.text


def test_a_log_rewritten_consistently_is_caught_by_the_checkpoint_naming_the_range(
    evidence_url: str, evidence_store: EvidenceStore
) -> None:
    entries = fill(evidence_store)
    # Entry 8 forged, and every entry from it placed again: each hash and each link recomputed.
    forged = [dataclasses.replace(entries[8], value=NET.frame("FR.GN", T0 + 8 * H, sequence=8)), *entries[9:]]
    previous = entries[7].leaf
    for entry in forged:
        placed = Entry.place(entry, entry.index, entry.logged_at, previous)
        write(evidence_url, placed, entry.index)
        previous = placed.leaf
    report = verify(evidence_store)
    assert report.findings == [
        Finding(
            6,
            "checkpoint",
            f"one of entries 6 to 10 changed: the log's first 11 entries are not those of the checkpoint of size 11 "
            f"signed by NL.AUDIT at {SIGNED_AT:%Y-%m-%dT%H:%M:%SZ}",
        )
    ]
    assert [c.size for c in report.checkpoints] == [6]


def test_a_checkpoint_with_a_bad_signature_is_refused(evidence_store: EvidenceStore) -> None:
    fill(evidence_store)
    doc = json.loads(sign(evidence_store, 8))
    doc["root"] = "00" * 32
    evidence_store.add_checkpoint(8, json.dumps(doc).encode())
    report = verify(evidence_store)
    assert first(report) == (0, "checkpoint")
    assert report.first is not None and "a checkpoint of size 8 signed by NL.AUDIT" in report.first.text
    assert "signature does not verify" in report.first.text
    assert [c.size for c in report.checkpoints] == [6, 8, 11, 16]  # the genuine one of size 8 still counts


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        (NET.identity("FR.GN"), "not an auditor in the directory"),
        (dataclasses.replace(AUDITOR, network="op7-other"), "is for network 'op7-other', not 'op7-audit'"),
        (NET.identity("BR.PF"), "unknown sender BR.PF"),
    ],
)
def test_a_checkpoint_signed_by_another_than_the_network_s_auditor_is_refused(
    evidence_store: EvidenceStore, identity: Any, reason: str
) -> None:
    fill(evidence_store)
    sign(evidence_store, SIZE, identity)
    report = verify(evidence_store)
    assert first(report) == (0, "checkpoint") and len(report.findings) == 1
    assert reason in report.findings[0].text


@pytest.mark.parametrize("data", [b"{}", b"not json", b'{"format": "op7-audit-checkpoint/1", "size": 1}'])
def test_a_published_checkpoint_that_does_not_read_is_named(evidence_store: EvidenceStore, data: bytes) -> None:
    fill(evidence_store)
    report = verify(evidence_store, published=[data])
    assert first(report) == (0, "checkpoint")
    assert report.findings[0].text.startswith("a checkpoint does not read")


def test_a_checkpoint_whose_key_id_is_no_key_id_is_named(evidence_store: EvidenceStore) -> None:
    fill(evidence_store)
    doc = json.loads(evidence_store.checkpoints()[0])
    report = verify(evidence_store, published=[json.dumps({**doc, "key_id": "zz"}).encode()])
    assert report.first is not None and "key_id 'zz' is not a key id" in report.first.text


def test_a_checkpoint_signed_by_a_revoked_key_is_refused(evidence_store: EvidenceStore) -> None:
    net = Net()
    net.revoke("NL.AUDIT", T0 + 2 * D)
    evidence_store.append([Judge(DirectoryHistory(net.anchor), LAYOUT).draft(
        Record("op7.directory", 0, v, None, net.data(v + 1), 1)) for v in range(2)], LOGGED)  # fmt: skip
    sign(evidence_store, 2, net.identity("NL.AUDIT"), at=T0 + 3 * D)
    report = verify_log(evidence_store, DirectoryHistory(net.anchor))
    assert report.first is not None and "was revoked at" in report.first.text
    sign(evidence_store, 2, net.identity("NL.AUDIT"), at=T0 + D)
    assert len(verify_log(evidence_store, DirectoryHistory(net.anchor)).checkpoints) == 1


def test_every_finding_names_the_first_entry_a_change_touched(evidence_url: str, evidence_store: EvidenceStore) -> None:
    entries = fill(evidence_store)
    tamper(evidence_url, "UPDATE entries SET reason = ? WHERE position = ?", ("x", 13))
    tamper(evidence_url, "DELETE FROM entries WHERE position = ?", (10,))
    forged = dataclasses.replace(entries[4], detail="forged")
    write(evidence_url, forged.with_leaf(forged.computed_leaf()), 4)
    report = verify(evidence_store)
    assert [(f.index, f.kind) for f in report.findings] == [(4, "rewritten"), (10, "deleted"), (13, "modified")]
    assert first(report) == (4, "rewritten")


# Gaps


def message(sender: str, sequence: int | None, kind: Kind = Kind.MESSAGE, outcome: Outcome = Outcome.VERIFIED) -> Entry:
    meta = {"sender": sender, "message_id": f"{sender}-{sequence}", "sequence": sequence}
    return Entry("op7.alerts", 0, 0, 0, None, b"", kind, outcome, meta=meta)


def test_numbers_withheld_between_those_seen_are_gaps() -> None:
    seen = [message("FR.GN", n) for n in (3, 4, 7, 8, 12)] + [message("ES.PN", n) for n in (1, 3)]
    tracker = SequenceTracker().add_all(seen)
    assert tracker.gaps() == [
        Gap("ES.PN", 2, 2, "ES.PN-1", "ES.PN-3"),
        Gap("FR.GN", 5, 6, "FR.GN-4", "FR.GN-7"),
        Gap("FR.GN", 9, 11, "FR.GN-8", "FR.GN-12"),
    ]
    assert tracker.gaps()[2].describe() == (
        "FR.GN: 3 message(s) withheld or lost (numbers 9 to 11, between FR.GN-8 and FR.GN-12)"
    )
    # Numbers below the first one seen may predate the log: not gaps.
    assert tracker.senders() == {"ES.PN": (1, 3), "FR.GN": (3, 12)}


def test_duplicates_unnumbered_and_refused_messages_make_no_gap() -> None:
    tracker = SequenceTracker().add_all(
        [
            message("FR.GN", 1),
            message("FR.GN", 2),
            message("FR.GN", 2),  # read twice (two topics, or a resend)
            message("FR.GN", None),
            message("FR.GN", 9, outcome=Outcome.REFUSED),
            message("FR.GN", 9, kind=Kind.QUARANTINE),
            message("FR.GN", 3),
        ]
    )
    assert tracker.gaps() == [] and tracker.senders() == {"FR.GN": (1, 3)}


def test_verify_reports_the_gaps_of_the_log(evidence_store: EvidenceStore) -> None:
    judge = Judge(NET.history(), LAYOUT)
    frames = [NET.frame("FR.GN", T0 + n * H, sequence=n) for n in (2, 3, 5, 5, 9)]
    evidence_store.append([judge.draft(Record("op7.alerts", 0, i, None, f, 1)) for i, f in enumerate(frames)], LOGGED)
    report = verify(evidence_store)
    assert report.intact
    assert [(g.sender, g.first, g.last) for g in report.gaps] == [("FR.GN", 4, 4), ("FR.GN", 6, 8)]
