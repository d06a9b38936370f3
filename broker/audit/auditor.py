"""``op7 audit run``: read every op7 topic, judge each record, append it to the evidence log, sign checkpoints.

The auditor reads as a consumer group named after its store (a new store is filled again from what the topics still
hold) and commits a batch only once its entries are in the store: a crash between the two delivers the batch again,
and the store skips the records it already holds. Directory versions are also read whole at the start and followed
while it runs, so that each message is judged by the version in force when it was signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import Draft, Entry
from broker.audit.history import DirectoryHistory
from broker.audit.judge import Judge
from broker.audit.store import EvidenceStore
from broker.clock import Clock
from broker.errors import ConfigError, MessageError
from broker.node.topics import CHECKPOINTS, DIRECTORY, TopicLayout
from broker.transport.base import Consumer, Record, Transport
from broker.wire.envelope import NodeIdentity
from broker.wire.merkle import CompactRange

__all__ = ["Auditor", "AuditStats", "read_published"]

log = logging.getLogger("op7.audit")


@dataclass
class AuditStats:
    """What a run did."""

    read: int = 0
    logged: int = 0
    refused: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)


class Auditor:
    """Reads the network's topics into ``store``; signs checkpoints as ``identity`` every ``checkpoint_every``
    entries or ``checkpoint_interval``, whichever comes first, and when it stops."""

    def __init__(
        self,
        transport: Transport,
        store: EvidenceStore,
        history: DirectoryHistory,
        identity: NodeIdentity,
        clock: Clock,
        *,
        layout: TopicLayout | None = None,
        nodes: Sequence[str] = (),
        checkpoint_every: int = 10_000,
        checkpoint_interval: timedelta = timedelta(minutes=1),
    ) -> None:
        self.transport = transport
        self.store = store
        self.history = history
        self.identity = identity
        self.clock = clock
        self.layout = layout or TopicLayout()
        self.judge = Judge(history, self.layout)
        self.extra_nodes = tuple(nodes)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.group = f"{identity.node_id}.audit.{store.store_id}"
        self.stats = AuditStats()
        self.on_entries: Callable[[list[Entry]], None] | None = None
        self._tree = CompactRange()
        self._directory: Consumer | None = None
        self._checkpointed = 0
        self._last_checkpoint = clock.now()

    def topics(self) -> list[str]:
        """Every topic of the network: the shared ones, and each known node's inbox and quarantine."""
        nodes = sorted(self.history.nodes() | set(self.extra_nodes))
        shorts = [*self.layout.shared, *(t for n in nodes for t in self.layout.of_node(n))]
        return [self.layout.name(s) for s in dict.fromkeys(shorts)]

    async def start(self) -> None:
        """Check the store against its last checkpoint, and create the checkpoint topic."""
        await asyncio.to_thread(self._resume)
        await _create(self.transport, self.layout)

    def _resume(self) -> None:
        self._tree = CompactRange(self.store.leaves())
        latest = self.store.latest_checkpoint()
        if latest is None:
            return
        checkpoint = Checkpoint.from_bytes(latest)
        if (
            checkpoint.size > self._tree.size
            or CompactRange(self.store.leaves(checkpoint.size)).root() != checkpoint.root
        ):
            raise ConfigError(
                f"the evidence log no longer matches its last {checkpoint.describe()}: nothing more is appended to it; "
                "run 'op7 audit verify' to find the entry that changed"
            )
        self._checkpointed = checkpoint.size

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> AuditStats:
        """Read until ``stop`` is set, or with ``once`` until every topic is read to its end; a last checkpoint then."""
        await self.start()
        stop = stop or asyncio.Event()
        try:
            await self._read_directory(until_idle=True)
            while not stop.is_set():
                topics = self.topics()
                consumer = self.transport.consumer(topics, self.group, from_beginning=True)
                async with consumer:
                    caught_up = await self._consume(consumer, topics, once, stop)
                if caught_up and once:
                    break
        finally:
            try:
                await self.checkpoint(force=True)
            finally:
                await self.close()
        return self.stats

    async def _consume(self, consumer: Consumer, topics: list[str], once: bool, stop: asyncio.Event) -> bool:
        """Read with ``consumer``; True when caught up (``once``), False to read again with a new set of topics.

        One batch in flight: while it is judged, appended and committed, the next is fetched (the Kafka client fetches
        nothing ahead while its caller is busy). Batches are appended, and committed, in the order they were read; the
        directory history changes only between them."""
        idle = 0
        pending: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                records = await consumer.fetch(timeout=0.5, max_records=500)
                if pending is not None:
                    await pending
                    pending = None
                await self._read_directory(until_idle=False)
                if self.topics() != topics:
                    # This batch is neither logged nor committed: the group reads it again, with the new topics.
                    log.info("the directory lists new nodes: now reading %d topics", len(self.topics()))
                    return False
                await self.checkpoint()
                if records:
                    idle = 0
                    pending = asyncio.create_task(self._log(consumer, records))
                else:
                    idle += 1
                    if once and idle >= 2 and await _caught_up(consumer, idle):
                        return True
            return True
        finally:
            if pending is not None:
                await pending

    def _judge(self, records: list[Record]) -> list[Draft]:
        return [self.judge.draft(r) for r in records]

    async def _log(self, consumer: Consumer, records: list[Record]) -> None:
        """Judge one batch, append its entries, then commit its records (a crash between the two delivers them again,
        and the store skips what it holds)."""
        drafts = await asyncio.to_thread(self._judge, records)
        entries = await asyncio.to_thread(self.store.append, drafts, self.clock.now())
        for entry in entries:
            self._tree.append(entry.leaf)
        self.stats.read += len(records)
        self.stats.logged += len(entries)
        self.stats.refused += sum(1 for e in entries if e.outcome != "verified")
        if self.on_entries is not None and entries:
            self.on_entries(entries)
        await consumer.commit_many(records)

    async def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign and publish a checkpoint when enough entries or time went by since the last (``force``: whenever
        the log grew)."""
        grown = self._tree.size - self._checkpointed
        due = grown >= self.checkpoint_every or self.clock.now() - self._last_checkpoint >= self.checkpoint_interval
        if grown <= 0 or not (due or force):
            return None
        checkpoint = Checkpoint.sign(self.identity, self._tree.size, self._tree.root(), self.clock.now())
        data = checkpoint.to_bytes()
        await asyncio.to_thread(self.store.add_checkpoint, checkpoint.size, data)
        key = (checkpoint.network or self.identity.node_id).encode()
        await self.transport.send(self.layout.name(CHECKPOINTS), data, key=key)
        self._checkpointed, self._last_checkpoint = checkpoint.size, checkpoint.at
        self.stats.checkpoints.append(checkpoint)
        log.info("signed %s", checkpoint.describe())
        return checkpoint

    async def _read_directory(self, *, until_idle: bool) -> None:
        """Take the directory versions published since the last look (all of them at the start)."""
        if self.history.anchor is None:
            return
        if self._directory is None:
            group = f"{self.group}.directory.{uuid.uuid4().hex}"
            self._directory = self.transport.consumer([self.layout.name(DIRECTORY)], group, from_beginning=True)
            await self._directory.start()
        idle = 0
        while True:
            records = await self._directory.fetch(timeout=0.5 if until_idle else 0.0)
            for record in records:
                if record.value:
                    with contextlib.suppress(MessageError):
                        self.history.offer(record.value)
            idle = 0 if records else idle + 1
            if not records and (not until_idle or await _caught_up(self._directory, idle)):
                return

    async def close(self) -> None:
        if self._directory is not None:
            await self._directory.stop()
            self._directory = None


async def read_published(transport: Transport, layout: TopicLayout) -> list[bytes]:
    """Every checkpoint on the checkpoint topic (read whole by a fresh group, nothing committed)."""
    await _create(transport, layout)
    group = f"op7.audit.checkpoints.{uuid.uuid4().hex}"
    found: list[bytes] = []
    async with transport.consumer([layout.name(CHECKPOINTS)], group, from_beginning=True) as consumer:
        idle = 0
        while True:
            records = await consumer.fetch(timeout=0.5)
            found += [r.value for r in records if r.value]
            idle = 0 if records else idle + 1
            if not records and await _caught_up(consumer, idle):
                return found


async def _create(transport: Transport, layout: TopicLayout) -> None:
    spec = layout.spec(CHECKPOINTS)
    await transport.create_topic(spec.name, partitions=spec.partitions, retention=spec.retention)


async def _caught_up(consumer: Consumer, idle: int) -> bool:
    """Whether ``consumer`` has read its partitions to their end: their ends known and nothing beyond its position;
    after ten idle fetches in a row, whatever it could not learn (a topic nobody created has no partitions)."""
    lag = await consumer.lag()
    return (bool(lag) and not any(lag.values())) or idle >= 10
