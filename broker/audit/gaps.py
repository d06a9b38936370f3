"""Messages a sender signed that never reached any topic the auditor reads: gaps in its sequence numbers.

Every signing node numbers its frames 1, 2, 3... in the signed header (``sequence``). The auditor reads every topic,
so a number it never saw, between two it saw, is a message that was withheld or lost. Numbers below the first one
seen are not gaps: they may predate the log (topics keep records for a while only).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from broker.audit.entry import Entry, Kind, Outcome

__all__ = ["Gap", "SequenceTracker"]


@dataclass(frozen=True)
class Gap:
    """Numbers ``first`` to ``last`` of ``sender`` are missing, between the messages that carry ``first - 1`` and
    ``last + 1``."""

    sender: str
    first: int
    last: int
    after: str
    before: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        numbers = f"number {self.first}" if self.first == self.last else f"numbers {self.first} to {self.last}"
        return (
            f"{self.sender}: {self.count} message(s) withheld or lost ({numbers}, between {self.after} and "
            f"{self.before})"
        )


class SequenceTracker:
    """The sequence numbers each sender's verified messages carried."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[int, str]] = defaultdict(dict)

    def add(self, entry: Entry) -> None:
        if entry.kind is not Kind.MESSAGE or entry.outcome is not Outcome.VERIFIED:
            return
        sequence, sender = entry.meta.get("sequence"), entry.meta.get("sender")
        if isinstance(sequence, int) and isinstance(sender, str):
            self._seen[sender].setdefault(sequence, str(entry.meta.get("message_id")))

    def add_all(self, entries: Iterable[Entry]) -> SequenceTracker:
        for entry in entries:
            self.add(entry)
        return self

    def gaps(self) -> list[Gap]:
        found = []
        for sender in sorted(self._seen):
            seen = self._seen[sender]
            numbers = sorted(seen)
            for low, high in itertools.pairwise(numbers):
                if high > low + 1:
                    found.append(Gap(sender, low + 1, high - 1, seen[low], seen[high]))
        return found

    def senders(self) -> dict[str, tuple[int, int]]:
        """Each sender's lowest and highest number seen."""
        return {s: (min(seen), max(seen)) for s, seen in sorted(self._seen.items())}
