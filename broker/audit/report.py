"""The auditor's periodic report: what the evidence log shows of a period's traffic, in figures.

:func:`build_report` reads the log's entries once and counts the messages signed (``created_at``) in the period
``[since, until)``, each once however many copies the log holds (a message read on several topics, or resent, is
one message; the copies are counted apart). Everything is split by the header's ``status``: exercise and test
traffic never mixes into the Actual figures. The rules:

- Requests are the message types that expect an answer (:data:`~broker.models.answers.ANSWER_TYPES`). The answer
  is the first message, by ``created_at`` at or before ``now``, that names the request in ``in_reply_to``, is of
  the request's answer type and comes from one of its recipients: a receipt, an error report or a reminder does
  not answer, nor does a third node (the exchange agent's rule). It may be signed after ``until``: a request of
  the period is judged at ``now``: in time, late, overdue (no answer, deadline passed) or pending.
- A request's deadline is the :class:`DeadlinePolicy`'s, from the payload, as the sender's agent computed it. A
  sealed payload is closed to the auditor: the header's ``expires_at`` stands for it then, else the policy's
  default for the type at its least urgent level; ``deadline_basis`` counts which basis each deadline had.
- A case is the issuing node's ``case_id``; its alerts fold in the order of the operations centre (time of
  sending, then of signing, then message id): closed when the last is a Cancel or an AllClear, expired when every
  alert in force expired by ``now``. Issued in the period: its first Alert is; closed in the period: the message
  that closes it is. Open and expired count the cases issued in the period, as they stand at ``now``.
- Refusals (frames the auditor refused, and the accounts of frames nodes quarantined) have no signed time: they
  count by the record's timestamp, under the sender the frame claims. Directory versions and checkpoints are not
  messages: they are read past.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from broker.audit.entry import Entry, Kind, Outcome
from broker.audit.meta import MessageMeta, message_meta
from broker.audit.report_model import OUTCOMES, AlertFigures, Outcomes, Refusal, Report, Times, Traffic
from broker.errors import ConfigError, MessageError, Op7Error
from broker.models import (
    MESSAGE_MODELS,
    AlertMessageType,
    Authority,
    Handling,
    KidnappingAlert,
    Message,
    NationalReport,
    Request,
    RequestUrgency,
    Status,
    new_message_id,
)
from broker.models.answers import ANSWER_TYPES
from broker.models.inputs import first_problem
from broker.models.report import KidnappingFigures
from broker.node.deadlines import DeadlinePolicy
from broker.wire.codec import decode, read_header
from broker.wire.envelope import parse_frame
from broker.wire.schemas import SchemaRegistry, default_registry

__all__ = [
    "AUDITOR",
    "AlertFigures",
    "Outcomes",
    "Refusal",
    "Report",
    "Times",
    "Traffic",
    "build_report",
    "national_report",
]

#: How often (in entries read) ``progress`` hears how far the reading got.
PROGRESS_EVERY = 1000
#: A sealed request's deadline, when its header has no expiry: the policy's at this urgency, the most lenient.
_LEAST_URGENT = RequestUrgency.ROUTINE
_ALERT = KidnappingAlert.avro_name
_CLOSING = (AlertMessageType.CANCEL, AlertMessageType.ALL_CLEAR)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Who refused a frame, when the auditor itself did.
AUDITOR = "audit"


@dataclass(frozen=True)
class _Logged:
    """One distinct message of the log, with its payload when the report needs it and could read it."""

    meta: MessageMeta
    topic: str
    payload: Message | None


@dataclass(frozen=True)
class _Alert:
    """An alert of the log, decoded."""

    meta: MessageMeta
    alert: KidnappingAlert


@dataclass
class _Reading:
    """What one pass over the log keeps."""

    since: datetime
    until: datetime
    now: datetime
    registry: SchemaRegistry
    entries: int = 0
    copies: int = 0
    divergent: int = 0
    unreadable: int = 0
    networks: set[str] = field(default_factory=set)
    #: (sender, message id) -> SHA-256 of the first copy's bytes.
    seen: dict[tuple[str, str], bytes] = field(default_factory=dict)
    in_period: list[_Logged] = field(default_factory=list)
    #: Request id -> the messages in reply to it, signed by ``now``.
    replies: dict[str, list[MessageMeta]] = field(default_factory=lambda: defaultdict(list))
    #: Every alert signed by ``now`` (a case's history reaches back before the period).
    alerts: list[_Alert] = field(default_factory=list)
    #: Status -> sender country -> sealed alerts signed in the period: they cannot be folded into cases.
    sealed_alerts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    refusals: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def within(self, at: datetime) -> bool:
        return self.since <= at < self.until


def build_report(
    entries: Iterable[Entry],
    *,
    since: datetime,
    until: datetime,
    deadlines: DeadlinePolicy,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    registry: SchemaRegistry | None = None,
) -> Report:
    """The figures of the messages signed in ``[since, until)``, requests and alerts judged at ``now`` (the rules:
    the module's docstring). ``progress`` hears the number of entries read, now and then and at the end."""
    for name, at in (("since", since), ("until", until), ("now", now)):
        if at.tzinfo is None:
            raise ConfigError(f"report {name} {at.isoformat()} has no time zone")
    if until <= since:
        raise ConfigError(f"the report period ends ({until.isoformat()}) before it starts ({since.isoformat()})")
    reading = _Reading(since, until, now, registry or default_registry())
    for entry in entries:
        reading.entries += 1
        _read(reading, entry)
        if progress is not None and reading.entries % PROGRESS_EVERY == 0:
            progress(reading.entries)
    if progress is not None and (reading.entries % PROGRESS_EVERY or not reading.entries):
        progress(reading.entries)
    return _report(reading, deadlines)


def _read(reading: _Reading, entry: Entry) -> None:
    if entry.kind is Kind.QUARANTINE and entry.outcome is Outcome.VERIFIED:
        by = entry.meta.get("quarantined_by")
        _refusal(reading, entry, by if isinstance(by, str) else "unknown")
    elif entry.kind is Kind.MESSAGE and entry.outcome is Outcome.REFUSED:
        _refusal(reading, entry, AUDITOR)
    elif entry.kind is Kind.MESSAGE:
        _message(reading, entry)


def _refusal(reading: _Reading, entry: Entry, seen_by: str) -> None:
    if reading.within(_EPOCH + timedelta(milliseconds=entry.record_ms)):
        sender = entry.meta.get("claimed_sender")
        claimed = sender if isinstance(sender, str) and sender else "unknown"
        reading.refusals[seen_by, claimed, entry.reason or "unknown"] += 1


def _message(reading: _Reading, entry: Entry) -> None:
    meta = message_meta(entry.meta, f"evidence log entry {entry.index}")
    in_period = reading.within(meta.created_at)
    is_alert = meta.message_type == _ALERT and meta.created_at <= reading.now
    is_reply = meta.in_reply_to is not None and meta.created_at <= reading.now
    if not (in_period or is_alert or is_reply):
        return
    key = (meta.sender, meta.message_id)
    digest = hashlib.sha256(entry.value).digest()
    first = reading.seen.get(key)
    if first is not None:
        if in_period:
            reading.copies += 1
            reading.divergent += first != digest
        return
    reading.seen[key] = digest
    needs_payload = is_alert or (in_period and meta.message_type in ANSWER_TYPES)
    payload = _payload(reading, entry, meta) if needs_payload else None
    logged = _Logged(meta, entry.topic, payload)
    if in_period:
        reading.in_period.append(logged)
        if meta.network is not None:
            reading.networks.add(meta.network)
    if is_alert and isinstance(payload, KidnappingAlert):
        reading.alerts.append(_Alert(meta, payload))
    elif is_alert and meta.sealed and in_period:
        reading.sealed_alerts[meta.status][meta.country] += 1
    if is_reply and meta.in_reply_to is not None:
        reading.replies[meta.in_reply_to].append(meta)


def _payload(reading: _Reading, entry: Entry, meta: MessageMeta) -> Message | None:
    """The decoded payload of an unsealed message; None when sealed, or (counted as unreadable) when it does not
    decode with the schemas the auditor knows."""
    if meta.sealed:
        return None
    try:
        raw = parse_frame(entry.value)
        fingerprint = read_header(raw.header, reading.registry)["schema_fingerprint"]
        return decode(meta.message_type, fingerprint, raw.payload, reading.registry)
    except MessageError:
        reading.unreadable += 1
        return None


def _report(reading: _Reading, deadlines: DeadlinePolicy) -> Report:
    by_status: dict[str, list[_Logged]] = defaultdict(list)
    for logged in reading.in_period:
        by_status[logged.meta.status].append(logged)
    alerts: dict[str, list[_Alert]] = defaultdict(list)
    for alert in reading.alerts:
        alerts[alert.meta.status].append(alert)
    traffic = {
        status: _traffic(
            reading, by_status[status], _alerts(reading, alerts[status], reading.sealed_alerts[status]), deadlines
        )
        for status in sorted(by_status)
    }
    return Report(
        since=reading.since,
        until=reading.until,
        now=reading.now,
        networks=tuple(sorted(reading.networks)),
        entries_read=reading.entries,
        copies=reading.copies,
        divergent_copies=reading.divergent,
        unreadable=reading.unreadable,
        traffic=traffic,
        refusals=tuple(
            Refusal(seen_by, sender, reason, count)
            for (seen_by, sender, reason), count in sorted(reading.refusals.items())
        ),
    )


def _traffic(
    reading: _Reading, messages: Sequence[_Logged], alerts: Mapping[str, AlertFigures], policy: DeadlinePolicy
) -> Traffic:
    by_recipient: Counter[str] = Counter()
    for logged in messages:
        by_recipient.update(logged.meta.recipients or (f"all:{_topic_of(reading, logged)}",))
    requests = _Requests(reading, policy)
    for logged in messages:
        if logged.meta.message_type in ANSWER_TYPES:
            requests.add(logged)
    return Traffic(
        messages=len(messages),
        sealed=sum(logged.meta.sealed for logged in messages),
        by_type=_sorted(Counter(logged.meta.message_type for logged in messages)),
        by_sender=_sorted(Counter(logged.meta.sender for logged in messages)),
        by_recipient=_sorted(by_recipient),
        requests=requests.outcomes(requests.by_type),
        requests_by_pair=requests.outcomes(requests.by_pair),
        deadline_basis=_sorted(requests.basis),
        response_times=_times(requests.times_by_type),
        response_times_by_pair=_times(requests.times_by_pair),
        alerts=alerts,
    )


def _topic_of(reading: _Reading, logged: _Logged) -> str:
    """The topic a broadcast travels on (without the network's prefix), else the one it was read from."""
    try:
        return reading.registry.topic_of(logged.meta.message_type)
    except Op7Error:
        return logged.topic


def _sorted(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}


def _times(samples: Mapping[str, list[float]]) -> dict[str, Times]:
    return {key: Times.of(samples[key]) for key in sorted(samples)}


class _Requests:
    """The requests of one status: each one's deadline, answer and outcome, tallied by type and country pair."""

    def __init__(self, reading: _Reading, policy: DeadlinePolicy) -> None:
        self.reading = reading
        self.policy = policy
        self.by_type: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_pair: dict[str, Counter[str]] = defaultdict(Counter)
        self.basis: Counter[str] = Counter()
        self.times_by_type: dict[str, list[float]] = defaultdict(list)
        self.times_by_pair: dict[str, list[float]] = defaultdict(list)

    def add(self, request: _Logged) -> None:
        meta = request.meta
        deadline, basis = self._deadline(request)
        answer = self._answer(meta)
        now = self.reading.now
        if answer is None:
            outcome = "unanswered_no_deadline" if deadline is None else "overdue" if deadline < now else "pending"
        elif deadline is None:
            outcome = "answered_no_deadline"
        else:
            outcome = "in_time" if answer.created_at <= deadline else "late"
        countries = "+".join(sorted({r[:2] for r in meta.recipients})) or "all"
        pair = f"{meta.country}->{countries}"
        self.basis[basis] += 1
        for tally in (self.by_type[meta.message_type], self.by_pair[pair]):
            tally[outcome] += 1
            tally["sealed"] += meta.sealed
        if answer is not None:
            seconds = (answer.created_at - meta.created_at).total_seconds()
            self.times_by_type[meta.message_type].append(seconds)
            self.times_by_pair[pair].append(seconds)

    def _answer(self, request: MessageMeta) -> MessageMeta | None:
        """The first reply of the request's answer type from one of its recipients."""
        wanted = ANSWER_TYPES[request.message_type]
        answers = [
            reply
            for reply in self.reading.replies.get(request.message_id, ())
            if reply.message_type == wanted and reply.sender in request.recipients
        ]
        return min(answers, key=lambda a: (a.created_at, a.message_id), default=None)

    def _deadline(self, request: _Logged) -> tuple[datetime | None, str]:
        """The request's answer deadline and its basis: ``payload``, ``header-expiry``, ``type-default`` or
        ``none`` (a type the policy gives no deadline)."""
        meta = request.meta
        if request.payload is not None:
            deadline = self.policy.deadline(request.payload, meta.created_at)
            return deadline, "payload" if deadline is not None else "none"
        if meta.expires_at is not None:
            return meta.expires_at, "header-expiry"
        model = MESSAGE_MODELS.get(meta.message_type)
        if model is None or not issubclass(model, Request):
            return None, "none"
        table = self.policy.by_type.get(meta.message_type, {})
        urgency = _LEAST_URGENT.value
        return meta.created_at + (table.get(urgency) or self.policy.by_urgency[urgency]), "type-default"

    @staticmethod
    def outcomes(tallies: Mapping[str, Counter[str]]) -> dict[str, Outcomes]:
        return {key: Outcomes(**tallies[key]) for key in sorted(tallies)}


def _alerts(reading: _Reading, alerts: Sequence[_Alert], sealed: Mapping[str, int]) -> dict[str, AlertFigures]:
    """Alert figures per issuing country, from each case's alerts (the operations centre's fold, re-derived)."""
    cases: dict[tuple[str, str], list[_Alert]] = defaultdict(list)
    for logged in alerts:
        cases[logged.meta.sender, logged.alert.case_id].append(logged)
    tallies: dict[str, Counter[str]] = defaultdict(Counter)
    for (sender, _), history in cases.items():
        ordered = sorted(history, key=lambda a: (a.alert.sent_at, a.meta.created_at, a.meta.message_id))
        tallies[sender[:2]].update(_case(reading, ordered))
    for country, count in sealed.items():
        tallies[country]["sealed"] += count
    # A country whose cases saw nothing in the period (their alerts are older) is left out.
    return {country: AlertFigures(**tallies[country]) for country in sorted(tallies) if tallies[country].total()}


def _case(reading: _Reading, ordered: Sequence[_Alert]) -> Counter[str]:
    """What one case, its alerts in fold order, adds to its country's figures."""
    tally: Counter[str] = Counter()
    tally["updates"] = sum(
        a.alert.msg_type is AlertMessageType.UPDATE and reading.within(a.meta.created_at) for a in ordered
    )
    last = ordered[-1]
    closed = last.alert.msg_type in _CLOSING
    tally["closed"] = int(closed and reading.within(last.meta.created_at))
    first = next((a for a in ordered if a.alert.msg_type is AlertMessageType.ALERT), None)
    if first is None or not reading.within(first.meta.created_at):
        return tally
    messages = [a.alert for a in ordered]
    tally["issued"] = 1
    if not closed:
        tally["expired" if _expired(messages, reading.now) else "open"] = 1
    tally["victims"] = len(next((m.victims for m in reversed(messages) if m.victims), ()))
    tally["with_ransom"] = int(any(_ransom(m) for m in messages))
    return tally


def _ransom(alert: KidnappingAlert) -> bool:
    """Whether the alert reports a ransom demand (an amount or a channel: a demand that says something)."""
    return alert.ransom is not None and (alert.ransom.demand is not None or bool(alert.ransom.channel))


def _expired(messages: Sequence[KidnappingAlert], now: datetime) -> bool:
    """Whether every alert in force (an Alert or Update no later message references) expired by ``now``."""
    referenced = {ref for m in messages for ref in m.references}
    in_force = [m for m in messages if m.msg_type not in _CLOSING and m.alert_id not in referenced] or [messages[-1]]
    return all(m.expires_at is not None and m.expires_at <= now for m in in_force)


def national_report(
    report: Report,
    *,
    issuer: Authority,
    sent_at: datetime,
    handling: Handling,
    status: Status = Status.ACTUAL,
    languages: tuple[str, ...] = ("en",),
    report_id: str | None = None,
) -> NationalReport:
    """The report's figures for the issuer's country as a :class:`NationalReport`, to be signed and sent.

    The log shows kidnapping cases only through the alerts a country's nodes issued: ``cases_reported``, ``victims``
    and ``cases_with_ransom_demand`` come from them; no message of the log tells what became of a victim, of a
    ransom or of a suspect, so those figures stay 0 and ``notes`` says so, with what the figures cover.
    """
    country = issuer.node[:2]
    traffic = report.traffic.get(status.value)
    alerts = traffic.alerts.get(country, AlertFigures()) if traffic else AlertFigures()
    try:
        return NationalReport(
            report_id=report_id or new_message_id(sent_at),
            status=status,
            sent_at=sent_at,
            handling=handling,
            issuer=issuer,
            country=country,
            period_start=report.since.astimezone(UTC).date(),
            period_end=(report.until - _INSTANT).astimezone(UTC).date(),
            figures=KidnappingFigures(
                cases_reported=alerts.issued,
                victims=alerts.victims,
                cases_with_ransom_demand=alerts.with_ransom,
            ),
            notes=_coverage(report, country, status, traffic, alerts),
            languages=languages,
        )
    except ValidationError as exc:
        raise ConfigError(f"the national report of {country} cannot be made: {first_problem(exc)}") from None


_INSTANT = timedelta(microseconds=1)


def _coverage(report: Report, country: str, status: Status, traffic: Traffic | None, alerts: AlertFigures) -> str:
    """What the figures of a national report cover, and what they do not."""
    networks = ", ".join(report.networks) or "(no network named)"
    text = [
        f"Figures from the op7 audit log (the evidence log of every signed record) of network {networks}: messages "
        f"of status {status.value} signed from {report.since.isoformat()} to {report.until.isoformat()} (end "
        f"excluded), alerts and requests as they stood at {report.now.isoformat()}.",
        f"cases_reported: cases for which nodes of {country} issued a kidnapping alert in the period; victims: the "
        "victims those alerts name; cases_with_ransom_demand: those whose alerts report a ransom demand. Of these "
        f"cases, still open: {alerts.open}, expired: {alerts.expired}. Cases of {country} closed (Cancel or AllClear) "
        f"in the period: {alerts.closed}.",
    ]
    if alerts.sealed:
        text.append(f"Alerts sealed to their recipients, in no figure: {alerts.sealed}.")
    if traffic is not None:
        sent = _sum(o for pair, o in traffic.requests_by_pair.items() if pair.split("->")[0] == country)
        received = _sum(o for pair, o in traffic.requests_by_pair.items() if country in pair.split("->")[1].split("+"))
        text.append(f"Requests for cooperation sent by nodes of {country}: {_outcomes(sent)}.")
        text.append(f"Requests received by nodes of {country}: {_outcomes(received)}.")
    if report.unreadable:
        text.append(f"Unsealed payloads that did not decode, in no figure: {report.unreadable}.")
    text.append(
        "The log records no outcome for victims (released, rescued, escaped, deceased, still held), no ransom paid, "
        "no arrest, prosecution or conviction: those figures are 0 because they were not counted here, not because "
        "there were none."
    )
    return " ".join(text)


def _sum(outcomes: Iterable[Outcomes]) -> Outcomes:
    names = [f.name for f in fields(Outcomes)]
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        totals.update({name: getattr(outcome, name) for name in names})
    return Outcomes(**totals)


def _outcomes(outcomes: Outcomes) -> str:
    """``4 (1 in time, 2 late, 1 pending; 1 sealed, ...)``."""
    counted = ", ".join(f"{getattr(outcomes, n)} {n.replace('_', ' ')}" for n in OUTCOMES if getattr(outcomes, n))
    sealed = f"{outcomes.sealed} sealed, judged by header, the deadline its expiry or the type's default"
    detail = "; ".join(part for part in (counted, sealed if outcomes.sealed else "") if part)
    return f"{outcomes.total} ({detail})" if detail else str(outcomes.total)
