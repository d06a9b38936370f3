"""The operations centre's cases: alerts folded into the current picture of each case, kept across a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.models import Envelope, KidnappingAlert, Message
from broker.ops.case_store import CaseStore
from broker.ops.cases import CaseBook, CaseFilter, CaseView
from broker.wire.envelope import NodeIdentity, build
from tests.conftest import example

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CASE_ID = "FR-GN-2026-000142"
#: The case as the centre keys it: its issuing node and its own id.
CASE = f"FR.GN/{CASE_ID}"
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class FakeDelivery:
    """What a subscription hands over, without the Kafka record."""

    envelope: Envelope
    message: Message
    raw: bytes


@cache
def _base() -> dict[str, Any]:
    data: dict[str, Any] = example("KidnappingAlert", now=T0).model_dump(mode="json", exclude={"alert_id"})
    return data


def alert(msg_type: str = "Alert", at: datetime = T0, **changes: Any) -> KidnappingAlert:
    """The example alert (case FR-GN-2026-000142, Exercise, AMBER, Immediate, Extreme) sent at ``at``."""
    return KidnappingAlert.model_validate(
        {**_base(), "msg_type": msg_type, "sent_at": at, **changes}, context={"now": at}
    )


def update(of: KidnappingAlert, at: datetime, msg_type: str = "Update", **changes: Any) -> KidnappingAlert:
    return alert(msg_type, at, references=[of.alert_id], **changes)


def _local(view: CaseView) -> str:
    """The issuer's own case id of a view (its key without the issuing node)."""
    return view.case_id.split("/", 1)[1]


def deliver(identity: NodeIdentity, message: Message) -> FakeDelivery:
    """A real signed frame of ``message``, created when it was sent."""
    envelope, frame = build(identity, message, now=message.sent_at)
    return FakeDelivery(envelope, message, frame)


@pytest.fixture
def ops_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ops" / "cases.db"


@pytest.fixture
def store(db: Path) -> Iterator[CaseStore]:
    store = CaseStore(db)
    yield store
    store.close()


@pytest.fixture
def book(store: CaseStore, ops_clock: ManualClock) -> CaseBook:
    return CaseBook(store, ops_clock)


@pytest.fixture
def send(book: CaseBook, fr: NodeIdentity, ops_clock: ManualClock) -> Any:
    """Deliver a message one minute after the last one was received; the case's new view."""

    def apply(message: KidnappingAlert) -> CaseView:
        ops_clock.advance(MIN)
        view = book.apply(deliver(fr, message))
        assert view is not None
        return view

    return apply


def test_an_alert_then_an_update_then_a_cancel(send: Any, book: CaseBook) -> None:
    first = alert(expires_at=T0 + timedelta(hours=6))
    view = send(first)
    assert (view.case_id, view.state, view.closed_by, view.headline) == (CASE, "open", None, first.headline)
    assert view.expires_at == T0 + timedelta(hours=6)
    assert view.victims[0]["family_names"] == "Victim-One" and view.last_seen is not None
    assert view.issuer == {
        "node": "FR.GN",
        "name": "Gendarmerie nationale",
        "desk": "Centre de commandement 24/7",
        "phone": "+33140000000",
        "email": "ops@gn.example",
    }
    changed = update(
        first, T0 + 10 * MIN, headline="Seen at Perpignan", severity="Severe", victims=[], description=None
    )
    view = send(changed)
    assert (view.state, view.headline, view.severity.value, view.updated_at) == (
        "open",
        "Seen at Perpignan",
        "Severe",
        T0 + 10 * MIN,
    )
    assert view.description == first.description  # the latest that has one
    assert view.victims[0]["family_names"] == "Victim-One"  # the Update names none: the Alert's still stand
    assert view.first_sent_at == T0 and view.last_message_id == view.history[-1]["message_id"]
    view = send(update(changed, T0 + 20 * MIN, "Cancel", headline="Cancelled: found safe"))
    assert (view.state, view.closed_by, view.expires_at) == ("closed", "Cancel", None)
    assert [h["msg_type"] for h in view.history] == ["Alert", "Update", "Cancel"]
    assert view.history[1]["references"] == [first.alert_id]
    assert book.cases("open") == [] and [_local(c) for c in book.cases("closed")] == [CASE_ID]


