"""Which verified messages a subscriber wants: by type, where the victim was last seen, severity, status, handling
code and age. A message filtered out is still verified, recorded and committed like any other; only the handler does
not see it::

    wanted = MessageFilter(types={"KidnappingAlert"}, countries={"FR", "ES"}, statuses={"Actual"},
                           max_age=timedelta(hours=6))
    await subscription.run(wanted.handler(show, node.clock))
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from broker.clock import Clock
from broker.models import AlertMessageType, KidnappingAlert, Message
from broker.models.case import CaseInformation
from broker.node.subscription import Delivery, Handler, maybe_await

__all__ = ["Area", "MessageFilter"]


@dataclass(frozen=True)
class Area:
    """A box of latitudes and longitudes (west > east crosses the 180th meridian)."""

    south: float
    west: float
    north: float
    east: float

    def holds(self, latitude: float, longitude: float) -> bool:
        if not self.south <= latitude <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= longitude <= self.east
        return longitude >= self.west or longitude <= self.east


@dataclass(frozen=True)
class MessageFilter:
    """Every condition given must hold; one left None holds for every message. ``types`` takes short names
    (``KidnappingAlert``) or full ones; ``countries`` and ``area`` look at where the victim was last seen (an alert's
    ``last_seen``, a case's sightings): a message that says nowhere is kept out by them; ``severities`` keeps out
    what has no severity (anything but an alert). An alert's Update, Cancel or AllClear passes the place and
    severity conditions: it changes a case that its Alert let through (a Cancel seldom repeats where or how severe)."""

    types: AbstractSet[str] | None = None
    countries: AbstractSet[str] | None = None
    area: Area | None = None
    severities: AbstractSet[str] | None = None
    statuses: AbstractSet[str] | None = None
    tlps: AbstractSet[str] | None = None
    max_age: timedelta | None = None

    def matches(self, delivery: Delivery, clock: Clock) -> bool:
        envelope, message = delivery.envelope, delivery.message
        checks = (
            self.types is None or {envelope.message_type, envelope.message_type.rsplit(".", 1)[1]} & set(self.types),
            self.statuses is None or envelope.status.value in self.statuses,
            self.tlps is None or envelope.handling.tlp.value in self.tlps,
            self.max_age is None or clock.now() - envelope.created_at <= self.max_age,
        )
        # An Update, Cancel or AllClear changes a case the subscriber may follow: where and how severe are the
        # Alert's to judge, and a closing message often says neither; it passes those conditions.
        if isinstance(message, KidnappingAlert) and message.msg_type is not AlertMessageType.ALERT:
            return all(checks)
        severe = self.severities is None or (
            isinstance(message, KidnappingAlert) and message.severity.value in self.severities
        )
        return all(checks) and severe and self._where(message)

    def _where(self, message: Message) -> bool:
        if self.countries is None and self.area is None:
            return True
        places = _places(message)
        return any(
            (self.countries is None or country in self.countries)
            and (self.area is None or (position is not None and self.area.holds(*position)))
            for country, position in places
        )

    def handler(self, inner: Handler, clock: Clock) -> Handler:
        """``inner``, called only for the messages this filter keeps."""

        async def filtered(delivery: Delivery) -> Any:
            if self.matches(delivery, clock):
                return await maybe_await(inner(delivery))
            return None

        return filtered


def _places(message: Message) -> list[tuple[str, tuple[float, float] | None]]:
    """Where a message says the victim was last seen: (country, (latitude, longitude) or None) each."""
    if isinstance(message, KidnappingAlert) and message.last_seen is not None:
        seen = message.last_seen
        return [(seen.country, None if seen.position is None else (seen.position.latitude, seen.position.longitude))]
    if isinstance(message, CaseInformation):
        return [
            (
                s.location.country,
                None if s.location.position is None else (s.location.position.latitude, s.location.position.longitude),
            )
            for s in message.sightings
        ]
    return []
