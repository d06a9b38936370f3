"""The operations centre's current picture of each case, folded from the verified alerts it received.

A case (``case_id``) has an alert lifecycle: an Alert, then Updates, then a Cancel or an AllClear, each later message
``references`` the alert_ids it changes, and alerts expire. :func:`fold` turns the stored alerts of a case
(:class:`~broker.ops.case_store.CaseStore`) into a :class:`CaseView`, a pure function of those entries, the
acknowledgements and ``now``. The rules:

- Order: by the message's ``sent_at``, then the time it was received, then its message id. Arrival order does not
  matter: an Update that comes before its Alert (another partition) folds as if it came after.
- State: ``closed`` when the last message in that order is a Cancel or an AllClear (``closed_by`` says which), even
  when what it references was never received here. A message sent after the closing one (an Update, or an Alert)
  re-opens the case: the issuer's latest word wins. One sent before it but received after changes the history and
  nothing else.
- ``expired``: open, and every alert in force has an ``expires_at`` at or before ``now``. In force are the Alerts and
  Updates that no other message of the case references (an Update supersedes what it references); one in force
  without an expiry keeps the case open.
- Each field comes from the latest message: status, urgency, severity, headline, languages, issuer; and from the
  latest message that has it: description, instruction, translations, victims, last_seen, suspects, vehicles,
  ransom. ``tlp`` is the strictest handling of any message of the case; ``mixed_status`` tells that statuses differ.
- ``unacknowledged_change``: no acknowledgement yet, or the last one acknowledged another message than the latest,
  or a message of the case was received after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from broker.clock import Clock, parse_duration
from broker.models import AlertMessageType, KidnappingAlert, RansomDemand, Severity, Status, Tlp, Urgency
from broker.models._iso import COUNTRY_CODES
from broker.ops.case_store import Ack, AlertDelivery, CaseStore, Entry, case_key

__all__ = ["CaseBook", "CaseFilter", "CaseState", "CaseView", "fold", "fold_order"]

CaseState = Literal["open", "closed", "expired"]

_URGENCY = {u: i for i, u in enumerate(Urgency)}  # Immediate, Expected, Future, Past, Unknown
_SEVERITY = {s: i for i, s in enumerate(Severity)}  # Extreme, Severe, Moderate, Minor, Unknown
_TLP = {t: i for i, t in enumerate(Tlp)}  # CLEAR < GREEN < AMBER < AMBER_STRICT < RED
_CLOSING = (AlertMessageType.CANCEL, AlertMessageType.ALL_CLEAR)
_VIEWS = {"open": ("open",), "closed": ("closed", "expired"), "all": ("open", "closed", "expired")}

T = TypeVar("T")


@dataclass(frozen=True)
class CaseView:
    """What is known of a case now. Nested values are JSON-ready dicts (times as ISO 8601 text)."""

    case_id: str
    state: CaseState
    closed_by: str | None
    status: Status
    mixed_status: bool
    tlp: Tlp
    urgency: Urgency
    severity: Severity
    headline: str
    description: str | None
    instruction: str | None
    translations: tuple[dict[str, Any], ...]
    languages: tuple[str, ...]
    issuer: dict[str, Any]
    first_sent_at: datetime
    updated_at: datetime
    #: When the case expires (the last expiry of the alerts in force); None when one of them never does.
    expires_at: datetime | None
    victims: tuple[dict[str, Any], ...]
    last_seen: dict[str, Any] | None
    suspects: tuple[dict[str, Any], ...]
    vehicles: tuple[dict[str, Any], ...]
    ransom: dict[str, Any] | None
    history: tuple[dict[str, Any], ...]
    acknowledged: tuple[dict[str, Any], ...]
    unacknowledged_change: bool
    #: The message an acknowledgement acknowledges: the latest one.
    last_message_id: str

    @property
    def country(self) -> str | None:
        """Where the victim was last seen (ISO 3166-1 alpha-2), if known."""
        return None if self.last_seen is None else str(self.last_seen["country"])

    def _fields(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "state": self.state,
            "closed_by": self.closed_by,
            "status": self.status.value,
            "mixed_status": self.mixed_status,
            "tlp": self.tlp.value,
            "urgency": self.urgency.value,
            "severity": self.severity.value,
            "headline": self.headline,
            "description": self.description,
            "instruction": self.instruction,
            "translations": list(self.translations),
            "languages": list(self.languages),
            "issuer": dict(self.issuer),
            "first_sent_at": self.first_sent_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "last_seen": self.last_seen,
            "suspects": list(self.suspects),
            "vehicles": list(self.vehicles),
            "ransom": self.ransom,
            "acknowledged": list(self.acknowledged),
            "unacknowledged_change": self.unacknowledged_change,
            "last_message_id": self.last_message_id,
        }

    def summary(self) -> dict[str, Any]:
        """JSON-ready, for a list of cases: every field but the history, the victims as a count and their names."""
        names = [f"{v['given_names']} {v['family_names']}" for v in self.victims]
        return {**self._fields(), "victims": {"count": len(self.victims), "names": names}}

    def detail(self) -> dict[str, Any]:
        """JSON-ready, everything."""
        return {**self._fields(), "victims": list(self.victims), "history": list(self.history)}


def fold_order(entries: Iterable[Entry]) -> list[Entry]:
    """The entries in the order they fold: by time of sending, then of receipt, then message id."""
    return sorted(entries, key=lambda e: (e.message.sent_at, e.received_at, e.message_id))


def fold(case_id: str, entries: Sequence[Entry], acks: Sequence[Ack], now: datetime) -> CaseView:
    """The view of a case from its stored alerts and acknowledgements, at ``now`` (rules: the module's docstring)."""
    if not entries:
        raise ValueError(f"case {case_id!r} has no alerts")
    ordered = fold_order(entries)
    messages = [e.message for e in ordered]
    latest = messages[-1]
    state, closed_by, expires_at = _state(messages, now)
    contact = latest.issuer.contact
    return CaseView(
        case_id=case_id,
        state=state,
        closed_by=closed_by,
        status=latest.status,
        mixed_status=len({m.status for m in messages}) > 1,
        tlp=max((m.handling.tlp for m in messages), key=_TLP.__getitem__),
        urgency=latest.urgency,
        severity=latest.severity,
        headline=latest.headline,
        description=_latest(messages, lambda m: m.description),
        instruction=_latest(messages, lambda m: m.instruction),
        translations=_dumps(_latest(messages, lambda m: m.translations) or ()),
        languages=latest.languages,
        issuer={
            "node": latest.issuer.node,
            "name": latest.issuer.name,
            "desk": contact.desk,
            "phone": contact.phone,
            "email": contact.email,
        },
        first_sent_at=messages[0].sent_at,
        updated_at=latest.sent_at,
        expires_at=expires_at,
        victims=_dumps(_latest(messages, lambda m: m.victims) or ()),
        last_seen=_dump(_latest(messages, lambda m: m.last_seen)),
        suspects=_dumps(_latest(messages, lambda m: m.suspects) or ()),
        vehicles=_dumps(_latest(messages, lambda m: m.vehicles) or ()),
        ransom=_dump(_latest(messages, _ransom)),
        history=tuple(_history(e) for e in ordered),
        acknowledged=tuple(_ack(a) for a in acks),
        unacknowledged_change=_unacknowledged(ordered, acks),
        last_message_id=ordered[-1].message_id,
    )


def _state(messages: Sequence[KidnappingAlert], now: datetime) -> tuple[CaseState, str | None, datetime | None]:
    """The state of a case, what closed it, and when it expires (None: never, or it is closed)."""
    last = messages[-1]
    if last.msg_type in _CLOSING:
        return "closed", last.msg_type.value, None
    referenced = {ref for m in messages for ref in m.references}
    in_force = [m for m in messages if m.msg_type not in _CLOSING and m.alert_id not in referenced] or [last]
    expiries = [m.expires_at for m in in_force]
    if any(e is None for e in expiries):
        return "open", None, None
    expires_at = max(e for e in expiries if e is not None)
    return ("expired" if expires_at <= now else "open"), None, expires_at


def _latest(messages: Sequence[KidnappingAlert], get: Callable[[KidnappingAlert], T | None]) -> T | None:
    """The value of the latest message that has one (not None, not empty)."""
    return next((value for m in reversed(messages) if (value := get(m))), None)


def _ransom(message: KidnappingAlert) -> RansomDemand | None:
    """A ransom demand that says something (a demand or a channel)."""
    ransom = message.ransom
    return ransom if ransom is not None and (ransom.demand is not None or ransom.channel) else None


def _dump(model: Any) -> dict[str, Any] | None:
    return None if model is None else dict(model.model_dump(mode="json"))


def _dumps(models: Iterable[Any]) -> tuple[dict[str, Any], ...]:
    return tuple(m.model_dump(mode="json") for m in models)


def _history(entry: Entry) -> dict[str, Any]:
    m = entry.message
    return {
        "message_id": entry.message_id,
        "sender": entry.sender,
        "alert_id": m.alert_id,
        "msg_type": m.msg_type.value,
        "sent_at": m.sent_at.isoformat(),
        "received_at": entry.received_at.isoformat(),
        "headline": m.headline,
        "references": list(m.references),
        "status": m.status.value,
    }


def _ack(ack: Ack) -> dict[str, Any]:
    return {
        "operator": ack.operator,
        "node": ack.node,
        "at": ack.at.isoformat(),
        "message_id": ack.message_id,
        "receipt_id": ack.receipt_id,
    }


def _unacknowledged(ordered: Sequence[Entry], acks: Sequence[Ack]) -> bool:
    if not acks:
        return True
    last = sorted(acks, key=lambda a: a.at)[-1]  # stable: of two at one instant, the later recorded
    return last.message_id != ordered[-1].message_id or any(e.received_at > last.at for e in ordered)


def _sort_key(view: CaseView) -> tuple[int, int, float, str]:
    return _URGENCY[view.urgency], _SEVERITY[view.severity], -view.updated_at.timestamp(), view.case_id


def _vocabulary(values: Iterable[str]) -> dict[str, str]:
    """What a person may type (any case; ``+`` for ``_``, as in TLP AMBER+STRICT) -> the value itself."""
    return {v.casefold(): v for v in values}


#: Query parameter -> (CaseFilter field, the values it takes).
_LIST_PARAMETERS = {
    "status": ("statuses", _vocabulary(s.value for s in Status)),
    "severity": ("severities", _vocabulary(s.value for s in Severity)),
    "urgency": ("urgencies", _vocabulary(u.value for u in Urgency)),
    "country": ("countries", _vocabulary(COUNTRY_CODES)),
    "tlp": ("tlps", _vocabulary(t.value for t in Tlp)),
}
#: Parameters of the list itself, not of the filter (``CaseBook.cases(view=)``): passed over.
_NOT_FILTERS = frozenset({"view"})
_MAX_TEXT = 200


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list; each field left None does not filter. A case passes when it matches every field given.

    ``statuses``, ``severities``, ``urgencies``: of the latest message. ``countries``: where the victim was last seen
    (a case not saying does not pass). ``tlps``: the case's strictest. ``max_age``: updated within it. ``text``: a
    case-insensitive part of the headline, description or case id (or of a translation's headline or description).
    """

    statuses: AbstractSet[str] | None = None
    severities: AbstractSet[str] | None = None
    urgencies: AbstractSet[str] | None = None
    countries: AbstractSet[str] | None = None
    tlps: AbstractSet[str] | None = None
    max_age: timedelta | None = None
    text: str | None = None

    def matches(self, view: CaseView, now: datetime) -> bool:
        return (
            _among(view.status.value, self.statuses)
            and _among(view.severity.value, self.severities)
            and _among(view.urgency.value, self.urgencies)
            and _among(view.country, self.countries)
            and _among(view.tlp.value, self.tlps)
            and (self.max_age is None or view.updated_at > now - self.max_age)
            and (self.text is None or self.text.casefold() in _searchable(view))
        )

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CaseFilter:
        """A filter from query parameters: ``status``, ``severity``, ``urgency``, ``country``, ``tlp`` (each a
        comma-separated list, any case), ``max_age`` (``24h``, ``7d``: :func:`broker.clock.parse_duration`) and
        ``q`` (text). An empty parameter does not filter (a form's blank field); ``view`` is passed over. ValueError
        naming the parameter and its value for anything else: an unknown parameter, value or duration."""
        fields: dict[str, Any] = {}
        for name, value in query.items():
            text = value.strip()
            if name in _NOT_FILTERS or not text:
                continue
            if name in _LIST_PARAMETERS:
                target, vocabulary = _LIST_PARAMETERS[name]
                fields[target] = _parse_list(name, value, vocabulary)
            elif name == "max_age":
                fields["max_age"] = _parse_age(value)
            elif name == "q":
                if len(text) > _MAX_TEXT:
                    raise ValueError(f"q={value[:40]!r}...: at most {_MAX_TEXT} characters")
                fields["text"] = text
            else:
                known = ", ".join([*_LIST_PARAMETERS, "max_age", "q"])
                raise ValueError(f"{name}={value!r}: unknown parameter (known: {known})")
        return cls(**fields)


def _among(value: str | None, allowed: AbstractSet[str] | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


def _searchable(view: CaseView) -> str:
    texts = [view.case_id, view.headline, view.description or ""]
    texts += [f"{t['headline']}\n{t.get('description') or ''}" for t in view.translations]
    return "\n".join(texts).casefold()


def _parse_list(name: str, value: str, vocabulary: Mapping[str, str]) -> frozenset[str]:
    found = set()
    for item in value.split(","):
        key = item.strip().casefold().replace("+", "_")
        if key not in vocabulary:
            shown = "" if len(vocabulary) > 10 else f" (one of {', '.join(vocabulary.values())})"
            raise ValueError(f"{name}={value!r}: {item.strip()!r} is not a known value{shown}")
        found.add(vocabulary[key])
    return frozenset(found)


def _parse_age(value: str) -> timedelta:
    try:
        age = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"max_age={value!r}: {exc}") from None
    if age <= timedelta(0):
        raise ValueError(f"max_age={value!r}: a duration longer than zero")
    return age


class CaseBook:
    """The cases of an operations centre: alerts applied as they are received, views folded at the clock's time."""

    def __init__(self, store: CaseStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def apply(self, delivery: AlertDelivery) -> CaseView | None:
        """Keep a verified alert and return its case's new view; None for another message type or a redelivery."""
        message = delivery.message
        if not isinstance(message, KidnappingAlert):
            return None
        if not self.store.add(delivery, self.clock.now()):
            return None
        return self.view(case_key(delivery.envelope.sender, message.case_id))

    def view(self, case_id: str) -> CaseView | None:
        entries = self.store.entries(case_id)
        if not entries:
            return None
        return fold(case_id, entries, self.store.acknowledgements(case_id), self.clock.now())

    def cases(self, view: str = "open", flt: CaseFilter | None = None) -> list[CaseView]:
        """The cases in ``view`` (``open``; ``closed``: closed and expired ones; ``all``) that pass ``flt``, most
        urgent first: by urgency, then severity, then the latest update first."""
        if view not in _VIEWS:
            raise ValueError(f"view={view!r}: one of {', '.join(_VIEWS)}")
        now = self.clock.now()
        acks = self.store.all_acknowledgements()
        found = [
            fold(case_id, entries, acks.get(case_id, []), now) for case_id, entries in self.store.all_entries().items()
        ]
        wanted = [v for v in found if v.state in _VIEWS[view] and (flt is None or flt.matches(v, now))]
        return sorted(wanted, key=_sort_key)

    def acknowledge(self, case_id: str, operator: str, node: str, receipt_id: str | None) -> CaseView:
        """Record, at the clock's time, that ``operator`` of ``node`` saw the case as it stands (its last message);
        ``receipt_id`` is the message id of the receipt sent for it, if one was. LookupError for an unknown case."""
        current = self.view(case_id)
        if current is None:
            raise LookupError(f"no case {case_id!r} here")
        self.store.acknowledge(case_id, current.last_message_id, operator, self.clock.now(), receipt_id, node=node)
        acknowledged = self.view(case_id)
        assert acknowledged is not None
        return acknowledged
