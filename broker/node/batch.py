"""The records a subscription has fetched and not yet handled, and those handled but not yet committed.

Alerts first: a record of an urgent topic (the alerts topic) is handled before any fetched record of another topic,
so a kidnapping alert never waits behind a backlog of case files or reports. Records of one partition stay in order
(a partition belongs to one topic, and each topic to one queue).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection, Iterable, Iterator

from broker.transport.base import Record

__all__ = ["Handled", "Pending"]


class Pending:
    """Fetched records not yet handled: those of the ``urgent`` topics first, each queue in fetch order."""

    def __init__(self, urgent: Collection[str] = ()) -> None:
        self.urgent = frozenset(urgent)
        self._urgent: deque[Record] = deque()
        self._rest: deque[Record] = deque()

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            (self._urgent if record.topic in self.urgent else self._rest).append(record)

    def __bool__(self) -> bool:
        return bool(self._urgent or self._rest)

    def __len__(self) -> int:
        return len(self._urgent) + len(self._rest)

    def __iter__(self) -> Iterator[Record]:
        yield from self._urgent
        yield from self._rest

    def first(self) -> Record:
        """The record to handle next (IndexError when there is none)."""
        return self._urgent[0] if self._urgent else self._rest[0]

    def pop(self) -> Record:
        """Take the record :meth:`first` returned."""
        return self._urgent.popleft() if self._urgent else self._rest.popleft()

    def drop_partition(self, topic: str, partition: int) -> int:
        """Forget the records of one partition (a rebalance gave it to another member); returns how many."""
        before = len(self)
        self._urgent = deque(r for r in self._urgent if (r.topic, r.partition) != (topic, partition))
        self._rest = deque(r for r in self._rest if (r.topic, r.partition) != (topic, partition))
        return before - len(self)

    def per_partition(self) -> Counter[tuple[str, int]]:
        """How many records of each partition wait here (for the lag metric, sampled every few seconds)."""
        return Counter((r.topic, r.partition) for r in self)

    def clear(self) -> None:
        self._urgent.clear()
        self._rest.clear()


class Handled:
    """The last record handled in each partition since the last commit: what the next commit marks done."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], Record] = {}
        #: How many records were handled since the last commit.
        self.count = 0

    def add(self, record: Record) -> None:
        self._last[(record.topic, record.partition)] = record
        self.count += 1

    def take(self) -> list[Record]:
        """The records to commit (one per partition), forgotten here."""
        taken = list(self._last.values())
        self._last.clear()
        self.count = 0
        return taken

    def __bool__(self) -> bool:
        return bool(self._last)
