"""The auditor's periodic report, over a scripted log of real signed frames: exact counts, and its four outputs."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from defusedxml import ElementTree
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.entry import GENESIS, Draft, Entry, Kind, Outcome
from broker.audit.meta import envelope_meta, message_meta
from broker.audit.report import AlertFigures, Outcomes, Report, Times, build_report, national_report
from broker.audit.report_chart import render_svg
from broker.audit.report_model import nearest_rank
from broker.audit.report_output import CSV_COLUMNS, render_csv, render_json, render_text, tables
from broker.errors import ConfigError, MessageError
from broker.models import Authority, Envelope, Handling, Message, NationalReport, Status, Tlp
from broker.node.deadlines import DeadlinePolicy
from broker.trust.store import TrustStore
from broker.wire.codec import decode
from broker.wire.envelope import NodeIdentity, build, parse_frame, verify_frame
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example

H, D = timedelta(hours=1), timedelta(days=1)
T0 = datetime(2026, 3, 2, tzinfo=UTC)
SINCE, UNTIL, NOW = T0, T0 + 10 * D, T0 + 12 * D
NETWORK = "eu-kidnap"
NODES = ("FR.GN", "ES.PN", "DE.BKA", "MX.FGR")
KEYS = {n: SigningKey.generate() for n in NODES}
SEALING = {n: EncryptionKey.generate() for n in NODES}
TRUST = TrustStore()
for _node in NODES:
    TRUST.add(_node, KEYS[_node].public, SEALING[_node].public)
IDENTITIES = {n: NodeIdentity(n, KEYS[n], NETWORK) for n in NODES}
MLA_REQUEST, MLA_RESPONSE = "op7.mla.MutualLegalAssistanceRequest", "op7.mla.MutualLegalAssistanceResponse"
EXTRADITION, COLLABORATION = "op7.extradition.ExtraditionRequest", "op7.cooperation.CollaborationRequest"
ALERT = "op7.alert.KidnappingAlert"


def authority(node: str) -> Authority:
    return Authority.model_validate(example("MutualLegalAssistanceRequest").issuer.model_dump() | {"node": node})


def message(type_name: str, at: datetime, **changes: Any) -> Any:
    """The example of ``type_name`` sent at ``at``, status Actual, with ``changes`` (node ids for authorities)."""
    base = example(type_name, now=at)
    data = base.model_dump(mode="json") | {"status": "Actual", "sent_at": at.isoformat()}
    for name, value in changes.items():
        data[name] = authority(value).model_dump(mode="json") if name.endswith(("authority", "issuer")) else value
    return type(base).model_validate(data, context={"now": at})


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class Log:
    """An evidence log being written: each frame judged as the auditor judges it, then placed."""

    entries: list[Entry] = field(default_factory=list)
    #: The frames sent, by message id: to read one again, or alter it.
    frames: dict[str, bytes] = field(default_factory=dict)

    def place(self, draft: Draft) -> None:
        previous = self.entries[-1].leaf if self.entries else GENESIS
        self.entries.append(Entry.place(draft, len(self.entries), NOW, previous))

    def frame(self, value: bytes, topic: str, at: datetime) -> Envelope | None:
        """Log ``value`` read from ``topic`` at ``at``: verified with its header as meta, or refused."""
        try:
            envelope = verify_frame(value, TRUST).envelope
        except MessageError as exc:
            try:
                claimed = {"claimed_sender": parse_frame(value).sender}
            except MessageError:
                claimed = {}
            self.place(self._draft(topic, at, value, Kind.MESSAGE, Outcome.REFUSED, exc.reason, str(exc), claimed))
            return None
        self.place(self._draft(topic, at, value, Kind.MESSAGE, Outcome.VERIFIED, None, None, envelope_meta(envelope)))
        return envelope

    def send(
        self, sender: str, msg: Message, at: datetime, *recipients: str, seal: bool = False, **options: Any
    ) -> Envelope:
        seal_to = {r: SEALING[r].public for r in recipients} if seal else None
        _, value = build(IDENTITIES[sender], msg, now=at, recipients=recipients, seal_to=seal_to, **options)
        envelope = self.frame(value, f"op7.inbox.{recipients[0]}" if recipients else "op7.alerts", at)
        assert envelope is not None
        self.frames[envelope.message_id] = value
        return envelope

    def reply(
        self, sender: str, type_name: str, at: datetime, to: Envelope, *, seal: bool = False, **changes: Any
    ) -> Envelope:
        """``sender``'s message of ``type_name`` in reply to ``to``, addressed to its sender."""
        reply = message(type_name, at, issuer=sender, **changes)
        return self.send(sender, reply, at, to.sender, seal=seal, in_reply_to=to.message_id)

    def quarantined(self, by: str, reason: str, claimed: str, at: datetime) -> None:
        meta = {"quarantined_by": by, "origin_topic": f"op7.inbox.{by}", "claimed_sender": claimed}
        account = json.dumps({"reason": reason, "detail": "refused"}).encode()
        self.place(
            self._draft(f"op7.quarantine.{by}", at, account, Kind.QUARANTINE, Outcome.VERIFIED, reason, "refused", meta)
        )

    @staticmethod
    def _draft(
        topic: str,
        at: datetime,
        value: bytes,
        kind: Kind,
        outcome: Outcome,
        reason: str | None,
        detail: str | None,
        meta: dict[str, Any],
    ) -> Draft:
        return Draft(topic, 0, ms(at), ms(at), None, value, kind, outcome, reason, detail, meta)


