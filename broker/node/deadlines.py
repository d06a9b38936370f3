"""When answers are due, and how often an unacknowledged message is sent again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from broker.clock import parse_duration
from broker.errors import ConfigError
from broker.models import Message, Request, RequestUrgency

__all__ = ["DeadlinePolicy", "ResendPolicy"]


@dataclass(frozen=True)
class DeadlinePolicy:
    """Default answer deadlines per request urgency, and per message type where a network sets them.

    The defaults follow the EU rules on information exchange between law-enforcement authorities: 8 hours
    for the most urgent requests, 3 days for urgent ones, 7 days for the rest. A request's own earlier
    ``deadline`` field wins.
    """

    by_urgency: Mapping[str, timedelta] = field(
        default_factory=lambda: {
            RequestUrgency.LIFE_THREATENING.value: timedelta(hours=8),
            RequestUrgency.URGENT.value: timedelta(days=3),
            RequestUrgency.ROUTINE.value: timedelta(days=7),
        }
    )
    by_type: Mapping[str, Mapping[str, timedelta]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DeadlinePolicy:
        """``{"default": {"Urgent": "3d", ...}, "op7.extradition.ExtraditionRequest": {"Urgent": "1d"}}``."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            default = cls()
            by_urgency = {**default.by_urgency, **{k: parse_duration(v) for k, v in data.pop("default", {}).items()}}
            by_type = {t: {k: parse_duration(v) for k, v in table.items()} for t, table in data.items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: deadlines: {exc}") from None
        return cls(by_urgency, by_type)

    def deadline(self, message: Message, sent_at: datetime, *, override: datetime | None = None) -> datetime | None:
        """When the answer to ``message`` is due: ``override`` or the policy's, or the message's own if earlier."""
        if not isinstance(message, Request):
            return override
        urgency = message.urgency.value
        table = self.by_type.get(message.avro_name, {})
        default = override or sent_at + (table.get(urgency) or self.by_urgency[urgency])
        own: datetime | None = getattr(message, "deadline", None)
        return min(default, own) if own else default


@dataclass(frozen=True)
class ResendPolicy:
    """Resend an unacknowledged message after ``first``, then ``factor`` times longer each time, ``attempts``
    times in all; then the exchange is undeliverable."""

    first: timedelta = timedelta(seconds=30)
    factor: float = 4.0
    attempts: int = 6

    def next_after(self, attempt: int, now: datetime) -> datetime | None:
        if attempt >= self.attempts:
            return None
        return now + self.first * (self.factor ** (attempt - 1))
