"""The figures of an audit report (:mod:`broker.audit.report` computes them), and their JSON form.

Every class is a frozen dataclass; :meth:`Report.to_json` gives JSON values only (times in ISO 8601, durations in
seconds) and :meth:`Report.from_json` reads them back into an equal report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from broker.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["OUTCOMES", "AlertFigures", "Outcomes", "Refusal", "Report", "Times", "Traffic", "nearest_rank"]

T = TypeVar("T", bound="DataclassInstance")

#: What became of a request, in the order reports show it.
OUTCOMES = ("in_time", "late", "overdue", "pending", "answered_no_deadline", "unanswered_no_deadline")


def nearest_rank(ordered: list[float], percent: int) -> float:
    """The ``percent``-th percentile of ascending ``ordered`` by the nearest-rank method: the smallest value with at
    least ``percent`` % of the values at or below it."""
    if not ordered:
        raise ValueError("no values to take a percentile of")
    rank = -(-percent * len(ordered) // 100)  # ceil, in integers: 0.9 * 10 is not 9 in floating point
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Times:
    """Response times of answered requests, in seconds: how many, nearest-rank percentiles and the longest."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Times:
        ordered = sorted(seconds)
        p50, p90, p99 = (nearest_rank(ordered, percent) for percent in (50, 90, 99))
        return cls(len(ordered), p50, p90, p99, ordered[-1])


@dataclass(frozen=True)
class Outcomes:
    """Requests by what became of them at the report's ``now``; ``sealed`` counts those judged by header alone."""

    in_time: int = 0
    late: int = 0
    overdue: int = 0
    pending: int = 0
    answered_no_deadline: int = 0
    unanswered_no_deadline: int = 0
    sealed: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in OUTCOMES)


@dataclass(frozen=True)
class AlertFigures:
    """One country's cases: alerted (first Alert) and closed in the period, Updates in it, and of the cases alerted,
    those open or expired at ``now``, the victims their alerts name and those with a ransom demand; ``sealed``
    counts alerts of the period whose payload is closed to the auditor (in no other figure)."""

    issued: int = 0
    updates: int = 0
    closed: int = 0
    open: int = 0
    expired: int = 0
    victims: int = 0
    with_ransom: int = 0
    sealed: int = 0


@dataclass(frozen=True)
class Traffic:
    """The messages of one status (Actual, Exercise or Test) signed in the period. Keys are Avro type names, node
    ids, ``all:<topic>`` for a broadcast's recipients, and ``CC->CC`` for country pairs (requester -> addressee)."""

    messages: int
    sealed: int
    by_type: Mapping[str, int]
    by_sender: Mapping[str, int]
    by_recipient: Mapping[str, int]
    requests: Mapping[str, Outcomes]
    requests_by_pair: Mapping[str, Outcomes]
    #: How each request's deadline was known: ``payload``, ``header-expiry``, ``type-default`` or ``none``.
    deadline_basis: Mapping[str, int]
    response_times: Mapping[str, Times]
    response_times_by_pair: Mapping[str, Times]
    #: By the issuing node's country.
    alerts: Mapping[str, AlertFigures]

    @property
    def by_country(self) -> dict[str, int]:
        """Messages per sender country."""
        counts: Counter[str] = Counter()
        for sender, count in self.by_sender.items():
            counts[sender[:2]] += count
        return {country: counts[country] for country in sorted(counts)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Traffic:
        return cls(
            messages=int(data["messages"]),
            sealed=int(data["sealed"]),
            by_type=_ints(data["by_type"]),
            by_sender=_ints(data["by_sender"]),
            by_recipient=_ints(data["by_recipient"]),
            requests=_each(Outcomes, data["requests"]),
            requests_by_pair=_each(Outcomes, data["requests_by_pair"]),
            deadline_basis=_ints(data["deadline_basis"]),
            response_times=_each(Times, data["response_times"]),
            response_times_by_pair=_each(Times, data["response_times_by_pair"]),
            alerts=_each(AlertFigures, data["alerts"]),
        )


@dataclass(frozen=True)
class Refusal:
    """Refused frames of one claimed sender for one reason, as the auditor (``audit``) or a node (its id) saw them."""

    seen_by: str
    sender: str
    reason: str
    count: int


@dataclass(frozen=True)
class Report:
    """An audit report: the period ``[since, until)``, the instant ``now`` requests and alerts are judged at, the
    networks the messages were signed for, the log's entries read, copies of messages counted once (``divergent``:
    a copy of other bytes under the same sender and message id), unsealed payloads that did not decode, the traffic
    by status, and the refusals."""

    since: datetime
    until: datetime
    now: datetime
    networks: tuple[str, ...]
    entries_read: int
    copies: int
    divergent_copies: int
    unreadable: int
    traffic: Mapping[str, Traffic]
    refusals: tuple[Refusal, ...]

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.traffic.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            **data,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "now": self.now.isoformat(),
            "networks": list(self.networks),
            "refusals": [asdict(r) for r in self.refusals],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """A report from :meth:`to_json`'s output; :class:`ConfigError` when ``data`` is not one."""
        try:
            return cls(
                since=datetime.fromisoformat(data["since"]),
                until=datetime.fromisoformat(data["until"]),
                now=datetime.fromisoformat(data["now"]),
                networks=tuple(str(n) for n in data["networks"]),
                entries_read=int(data["entries_read"]),
                copies=int(data["copies"]),
                divergent_copies=int(data["divergent_copies"]),
                unreadable=int(data["unreadable"]),
                traffic={str(k): Traffic.from_json(v) for k, v in data["traffic"].items()},
                refusals=tuple(Refusal(**r) for r in data["refusals"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not an audit report: {type(exc).__name__}: {exc}") from None


def _ints(data: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in data.items()}


def _each(kind: type[T], data: Mapping[str, Any]) -> dict[str, T]:
    """``kind`` from each value of ``data``, its keys exactly the dataclass's fields."""
    names = {f.name for f in fields(kind)}
    built = {}
    for key, value in data.items():
        if set(value) != names:
            raise ValueError(f"{key}: fields {sorted(value)}, not {sorted(names)}")
        built[str(key)] = kind(**value)
    return built