def test_an_update_that_arrives_before_its_alert_folds_after_it(send: Any) -> None:
    first = alert()
    later = update(first, T0 + 5 * MIN, headline="Vehicle found empty", victims=[], last_seen=None)
    alone = send(later)
    assert (alone.state, alone.headline, alone.victims, alone.last_seen) == ("open", "Vehicle found empty", (), None)
    view = send(first)
    assert view.headline == "Vehicle found empty" and view.updated_at == T0 + 5 * MIN
    assert view.first_sent_at == T0
    assert [h["msg_type"] for h in view.history] == ["Alert", "Update"]
    assert view.history[0]["received_at"] > view.history[1]["received_at"]
    assert view.victims and view.last_seen is not None  # from the Alert, received last but sent first


def test_a_cancel_of_an_alert_never_seen_closes_the_case(send: Any) -> None:
    view = send(alert("Cancel", T0, references=["an-alert-never-received"]))
    assert (view.state, view.closed_by) == ("closed", "Cancel")


def test_another_node_cannot_close_or_update_a_case_that_is_not_its_own(
    book: CaseBook, fr: NodeIdentity, keys: dict[str, Any]
) -> None:
    book.apply(deliver(fr, alert()))
    es = NodeIdentity("ES.PN", keys["ES.PN"])
    issuer = {**_base()["issuer"], "node": "ES.PN"}
    foreign = book.apply(deliver(es, alert("Cancel", T0 + MIN, references=["x"], issuer=issuer)))
    assert foreign is not None and foreign.case_id == f"ES.PN/{CASE_ID}"  # a case of its own, same local id
    view = book.view(CASE)
    assert view is not None and view.state == "open"  # FR.GN's case is untouched
    assert {c.case_id for c in book.cases("open")} == {CASE}


def test_an_all_clear_closes_the_case(send: Any) -> None:
    first = alert()
    send(first)
    view = send(update(first, T0 + 30 * MIN, "AllClear", headline="Child found safe"))
    assert (view.state, view.closed_by, view.headline) == ("closed", "AllClear", "Child found safe")


def test_only_an_update_sent_after_the_cancel_reopens_the_case(send: Any) -> None:
    first = alert()
    send(first)
    send(update(first, T0 + 20 * MIN, "Cancel"))
    # Sent before the Cancel, received after it: history, not a new state.
    view = send(update(first, T0 + 10 * MIN, headline="Late news"))
    assert (view.state, view.closed_by) == ("closed", "Cancel")
    assert [h["msg_type"] for h in view.history] == ["Alert", "Update", "Cancel"]
    view = send(update(first, T0 + 30 * MIN, headline="Found alive, suspect at large"))
    assert (view.state, view.closed_by, view.headline) == ("open", None, "Found alive, suspect at large")


def test_a_case_expires_when_every_alert_in_force_has(send: Any, book: CaseBook, ops_clock: ManualClock) -> None:
    first = alert(expires_at=T0 + timedelta(hours=1))
    send(first)
    # The Update supersedes the Alert it references: its later expiry is the case's.
    send(update(first, T0 + 10 * MIN, expires_at=T0 + timedelta(hours=3)))
    ops_clock.set(T0 + timedelta(hours=2))
    view = book.view(CASE)
    assert view is not None and (view.state, view.expires_at) == ("open", T0 + timedelta(hours=3))
    ops_clock.set(T0 + timedelta(hours=3))
    view = book.view(CASE)
    assert view is not None and (view.state, view.closed_by) == ("expired", None)
    assert book.cases("open") == [] and [c.state for c in book.cases("closed")] == ["expired"]
    # An alert in force without an expiry keeps a case open.
    other = send(alert(case_id="ES-PN-1", at=T0 + timedelta(hours=3)))
    assert (other.state, other.expires_at) == ("open", None)


