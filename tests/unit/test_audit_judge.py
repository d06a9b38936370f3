"""The judge: every record becomes a draft entry with its outcome, whatever it holds; nothing is opened or decoded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.audit.entry import GENESIS, Draft, Entry, Kind, Outcome
from broker.audit.judge import Judge
from broker.audit.meta import envelope_meta
from broker.errors import MessageError, VerificationError
from broker.models.directory import Role
from broker.node.quarantine import quarantine_entry
from broker.node.receive_state import Keep
from broker.node.topics import TopicLayout
from broker.transport.base import Record
from broker.trust import admin
from broker.trust.directory import DirectoryDocument
from broker.wire.envelope import MAX_FRAME_SIZE, parse_frame
from broker.wire.signing import SigningKey
from tests.unit.test_audit_history import T0, D, Net

LAYOUT = TopicLayout("op7")
NET = Net()
NET.add("DE.BKA", T0 + 2 * D)
LOGGED = datetime(2026, 12, 1, tzinfo=UTC)


def judge() -> Judge:
    return Judge(NET.history(), LAYOUT)


def record(short: str, value: bytes, offset: int = 7, key: bytes | None = b"k") -> Record:
    return Record(LAYOUT.name(short), 2, offset, key, value, 1_793_000_000_000)


def draft_of(short: str, value: bytes, **fields: Any) -> Draft:
    return judge().draft(record(short, value, **fields))


def assert_kept(draft: Draft, short: str, value: bytes) -> None:
    """The draft keeps the record as read: its place, key, timestamp and exact bytes."""
    assert draft.coordinates == (LAYOUT.name(short), 2, draft.offset)
    assert (draft.key, draft.record_ms, draft.value) == (b"k", 1_793_000_000_000, value)


# Messages


def test_a_verified_message_keeps_its_signed_header_as_meta() -> None:
    frame = NET.frame("FR.GN", T0 + D, "ES.PN", sequence=4)
    draft = draft_of("inbox.ES.PN", frame)
    assert_kept(draft, "inbox.ES.PN", frame)
    assert (draft.kind, draft.outcome, draft.reason, draft.detail) == (Kind.MESSAGE, Outcome.VERIFIED, None, None)
    assert draft.meta == envelope_meta(NET.history().verify(frame).envelope)
    assert (draft.meta["sender"], draft.meta["recipients"], draft.meta["sequence"]) == ("FR.GN", ["ES.PN"], 4)
    assert draft.meta["sealed"] is False


def test_a_sealed_message_is_judged_by_its_header_and_kept_as_ciphertext(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = NET.frame("FR.GN", T0 + D, "ES.PN", seal=True)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the judge decoded or opened a payload")

    # Nothing is decoded or decrypted: the auditor holds no key that opens anything, and needs none.
    monkeypatch.setattr("broker.wire.envelope.decode", never)
    monkeypatch.setattr("broker.wire.envelope.decrypt_payload", never)
    draft = draft_of("inbox.ES.PN", frame)
    assert draft.outcome is Outcome.VERIFIED and draft.meta["sealed"] is True
    assert draft.value == frame  # byte for byte
    assert set(draft.meta) == set(envelope_meta(NET.history().verify(frame).envelope))
    payload = parse_frame(frame).payload
    assert b"Gendarmerie" not in payload and b"Gendarmerie" in parse_frame(NET.frame("FR.GN", T0 + D, "ES.PN")).payload


def test_a_tombstone_is_kept_as_refused() -> None:
    draft = draft_of("alerts", b"")
    assert (draft.kind, draft.outcome, draft.reason) == (Kind.MESSAGE, Outcome.REFUSED, "tombstone")
    assert draft.meta == {} and draft.value == b""


def test_random_bytes_are_refused_with_what_is_wrong() -> None:
    draft = draft_of("alerts", b"\x8f\x00 not a frame at all")
    assert (draft.outcome, draft.reason) == (Outcome.REFUSED, "bad-magic")
    assert draft.detail == "not an op7 frame (bad magic)" and draft.meta == {}


@pytest.mark.parametrize("where", [-70, -1, 60])
def test_a_frame_with_a_flipped_byte_is_refused_naming_the_sender_it_claims(where: int) -> None:
    frame = bytearray(NET.frame("FR.GN", T0 + D))
    frame[where] ^= 1
    draft = draft_of("alerts", bytes(frame))
    assert (draft.outcome, draft.reason) == (Outcome.REFUSED, "bad-signature")
    assert draft.meta == {"claimed_sender": "FR.GN"}  # read from the unverified prefix, and called so
    assert draft.value == bytes(frame)


def test_a_stranger_s_frame_is_refused_naming_the_sender_it_claims() -> None:
    draft = draft_of("inbox.ES.PN", NET.frame("BR.PF", T0 + D, "ES.PN"))
    assert (draft.outcome, draft.reason, draft.meta) == (Outcome.REFUSED, "unknown-sender", {"claimed_sender": "BR.PF"})
    assert "BR.PF" in str(draft.detail)


def test_a_frame_is_judged_by_the_directory_of_its_time() -> None:
    before = draft_of("alerts", NET.frame("DE.BKA", T0 + D))
    after = draft_of("alerts", NET.frame("DE.BKA", T0 + 3 * D))
    assert (before.outcome, before.reason) == (Outcome.REFUSED, "unknown-sender")
    assert (after.outcome, after.meta["sender"]) == (Outcome.VERIFIED, "DE.BKA")


# Quarantine accounts


def refused_record(value: bytes) -> Record:
    return Record(LAYOUT.name("inbox.ES.PN"), 1, 41, b"case-key", value, 1_793_000_000_000)


def test_a_quarantine_entry_is_kept_as_the_quarantining_node_s_account() -> None:
    stranger = NET.frame("BR.PF", T0 + D, "ES.PN")
    error = VerificationError("unknown sender BR.PF: not in the network directory", reason="unknown-sender")
    account = quarantine_entry(refused_record(stranger), error, "ES.PN.inbox", T0 + D)
    draft = draft_of("quarantine.ES.PN", account)
    assert (draft.kind, draft.outcome) == (Kind.QUARANTINE, Outcome.VERIFIED)
    assert (draft.reason, draft.detail) == ("unknown-sender", "unknown sender BR.PF: not in the network directory")
    assert draft.meta == {
        "quarantined_by": "ES.PN",
        "origin_topic": "op7.inbox.ES.PN",
        "origin_partition": 1,
        "origin_offset": 41,
        "consumer_group": "ES.PN.inbox",
        "value_sha256": json.loads(account)["value_sha256"],
        "claimed_sender": "BR.PF",  # from the value the entry kept
    }
    assert draft.value == account


def test_a_quarantine_entry_without_the_value_claims_no_sender() -> None:
    error = MessageError("replayed", reason="replay")
    omitted = quarantine_entry(refused_record(NET.frame("FR.GN", T0 + D)), error, "g", T0, Keep(omitted="copy"))
    draft = draft_of("quarantine", omitted)
    assert (draft.outcome, draft.reason) == (Outcome.VERIFIED, "replay")
    assert draft.meta["quarantined_by"] is None and "claimed_sender" not in draft.meta
    garbage = quarantine_entry(refused_record(b"\x00garbage"), error, "g", T0)
    assert "claimed_sender" not in draft_of("quarantine.FR.GN", garbage).meta


def test_an_oversized_record_s_quarantine_entry_is_kept_with_its_prefix() -> None:
    error = MessageError("too large", reason="too-large")
    account = quarantine_entry(refused_record(b"\x01" * (MAX_FRAME_SIZE + 1)), error, "g", T0)
    draft = draft_of("quarantine.FR.GN", account)
    assert (draft.outcome, draft.reason, draft.meta["quarantined_by"]) == (Outcome.VERIFIED, "too-large", "FR.GN")
    assert "value_prefix" in json.loads(account) and draft.value == account


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"not json", "Expecting value"),
        (b"\x80abc", "codec can't decode"),
        (b"[1, 2]", "it is not a JSON object"),
        (b'{"detail": "no reason"}', "'reason'"),
        (b'{"reason": "x"}', "'detail'"),
        (b'{"reason": 7, "detail": "d"}', "reason and detail must be text"),
        (b'{"reason": "x", "detail": ["d"]}', "reason and detail must be text"),
    ],
)
def test_a_malformed_quarantine_entry_is_refused_naming_the_problem(value: bytes, problem: str) -> None:
    draft = draft_of("quarantine.FR.GN", value)
    assert (draft.kind, draft.outcome, draft.reason) == (Kind.QUARANTINE, Outcome.REFUSED, "bad-quarantine-entry")
    assert str(draft.detail).startswith("not a quarantine entry: ") and problem in str(draft.detail)
    assert draft.meta == {} and draft.value == value


# Directory versions


def test_a_directory_version_is_verified_with_what_it_lists() -> None:
    draft = draft_of("directory", NET.data(2))
    assert (draft.kind, draft.outcome, draft.reason) == (Kind.DIRECTORY, Outcome.VERIFIED, None)
    assert draft.meta == {
        "network": "op7-audit",
        "version": 2,
        "issued_at": (T0 + 2 * D).isoformat(),
        "nodes": ["DE.BKA", "ES.PN", "FR.GN", "NL.AUDIT"],
    }


def test_a_new_directory_version_is_taken_when_judged() -> None:
    net = Net()
    net.add("DE.BKA", T0 + D)
    judging = Judge(net.history(1), LAYOUT)
    assert judging.draft(record("directory", net.data(2))).outcome is Outcome.VERIFIED
    assert judging.draft(record("alerts", net.frame("DE.BKA", T0 + 2 * D))).outcome is Outcome.VERIFIED


def test_a_forged_directory_version_is_refused() -> None:
    impostor = SigningKey.generate()
    next_version = admin.add_node(NET.versions[-1], NET.card("BR.PF"), "PF", [Role.AUDITOR], ["all"], now=T0 + 3 * D)
    forged = draft_of("directory", DirectoryDocument(admin.sign(next_version, impostor)).to_bytes())
    assert (forged.kind, forged.outcome, forged.reason) == (Kind.DIRECTORY, Outcome.REFUSED, "directory-signatures")
    # An older version rewritten, while a newer one is held: a fork, not a version already held.
    body = admin.edit(NET.versions[0].model_copy(update={"signatures": ()}), lambda d: d["nodes"].pop(), now=T0)
    fork = draft_of("directory", DirectoryDocument(admin.sign(body, NET.authority)).to_bytes())
    assert (fork.outcome, fork.reason) == (Outcome.REFUSED, "directory-fork")
    assert draft_of("directory", b"\x00 no directory").reason == "bad-directory"


# Any record at all


TOPICS = ["alerts", "inbox.ES.PN", "quarantine", "quarantine.FR.GN", "directory", "elsewhere.topic", "op7x"]
FRAME = NET.frame("FR.GN", T0 + D, "ES.PN")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """Any bytes, and bytes close to what the topics carry: frames and directory versions with a byte changed or
    cut short, quarantine-like JSON with any fields."""
    kind = draw(st.sampled_from(["bytes", "frame", "directory", "account"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "account":
        account = draw(st.dictionaries(st.sampled_from(["reason", "detail", "topic", "value", "offset"]), JSON_VALUES))
        if draw(st.booleans()):
            account["value"] = base64.b64encode(draw(st.sampled_from([FRAME, FRAME[:50], b""]))).decode()
        return json.dumps(account).encode()
    data = bytearray(FRAME if kind == "frame" else NET.data(1))
    where = draw(st.integers(0, len(data) - 1))
    if draw(st.booleans()):
        data[where] ^= draw(st.integers(1, 255))
        return bytes(data)
    return bytes(data[:where])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), value=values(), key=st.none() | st.binary(max_size=8))
def test_any_record_gives_a_draft_never_an_exception(topic: str, value: bytes, key: bytes | None) -> None:
    judging = Judge(NET.history(), LAYOUT)
    read = Record(topic if topic == "op7x" else LAYOUT.name(topic), 0, 3, key, value, 5)
    draft = judging.draft(read)
    assert (draft.coordinates, draft.key, draft.value, draft.record_ms) == ((read.topic, 0, 3), key, value, 5)
    assert draft.reason != "internal-error", draft.detail
    assert (draft.outcome is Outcome.REFUSED) <= (draft.reason is not None and draft.detail is not None)
    # Whatever it holds, it can be placed in the log: its meta is JSON.
    assert Entry.place(draft, 0, LOGGED, GENESIS).leaf