def alert(sender: str, case_id: str, at: datetime, msg_type: str = "Alert", *references: str, **changes: Any) -> Any:
    return message(
        "KidnappingAlert", at, issuer=sender, case_id=case_id, msg_type=msg_type, references=list(references), **changes
    )


def scenario() -> Log:
    """Alerts of FR and ES, requests answered in time, late, never (overdue) and not yet (pending), sealed ones,
    copies, messages either side of the period, exercise traffic, refused frames and quarantine accounts."""
    log = Log()
    log_alerts(log)
    log_requests(log)
    # The period's bounds: its first instant is in, its end is not, nor a request of before.
    log.send("FR.GN", message("CaseInformation", SINCE), SINCE, "ES.PN")
    log.send("FR.GN", message("CaseInformation", UNTIL), UNTIL, "ES.PN")
    log.send("FR.GN", message("MutualLegalAssistanceRequest", T0 - 2 * D), T0 - 2 * D, "ES.PN")
    log_refusals(log)
    return log


def log_alerts(log: Log) -> None:
    # FR case A: issued with a ransom demand, updated, cancelled; case C issued and expired.
    a1 = alert("FR.GN", "FR-GN-A", T0 + H, ransom={"demand": {"amount": "50000", "currency": "EUR"}})
    a2 = alert("FR.GN", "FR-GN-A", T0 + 2 * H, "Update", a1.alert_id)
    log.send("FR.GN", a1, T0 + H)
    log.send("FR.GN", a2, T0 + 2 * H)
    log.send("FR.GN", alert("FR.GN", "FR-GN-A", T0 + 3 * D, "Cancel", a2.alert_id), T0 + 3 * D)
    log.send("FR.GN", alert("FR.GN", "FR-GN-C", T0 + D, expires_at=(T0 + 5 * D).isoformat()), T0 + D)
    # ES case B: two victims, still open (its update comes after the period); case E: issued before, closed in it.
    victims = example("KidnappingAlert").model_dump(mode="json")["victims"]
    second = victims[0] | {"given_names": "Demo", "family_names": "Victim-Two"}
    b1 = alert("ES.PN", "ES-PN-B", T0 + 4 * D, victims=[*victims, second])
    log.send("ES.PN", b1, T0 + 4 * D)
    log.send("ES.PN", alert("ES.PN", "ES-PN-B", UNTIL + H, "Update", b1.alert_id, victims=b1.victims), UNTIL + H)
    e1 = alert("ES.PN", "ES-PN-E", T0 - D)
    log.send("ES.PN", e1, T0 - D)
    log.send("ES.PN", alert("ES.PN", "ES-PN-E", T0 + 6 * D, "AllClear", e1.alert_id), T0 + 6 * D)
    log.send("ES.PN", alert("ES.PN", "ES-PN-X", T0 + 2 * D, status="Exercise"), T0 + 2 * D)