def test_a_redelivery_or_another_message_type_changes_nothing(
    book: CaseBook, store: CaseStore, fr: NodeIdentity
) -> None:
    delivery = deliver(fr, alert())
    assert book.apply(delivery) is not None
    assert book.apply(delivery) is None
    assert len(store.entries(CASE)) == 1 and store.case_ids() == [CASE]
    info = example("CaseInformation", now=T0)
    assert book.apply(deliver(fr, info)) is None
    assert store.case_ids() == [CASE]
    with pytest.raises(TypeError, match="kidnapping alerts"):
        store.add(deliver(fr, info), T0)


def test_an_acknowledgement_holds_until_the_case_changes(send: Any, book: CaseBook, ops_clock: ManualClock) -> None:
    first = alert()
    assert send(first).unacknowledged_change
    ops_clock.advance(MIN)
    view = book.acknowledge(CASE, "j.martin", "ES.PN", "receipt-1")
    assert not view.unacknowledged_change
    assert view.acknowledged == (
        {
            "operator": "j.martin",
            "node": "ES.PN",
            "at": ops_clock.now().isoformat(),
            "message_id": view.last_message_id,
            "receipt_id": "receipt-1",
        },
    )
    view = send(update(first, T0 + 10 * MIN, headline="New sighting"))
    assert view.unacknowledged_change and view.acknowledged[0]["message_id"] != view.last_message_id
    assert not book.acknowledge(CASE, "j.martin", "ES.PN", None).unacknowledged_change
    # An older message received after the acknowledgement is a change too, though not the latest.
    view = send(update(first, T0 + 5 * MIN, headline="An older report"))
    assert view.unacknowledged_change and view.headline == "New sighting"
    with pytest.raises(LookupError):
        book.acknowledge("no-such-case", "j.martin", "ES.PN", None)


def test_an_acknowledgement_in_the_same_instant_as_a_new_update_still_sees_it(book: CaseBook, fr: NodeIdentity) -> None:
    first = alert()
    book.apply(deliver(fr, first))
    book.acknowledge(CASE, "j.martin", "ES.PN", None)
    view = book.apply(deliver(fr, update(first, T0 + MIN)))  # the clock stood still
    assert view is not None and view.unacknowledged_change


def test_statuses_that_differ_are_flagged_and_the_latest_shown(send: Any) -> None:
    first = alert(status="Exercise")
    assert not send(first).mixed_status
    view = send(update(first, T0 + MIN, status="Actual"))
    assert (view.status.value, view.mixed_status) == ("Actual", True)


def test_the_strictest_handling_of_the_case_is_its_tlp(send: Any) -> None:
    first = alert(handling={"tlp": "AMBER"})
    assert send(update(first, T0 + MIN, handling={"tlp": "GREEN"})).tlp.value == "GREEN"
    assert send(first).tlp.value == "AMBER"
    assert send(update(first, T0 + 2 * MIN, handling={"tlp": "RED"})).tlp.value == "RED"
    assert send(update(first, T0 + 3 * MIN, handling={"tlp": "CLEAR"})).tlp.value == "RED"


def test_texts_come_from_the_latest_message_that_has_them(send: Any) -> None:
    english = [{"language": "en", "headline": "Child abducted in Lyon", "instruction": "Call 112"}]
    first = alert(translations=english, instruction="Appelez le 17", ransom={"channel": "Phone call to the mother"})
    send(first)
    view = send(update(first, T0 + MIN, instruction=None, translations=[], ransom={"channel": None}))
    assert view.translations == (
        {"language": "en", "headline": "Child abducted in Lyon", "description": None, "instruction": "Call 112"},
    )
    assert view.instruction == "Appelez le 17" and view.ransom == {
        "demand": None,
        "channel": "Phone call to the mother",
    }
    assert view.languages == ("fr", "en")


def test_cases_are_listed_most_urgent_first(send: Any, book: CaseBook) -> None:
    send(alert(case_id="past-extreme", urgency="Past", severity="Extreme"))
    send(alert(case_id="immediate-minor", urgency="Immediate", severity="Minor"))
    send(alert(case_id="immediate-extreme-old", urgency="Immediate", severity="Extreme"))
    send(alert(case_id="immediate-extreme-new", at=T0 + MIN, urgency="Immediate", severity="Extreme"))
    send(alert(case_id="unknown", urgency="Unknown", severity="Extreme"))
    send(alert(case_id="expected-severe", urgency="Expected", severity="Severe"))
    assert [_local(c) for c in book.cases()] == [
        "immediate-extreme-new",
        "immediate-extreme-old",
        "immediate-minor",
        "expected-severe",
        "past-extreme",
        "unknown",
    ]
    with pytest.raises(ValueError, match="view='everything'"):
        book.cases("everything")


