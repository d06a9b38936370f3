"""The one transport interface: topics of ordered records, producers, consumer groups with commits.

Two implementations sit behind it: :mod:`broker.transport.kafka` (Apache Kafka through aiokafka) and
:mod:`broker.transport.embedded` (one machine, no server). Everything above this module is written
against :class:`Transport` and :class:`Consumer` only.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from broker.lifecycle import Lifecycle

__all__ = ["Consumer", "Record", "Sent", "Transport"]


@dataclass(frozen=True)
class Record:
    """One record read from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Sent:
    """Where a record was written."""

    topic: str
    partition: int
    offset: int


class Consumer(Lifecycle):
    """A member of a consumer group. Nothing is committed unless :meth:`commit` is called."""

    #: Awaited when the group is about to take partitions from this member (a rebalance), while its commits are
    #: still accepted: the moment to commit what it handled. Transports without rebalances never call it.
    before_revoke: Callable[[], Awaitable[None]] | None = None

    @abstractmethod
    async def fetch(
        self, timeout: float = 1.0, max_records: int = 500, *, topics: Collection[str] | None = None
    ) -> list[Record]:
        """Records after the current position, in order per partition; empty after ``timeout`` seconds.

        ``topics`` limits the fetch to the partitions of those topics (of the ones subscribed): a consumer busy with
        bulk traffic looks for alerts without taking more of the bulk.
        """

    @abstractmethod
    async def commit_many(self, records: Sequence[Record]) -> list[Record]:
        """Mark each of ``records``, and everything before it in its partition, as done for this group, in one
        request (the last record of each partition counts).

        Returns the records that were not committed because their partition is no longer this member's (a
        rebalance moved it): they will be delivered again to the partition's new owner.
        """

    async def commit(self, record: Record) -> bool:
        """:meth:`commit_many` of one record: False when its partition moved to another member."""
        return not await self.commit_many([record])

    def owns(self, record: Record) -> bool:
        """Whether ``record``'s partition is still assigned to this member."""
        return True

    async def lag(self) -> dict[tuple[str, int], int]:
        """How many records of each partition assigned to this member lie beyond its position (not fetched yet),
        ``{(topic, partition): records}``; partitions whose end is not known yet are left out. For metrics: sampled
        every few seconds, never per record. A transport that cannot tell returns nothing."""
        return {}


class Transport(Lifecycle):
    """Topics, producing and consumer groups."""

    name: str

    @abstractmethod
    async def create_topic(
        self, topic: str, *, partitions: int = 3, compacted: bool = False, retention: timedelta | None = None
    ) -> None:
        """Create ``topic`` if it does not exist (idempotent); ``retention`` None keeps the broker default."""

    @abstractmethod
    async def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` and its records; no error if it does not exist."""

    @abstractmethod
    async def send(self, topic: str, value: bytes, *, key: bytes | None = None) -> Sent:
        """Write one record and wait until it is durable (Kafka: acknowledged by all in-sync replicas)."""

    async def send_soon(self, topic: str, value: bytes, *, key: bytes | None = None) -> Awaitable[Sent]:
        """Queue one record and return at once: what is returned completes when the record is durable (or raises as
        :meth:`send` would). For writes that only need to be durable before a later step, such as a commit."""
        return asyncio.ensure_future(self.send(topic, value, key=key))

    async def send_many(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[Sent]:
        """Write several (key, value) records, in order per key, and wait until all are durable."""
        return [await self.send(topic, value, key=key) for key, value in records]

    async def probe(self, timeout: float) -> None:
        """Reach the cluster once: :class:`~broker.errors.TransportError` when no broker answers within
        ``timeout`` seconds. A transport without a server (embedded) is always reachable."""

    async def cluster_id(self) -> str | None:
        """The id the cluster reports for itself (Kafka's ``cluster.id``), which tells two clusters reached at one
        address apart; None for a transport whose address already is its identity (the embedded file)."""
        return None

    @abstractmethod
    def consumer(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> Consumer:
        """A consumer in ``group``; a group without committed offsets starts at the beginning (or the end)."""