def log_requests(log: Log) -> None:
    # R1: answered within its own 6 h deadline, after 1 h; read twice (its inbox, and a resend).
    r1 = log.send("FR.GN", message("MutualLegalAssistanceRequest", T0 + H), T0 + H, "ES.PN")
    log.frame(log.frames[r1.message_id], "op7.inbox.ES.PN", T0 + 2 * H)
    log.reply("ES.PN", "MutualLegalAssistanceResponse", T0 + 2 * H, r1)
    # R2: urgent, due in 3 days, and a copy of other bytes; a third node's reply does not answer it; ES answers
    # after 4 days: late.
    r2_msg = message("MutualLegalAssistanceRequest", T0 + D, urgency="Urgent", deadline=None)
    r2 = log.send("FR.GN", r2_msg, T0 + D, "ES.PN")
    log.send("FR.GN", r2_msg, T0 + D, "ES.PN", message_id=r2.message_id, conversation_id="other-bytes")
    log.reply("DE.BKA", "MutualLegalAssistanceResponse", T0 + D + H, r2)
    log.reply("ES.PN", "MutualLegalAssistanceResponse", T0 + 5 * D, r2)
    # R3: urgent, only a receipt came back: overdue at NOW. Its bytes, altered, are refused (read twice).
    r3 = log.send("MX.FGR", message("ExtraditionRequest", T0 + 2 * D), T0 + 2 * D, "ES.PN")
    log.reply("ES.PN", "Receipt", T0 + 2 * D + H, r3, message_id=r3.message_id, message_sender="MX.FGR")
    tampered = bytearray(log.frames[r3.message_id])
    tampered[-70] ^= 1
    log.frame(bytes(tampered), "op7.inbox.ES.PN", T0 + 2 * D)
    log.frame(bytes(tampered), "op7.inbox.ES.PN", T0 + 2 * D + H)
    # R4: routine, due in 7 days, after NOW: pending.
    r4 = message("CollaborationRequest", T0 + 9 * D, requested_authority="DE.BKA", urgency="Routine")
    log.send("FR.GN", r4, T0 + 9 * D, "DE.BKA")
    # R5 sealed, its header expiring 2 h after sending, answered (sealed) after 5 h: late.
    r5_msg = message("MutualLegalAssistanceRequest", T0 + 3 * D)
    r5 = log.send("FR.GN", r5_msg, T0 + 3 * D, "ES.PN", seal=True, expires_at=T0 + 3 * D + 2 * H)
    log.reply("ES.PN", "MutualLegalAssistanceResponse", T0 + 3 * D + 5 * H, r5, seal=True)
    # R6 sealed without expiry: the routine default, 7 days; answered after 6 days, after the period: in time.
    r6_msg = message("ExtraditionRequest", T0 + 5 * D, issuer="DE.BKA", requesting_authority="DE.BKA")
    r6 = log.send("DE.BKA", r6_msg, T0 + 5 * D, "ES.PN", seal=True)
    log.reply("ES.PN", "ExtraditionResponse", T0 + 11 * D, r6, seal=True)


def log_refusals(log: Log) -> None:
    # Refused by the auditor: a stranger's frame, garbage in the period and before it.
    stranger = NodeIdentity("BR.PF", SigningKey.generate(), NETWORK)
    _, value = build(stranger, message("CaseInformation", T0 + 3 * D, issuer="BR.PF"), now=T0 + 3 * D)
    log.frame(value, "op7.cases", T0 + 3 * D)
    log.frame(b"not a frame", "op7.alerts", T0 + 4 * D)
    log.frame(b"not a frame", "op7.alerts", T0 - H)
    # What nodes quarantined, one account from a node that writes a formula as its reason.
    log.quarantined("ES.PN", "stale", "MX.FGR", T0 + 3 * D)
    log.quarantined("DE.BKA", "=2+3", "MX.FGR", T0 + 3 * D)