@pytest.fixture
def several(send: Any) -> None:
    """Four open cases, the latest sent at T0 + 20 min."""
    send(alert(case_id="lyon", status="Exercise", handling={"tlp": "AMBER"}))
    es_last_seen = {"at": T0.isoformat(), "place": "Plaza Mayor, Madrid", "country": "ES"}
    send(
        alert(
            case_id="madrid",
            at=T0 + 20 * MIN,
            status="Actual",
            severity="Severe",
            urgency="Expected",
            headline="Niño secuestrado en Madrid",
            description="Visto por última vez en la Plaza Mayor",
            languages=["es"],
            last_seen=es_last_seen,
            handling={"tlp": "GREEN"},
        )
    )
    send(alert(case_id="nowhere", at=T0 + 10 * MIN, status="Test", handling={"tlp": "CLEAR"}, last_seen=None))
    send(alert(case_id="red", status="Actual", handling={"tlp": "RED"}, severity="Minor", urgency="Future"))


@pytest.mark.usefixtures("several")
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (CaseFilter(), ["nowhere", "lyon", "madrid", "red"]),
        (CaseFilter(statuses={"Actual"}), ["madrid", "red"]),
        (CaseFilter(statuses={"Exercise", "Test"}), ["nowhere", "lyon"]),
        (CaseFilter(severities={"Severe", "Minor"}), ["madrid", "red"]),
        (CaseFilter(urgencies={"Future"}), ["red"]),
        (CaseFilter(countries={"FR"}), ["lyon", "red"]),
        (CaseFilter(countries={"ES", "PT"}), ["madrid"]),
        (CaseFilter(tlps={"CLEAR", "GREEN"}), ["nowhere", "madrid"]),
        (CaseFilter(max_age=timedelta(minutes=15)), ["nowhere", "madrid"]),
        (CaseFilter(text="PLAZA mayor"), ["madrid"]),
        (CaseFilter(text="LYON"), ["nowhere", "lyon", "red"]),
        (CaseFilter(text="nowhere"), ["nowhere"]),
        (CaseFilter(statuses={"Actual"}, tlps={"RED"}), ["red"]),
        (CaseFilter(statuses=frozenset()), []),
    ],
)
def test_each_filter(book: CaseBook, ops_clock: ManualClock, flt: CaseFilter, expected: list[str]) -> None:
    ops_clock.set(T0 + 22 * MIN)
    assert [_local(c) for c in book.cases("open", flt)] == expected


