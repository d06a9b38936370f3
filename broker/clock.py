"""The one clock: every reading of the current time in op7 goes through a :class:`Clock`.

Time is an input. Deadlines, freshness, key windows, grants, directory validity, reminders, resends and the
times written into signed headers all come from a clock that a program (or a test) chooses:

- long-lived objects take one at construction (``Node(..., clock=)``, ``EmbeddedTransport(..., clock=)``);
- pure functions take the instant itself (``build(..., now=)``, ``check_forward(..., at=)``);
- anything given neither uses the process default, :func:`default_clock`, which is the system clock unless
  :func:`set_default_clock` (or :func:`using`) replaced it.

:class:`ManualClock` is the test implementation: it stands still until it is set or advanced, so that a test
about a deadline says exactly when "now" is, on any date it happens to run.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
    "default_clock",
    "parse_duration",
    "parse_offset",
    "set_default_clock",
    "using",
]


@runtime_checkable
class Clock(Protocol):
    """Tells the current time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock (what a deployed node uses)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to: ``set`` and ``advance``. Safe to share between threads."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start) if start is not None else SystemClock().now()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = _aware(when)

    def advance(self, by: timedelta) -> datetime:
        """Move forward (or, with a negative ``by``, back) and return the new time."""
        with self._lock:
            self._now += by
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("a clock tells aware times: give the zone (e.g. tzinfo=UTC)")
    return when.astimezone(UTC)


_default: Clock = SystemClock()


def default_clock() -> Clock:
    """The clock used where none was given."""
    return _default


def set_default_clock(clock: Clock) -> Clock:
    """Make ``clock`` the process default; returns the one it replaces."""
    global _default
    previous, _default = _default, clock
    return previous


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """``with using(ManualClock(t)):`` the process default is ``clock`` inside the block."""
    previous = set_default_clock(clock)
    try:
        yield clock
    finally:
        set_default_clock(previous)


_DURATION = re.compile(r"^([+-]?)(\d{1,6}(?:\.\d{1,6})?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: Longer offsets are refused: no deadline or validity lies a century away, and dates past year 9999 do not exist.
MAX_OFFSET = timedelta(days=36_525)


def parse_offset(text: str) -> timedelta | None:
    """``+6h``, ``-35m``, ``14d``, ``2w`` as a signed offset; None when ``text`` is not of that form, or is longer
    than a century."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    sign, amount, unit = match.groups()
    offset = timedelta(**{_UNITS[unit]: float(amount)})
    if offset > MAX_OFFSET:
        return None
    return -offset if sign == "-" else offset


def parse_duration(text: str) -> timedelta:
    """A duration such as ``90s``, ``15m``, ``12h``, ``7d`` or ``2w``; ValueError naming the text otherwise."""
    offset = parse_offset(text)
    if offset is None or text.strip().startswith("-"):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 12h, 7d or 2w (at most a century)")
    return offset