@pytest.fixture(scope="module")
def log() -> Log:
    return scenario()


@pytest.fixture(scope="module")
def report(log: Log) -> Report:
    return build_report(log.entries, since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW)


def test_messages_of_the_period_are_counted_once_by_type_sender_and_recipient(report: Report) -> None:
    actual = report.traffic["Actual"]
    assert report.entries_read == 33
    assert (report.messages, actual.messages, report.traffic["Exercise"].messages) == (19, 18, 1)
    assert (report.copies, report.divergent_copies, report.unreadable) == (2, 1, 0)
    assert report.networks == (NETWORK,)
    assert actual.by_type == {
        "op7.alert.KidnappingAlert": 6,
        "op7.case.CaseInformation": 1,
        COLLABORATION: 1,
        "op7.exchange.Receipt": 1,
        EXTRADITION: 2,
        MLA_REQUEST: 3,
        MLA_RESPONSE: 4,
    }
    assert actual.by_sender == {"DE.BKA": 2, "ES.PN": 6, "FR.GN": 9, "MX.FGR": 1}
    assert actual.by_recipient == {"DE.BKA": 1, "ES.PN": 6, "FR.GN": 4, "MX.FGR": 1, "all:alerts": 6}
    assert actual.by_country == {"DE": 2, "ES": 6, "FR": 9, "MX": 1}
    assert actual.sealed == 3


def test_requests_are_judged_in_time_late_overdue_or_pending_sealed_ones_by_their_header(report: Report) -> None:
    actual = report.traffic["Actual"]
    assert actual.requests == {
        COLLABORATION: Outcomes(pending=1),
        EXTRADITION: Outcomes(in_time=1, overdue=1, sealed=1),
        MLA_REQUEST: Outcomes(in_time=1, late=2, sealed=1),
    }
    assert actual.requests_by_pair == {
        "DE->ES": Outcomes(in_time=1, sealed=1),
        "FR->DE": Outcomes(pending=1),
        "FR->ES": Outcomes(in_time=1, late=2, sealed=1),
        "MX->ES": Outcomes(overdue=1),
    }
    assert actual.deadline_basis == {"header-expiry": 1, "payload": 4, "type-default": 1}


def test_response_times_are_nearest_rank_percentiles_per_type_and_country_pair(report: Report) -> None:
    actual = report.traffic["Actual"]
    mla = Times(count=3, p50=5 * 3600.0, p90=4 * 86400.0, p99=4 * 86400.0, max=4 * 86400.0)
    extradition = Times(count=1, p50=6 * 86400.0, p90=6 * 86400.0, p99=6 * 86400.0, max=6 * 86400.0)
    assert actual.response_times == {EXTRADITION: extradition, MLA_REQUEST: mla}
    assert actual.response_times_by_pair == {"DE->ES": extradition, "FR->ES": mla}
    assert [nearest_rank(list(range(1, 11)), p) for p in (10, 50, 90, 99, 100)] == [1, 5, 9, 10, 10]


def test_alerts_issued_closed_and_open_per_country_exercise_apart(report: Report) -> None:
    assert report.traffic["Actual"].alerts == {
        "ES": AlertFigures(issued=1, closed=1, open=1, victims=2),
        "FR": AlertFigures(issued=2, updates=1, closed=1, expired=1, victims=2, with_ransom=1),
    }
    assert report.traffic["Exercise"].alerts == {"ES": AlertFigures(issued=1, open=1, victims=1)}


def test_refusals_per_claimed_sender_and_reason_from_the_log_and_the_quarantines(report: Report) -> None:
    assert [(r.seen_by, r.sender, r.reason, r.count) for r in report.refusals] == [
        ("DE.BKA", "MX.FGR", "=2+3", 1),
        ("ES.PN", "MX.FGR", "stale", 1),
        ("audit", "BR.PF", "unknown-sender", 1),
        ("audit", "MX.FGR", "bad-signature", 2),
        ("audit", "unknown", "bad-magic", 1),
    ]