def test_a_filter_from_query_parameters() -> None:
    query = {
        "status": "Actual, exercise",
        "severity": "Extreme",
        "urgency": "immediate,Expected",
        "country": "FR,es",
        "tlp": "clear,GREEN,amber+strict",
        "max_age": "24h",
        "q": " lyon ",
        "view": "closed",
    }
    assert CaseFilter.from_query(query) == CaseFilter(
        statuses={"Actual", "Exercise"},
        severities={"Extreme"},
        urgencies={"Immediate", "Expected"},
        countries={"FR", "ES"},
        tlps={"CLEAR", "GREEN", "AMBER_STRICT"},
        max_age=timedelta(hours=24),
        text="lyon",
    )
    assert CaseFilter.from_query({}) == CaseFilter() == CaseFilter.from_query({"status": "", "q": "  "})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"status": "Actual,Real"}, "status='Actual,Real': 'Real' is not a known value"),
        ({"status": "Actual,"}, "status='Actual,': '' is not a known value"),
        ({"severity": "Huge"}, "severity='Huge'"),
        ({"urgency": "Now"}, "urgency='Now'"),
        ({"country": "FR,XX"}, "country='FR,XX': 'XX'"),
        ({"tlp": "WHITE"}, "tlp='WHITE'"),
        ({"max_age": "yesterday"}, "max_age='yesterday'"),
        ({"max_age": "-2h"}, "max_age='-2h'"),
        ({"max_age": "0s"}, "max_age='0s'"),
        ({"q": "x" * 201}, "q='xxx"),
        ({"severty": "Extreme"}, "severty='Extreme': unknown parameter"),
    ],
)
def test_a_wrong_query_parameter_is_named(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        CaseFilter.from_query(query)
    assert message in str(raised.value)


def test_summary_and_detail_are_json(send: Any) -> None:
    first = alert()
    send(first)
    view = send(update(first, T0 + MIN, ransom={"demand": {"amount": "50000", "currency": "EUR"}}))
    summary, detail = view.summary(), view.detail()
    assert json.loads(json.dumps(summary)) == summary and json.loads(json.dumps(detail)) == detail
    assert "history" not in summary and summary["victims"] == {"count": 1, "names": ["Demo Victim-One"]}
    assert summary["updated_at"] == (T0 + MIN).isoformat() and summary["tlp"] == "AMBER"
    assert detail["victims"][0]["photo"]["sha256"].startswith("9f86d0")
    assert detail["ransom"]["demand"] == {"amount": "50000.0000", "currency": "EUR"}
    assert [h["alert_id"] for h in detail["history"]] == [first.alert_id, view.history[1]["alert_id"]]
    assert {k: v for k, v in detail.items() if k not in ("victims", "history")} == {
        k: v for k, v in summary.items() if k != "victims"
    }


def test_a_restarted_dashboard_shows_the_same_cases(
    send: Any, book: CaseBook, db: Path, ops_clock: ManualClock, fr: NodeIdentity
) -> None:
    first = alert(expires_at=T0 + timedelta(hours=4))
    sent = deliver(fr, first)
    book.apply(sent)
    send(update(first, T0 + 10 * MIN, headline="Seen at Perpignan"))
    send(alert(case_id="ES-PN-7", at=T0 + 5 * MIN, urgency="Expected"))
    send(alert("Cancel", T0 + MIN, case_id="NL-NCC-3", references=["gone"]))
    book.acknowledge(CASE, "j.martin", "ES.PN", "receipt-1")
    before = {c.case_id: c for c in book.cases("all")}
    book.store.close()

    restarted = CaseStore(db)
    try:
        again = CaseBook(restarted, ops_clock)
        assert {c.case_id: c for c in again.cases("all")} == before
        assert [_local(c) for c in again.cases()] == [CASE_ID, "ES-PN-7"]
        assert [_local(c) for c in again.cases("closed")] == ["NL-NCC-3"]
        assert again.view(CASE) == before[CASE] and not before[CASE].unacknowledged_change
        ack = restarted.acknowledgements(CASE)[0]
        assert (ack.operator, ack.node, ack.receipt_id, ack.message_id) == (
            "j.martin",
            "ES.PN",
            "receipt-1",
            before[CASE].last_message_id,
        )
        entry = next(e for e in restarted.entries(CASE) if e.message_id == sent.envelope.message_id)
        assert (entry.raw, entry.envelope, entry.message, entry.sender) == (sent.raw, sent.envelope, first, "FR.GN")
        assert entry.created_at == first.sent_at and entry.received_at == T0
        assert again.apply(sent) is None  # still a redelivery after the restart
    finally:
        restarted.close()


def test_a_store_in_memory(fr: NodeIdentity, ops_clock: ManualClock) -> None:
    store = CaseStore(None)
    try:
        book = CaseBook(store, ops_clock)
        assert book.view(CASE) is None and book.cases() == []
        assert book.apply(deliver(fr, alert())) is not None
        assert store.case_ids() == [CASE] and store.acknowledgements(CASE) == []
    finally:
        store.close()


def test_a_store_keeps_its_own_id_and_a_new_one_gets_another(db: Path) -> None:
    first = CaseStore(db)
    made = first.store_id
    first.close()
    again = CaseStore(db)
    try:
        assert again.store_id == made and len(made) == 12
    finally:
        again.close()
    other = CaseStore(db.with_name("other.db"))
    try:
        assert other.store_id != made  # its consumer group is a new one: it reads the alerts topic again
    finally:
        other.close()