def test_the_period_bounds_decide_which_messages_count(log: Log) -> None:
    # [UNTIL, UNTIL + 1 d): the CaseInformation signed at UNTIL is in (the one at SINCE was in the first report), with
    # the update of case B; R6's answer, signed at the end, UNTIL + 1 d, is not, nor anything of before.
    after = build_report(log.entries, since=UNTIL, until=UNTIL + D, deadlines=DeadlinePolicy(), now=NOW)
    assert after.traffic["Actual"].by_type == {ALERT: 1, "op7.case.CaseInformation": 1}
    assert after.traffic["Actual"].alerts == {"ES": AlertFigures(updates=1)}
    assert after.traffic["Actual"].requests == {}
    assert after.refusals == ()


def test_requests_and_alerts_are_judged_at_now(log: Log) -> None:
    # At T0 + 4 d + 1 h: R2's answer (T0 + 5 d) and R6's (T0 + 11 d) are not yet signed, case C not yet expired,
    # case E not yet closed (its AllClear still counts as a message of the period).
    early = build_report(log.entries, since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=T0 + 4 * D + H)
    actual = early.traffic["Actual"]
    assert actual.messages == 18
    assert actual.requests[MLA_REQUEST] == Outcomes(in_time=1, late=1, overdue=1, sealed=1)
    assert actual.requests[EXTRADITION] == Outcomes(pending=2, sealed=1)
    assert actual.alerts == {
        "ES": AlertFigures(issued=1, open=1, victims=2),
        "FR": AlertFigures(issued=2, updates=1, closed=1, open=1, victims=2, with_ransom=1),
    }


def test_a_sealed_payload_is_never_opened(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[tuple[str, bytes]] = []

    def spy(message_type: str, fingerprint: bytes, data: bytes, *rest: Any) -> Any:
        decoded.append((message_type, data))
        return decode(message_type, fingerprint, data, *rest)

    monkeypatch.setattr("broker.audit.report.decode", spy)
    build_report(log.entries, since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW)
    sealed = {parse_frame(e.value).payload for e in log.entries if e.meta.get("sealed")}
    assert len(sealed) == 4
    assert not sealed & {data for _, data in decoded}
    # What is decoded: the alerts signed by NOW (9), and the period's unsealed requests (4); nothing else.
    assert sorted(t for t, _ in decoded) == [ALERT] * 9 + [COLLABORATION, EXTRADITION, MLA_REQUEST, MLA_REQUEST]


def test_csv_is_one_flat_table_that_parses_back_with_formulas_defused(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_type = [r for r in rows if r["section"] == "messages_by_type" and r["status"] == "Actual"]
    assert sum(int(r["value"]) for r in by_type) == report.traffic["Actual"].messages
    late = [r["value"] for r in rows if (r["section"], r["key"], r["metric"]) == ("requests", MLA_REQUEST, "late")]
    assert late == ["2"]
    p90 = [
        r["value"] for r in rows if (r["section"], r["key"], r["metric"]) == ("response_times_by_pair", "FR->ES", "p90")
    ]
    assert p90 == [str(4 * 86400.0)]
    refusals = [(r["detail"], r["key"], r["metric"], r["value"]) for r in rows if r["section"] == "refusals"]
    assert ("DE.BKA", "MX.FGR", "'=2+3", "1") in refusals  # a node's reason, as a spreadsheet will not run it
    assert ("period", "since", SINCE.isoformat()) in [(r["section"], r["metric"], r["value"]) for r in rows]


def test_json_round_trips_and_anything_else_is_refused(report: Report) -> None:
    assert Report.from_json(json.loads(render_json(report))) == report
    data = report.to_json()
    data["traffic"]["Actual"]["requests"][MLA_REQUEST]["answered"] = 1
    with pytest.raises(ConfigError, match="not an audit report"):
        Report.from_json(data)
    with pytest.raises(ConfigError, match="not an audit report"):
        Report.from_json({"since": SINCE.isoformat()})


def hostile(report: Report) -> Report:
    """``report`` with keys that are markup in Rich and in XML, and a formula."""
    data = report.to_json()
    data["traffic"]["Actual"]["requests"]["op7.x.<b>&amp;</b>"] = Outcomes(late=1).__dict__
    data["refusals"].append({"seen_by": "[red]", "sender": "@SUM(A1)", "reason": "<script>x</script>", "count": 1})
    return Report.from_json(data)


def test_the_svg_chart_is_well_formed_with_a_tooltip_per_bar_and_nothing_fetched(report: Report) -> None:
    svg = ElementTree.fromstring(render_svg(report))
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    tooltips = [t.text for t in svg.iter(f"{ns}title")]
    assert tooltips[0] is not None and tooltips[0].startswith("op7 audit: Actual traffic, 2026-03-02 00:00")
    bars = [r for r in svg.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 4 + 3 * 3  # 4 countries; in time, late, overdue for 3 request types
    assert "FR: 9 messages" in tooltips and "MutualLegalAssistanceRequest: 2 requests late" in tooltips
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert {"messages", "requests"} <= set(texts)  # the axis labels
    assert not [a for e in svg.iter() for a in e.attrib if "href" in a]
    odd = ElementTree.fromstring(render_svg(hostile(report)))
    assert "<b>&amp;</b>: 1 request late" in [t.text for t in odd.iter(f"{ns}title")]
    empty = ElementTree.fromstring(render_svg(report, "Test"))
    assert [t.text for t in empty.iter(f"{ns}text")].count("none in this period") == 2


def test_tables_show_every_section_and_print_keys_as_text(report: Report) -> None:
    titles = [str(t.title) for t in tables(report)]
    assert titles[0] == "Audit report" and titles[-1] == "Refused frames"
    assert "Requests by country pair (Actual)" in titles and "Kidnapping alerts by issuing country (Exercise)" in titles
    assert "Requests by type (Exercise)" not in titles  # no exercise request: no empty table
    text = render_text(hostile(report))
    assert "[red]" in text and "<script>x</script>" in text
    assert "MutualLegalAssistanceRequest         3  5h 00m  4d 00h  4d 00h  4d 00h" in text


def test_the_national_report_holds_what_the_log_shows_and_says_what_it_covers(report: Report) -> None:
    green = Handling(tlp=Tlp.GREEN)
    fr = national_report(report, issuer=authority("FR.GN"), sent_at=NOW, handling=green)
    assert isinstance(fr, NationalReport)
    assert (fr.country, fr.status, fr.period_start, fr.period_end) == (
        "FR",
        Status.ACTUAL,
        date(2026, 3, 2),
        date(2026, 3, 11),
    )
    figures = fr.figures
    assert (figures.cases_reported, figures.victims, figures.cases_with_ransom_demand) == (2, 2, 1)
    assert (figures.victims_released, figures.suspects_arrested, figures.ransom_paid) == (0, 0, ())
    assert fr.notes is not None
    for said in (NETWORK, SINCE.isoformat(), UNTIL.isoformat(), "audit log", "not because there were none"):
        assert said in fr.notes
    assert "sent by nodes of FR: 4 (1 in time, 2 late, 1 pending; 1 sealed, judged by header" in fr.notes
    assert "received by nodes of FR: 0." in fr.notes
    es = national_report(report, issuer=authority("ES.PN"), sent_at=NOW, handling=green)
    assert es.notes is not None and "received by nodes of ES: 5 (2 in time, 2 late, 1 overdue; 2 sealed" in es.notes
    drill = national_report(report, issuer=authority("ES.PN"), sent_at=NOW, handling=green, status=Status.EXERCISE)
    assert (drill.status, drill.figures.cases_reported, drill.figures.victims) == (Status.EXERCISE, 1, 1)
    # The CLI signs and sends it as any message.
    _, frame = build(IDENTITIES["FR.GN"], fr, now=NOW, recipients=("ES.PN",))
    assert verify_frame(frame, TRUST).envelope.message_type == "op7.report.NationalReport"


def test_progress_hears_the_entries_read(log: Log) -> None:
    heard: list[int] = []
    entries = log.entries * 40  # copies: counted once, read every time
    build_report(entries, since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW, progress=heard.append)
    assert heard == [1000, len(entries)]


def test_bad_arguments_and_bad_entries_are_named(log: Log) -> None:
    naive = datetime(2026, 3, 2)
    with pytest.raises(ConfigError, match="since 2026-03-02T00:00:00 has no time zone"):
        build_report([], since=naive, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW)
    with pytest.raises(ConfigError, match=r"ends .* before it starts"):
        build_report([], since=UNTIL, until=SINCE, deadlines=DeadlinePolicy(), now=NOW)
    broken = log.entries[0]
    meta = {k: v for k, v in broken.meta.items() if k != "created_at"}
    with pytest.raises(ConfigError, match="evidence log entry 0: meta has no 'created_at'"):
        build_report([replace(broken, meta=meta)], since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW)
    with pytest.raises(ConfigError, match="meta field 'recipients' is str, not list"):
        message_meta({**broken.meta, "recipients": "ES.PN"})
    with pytest.raises(ConfigError, match="'created_at' has no time zone"):
        message_meta({**broken.meta, "created_at": "2026-03-02T00:00:00"})


HEADER_TYPES = ("op7.case.CaseInformation", "op7.exchange.Receipt", MLA_REQUEST, MLA_RESPONSE)
#: One logged message: sender, type, status, hours after T0, copies in the log, the message its header replies to.
LOGGED = st.tuples(
    st.integers(0, len(NODES) - 1),
    st.sampled_from(HEADER_TYPES),
    st.sampled_from([s.value for s in Status]),
    st.integers(-48, 300),
    st.integers(1, 3),
    st.integers(0, 30),
)


def sealed_entry(index: int, sender: str, message_type: str, status: str, at: datetime, reply_to: int) -> Entry:
    """A verified sealed message known by its header alone (the report never reads its payload)."""
    recipient = NODES[(NODES.index(sender) + 1) % len(NODES)]
    envelope = Envelope(
        sender=sender,
        key_id="00" * 8,
        message_id=str(uuid.UUID(int=index)),
        message_type=message_type,
        schema_fingerprint=bytes(32),
        created_at=at,
        status=Status(status),
        handling=Handling(tlp=Tlp.RED),
        recipients=(recipient,),
        in_reply_to=str(uuid.UUID(int=reply_to)),
    )
    meta = envelope_meta(envelope) | {"sealed": True}
    draft = Draft(
        f"op7.inbox.{recipient}", 0, index, ms(at), None, b"ciphertext", Kind.MESSAGE, Outcome.VERIFIED, meta=meta
    )
    return Entry.place(draft, index, NOW, GENESIS)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(LOGGED, max_size=30))
def test_per_type_totals_sum_to_the_total(logged: list[tuple[int, str, str, int, int, int]]) -> None:
    entries, in_period, copies = [], 0, 0
    for index, (sender, message_type, status, hours, times, reply_to) in enumerate(logged):
        at = T0 + hours * H
        entries += [sealed_entry(index, NODES[sender], message_type, status, at, reply_to)] * times
        if SINCE <= at < UNTIL:
            in_period, copies = in_period + 1, copies + times - 1
    report = build_report(entries, since=SINCE, until=UNTIL, deadlines=DeadlinePolicy(), now=NOW)
    assert (report.messages, report.copies, report.entries_read) == (in_period, copies, len(entries))
    for traffic in report.traffic.values():
        assert sum(traffic.by_type.values()) == traffic.messages == sum(traffic.by_sender.values())
        assert sum(traffic.by_country.values()) == traffic.messages == traffic.sealed
        requests = traffic.by_type.get(MLA_REQUEST, 0)
        assert sum(o.total for o in traffic.requests.values()) == requests
        assert sum(o.total for o in traffic.requests_by_pair.values()) == requests
        assert sum(traffic.deadline_basis.values()) == requests
        answered = sum(o.in_time + o.late for o in traffic.requests.values())
        assert sum(t.count for t in traffic.response_times.values()) == answered
