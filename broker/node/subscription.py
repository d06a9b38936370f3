"""Subscriptions: verified messages of some topics for one consumer group, at least once, refusals quarantined.

A subscription hands a message to application code only after every stage of the receive path passed
(:mod:`broker.node.receive`). What is durable is made so once per fetched batch, not once per message: the replay
store's rows of the batch in one transaction, then one offset commit per partition, both after the handlers returned.
A consumer that dies mid-batch gets the uncommitted part of the batch again after a restart; messages whose replay
rows were written are recognised as duplicates and not handed over again, the others (handled, not yet flushed) are
handed over again: at least once, and at most one batch twice. Refused records are written to the node's quarantine
topic with their reason before they are committed, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from broker.errors import HandlerError, MessageError
from broker.lifecycle import Lifecycle
from broker.models import Envelope, Message
from broker.node.batch import Handled, Pending
from broker.node.metrics import Lag, process_metrics
from broker.node.receive import Outcome, Received, receive, received
from broker.node.receive_state import Held, HeldFrames, QuarantineBook, source_of
from broker.node.topics import ALERTS
from broker.transport.base import Consumer, Record, Sent
from broker.transport.health import ConnectionWatch, StatusHook
from broker.trust.directory import DirectoryTrust
from broker.trust.replay import Row
from broker.wire.envelope import parse_frame

if TYPE_CHECKING:
    from broker.node.node import Node

__all__ = [
    "Delivery",
    "DuplicateHook",
    "Handler",
    "RefusalHook",
    "Subscription",
    "SubscriptionStats",
    "chain_refusals",
    "internal_error",
    "maybe_await",
]

log = logging.getLogger("op7.node")
#: What waits on the directory is told there: a user sees it without -v (the CLI shows this logger's warnings).
directory_log = logging.getLogger("op7.directory")

#: Refusals that mean the directory held does not list the sender, or its key, yet: such frames are held (§4.4).
HOLD_REASONS = frozenset({"unknown-sender", "unknown-key"})


@dataclass(frozen=True)
class Delivery:
    """A verified, decoded message handed to application code."""

    envelope: Envelope
    message: Message
    raw: bytes
    record: Record


Handler = Callable[[Delivery], Awaitable[None] | None]
RefusalHook = Callable[[Record, MessageError], Awaitable[None] | None]
DuplicateHook = Callable[[Record, Envelope], Awaitable[None] | None]


def chain_refusals(*hooks: RefusalHook | None) -> RefusalHook:
    """One refusal hook that tells each of ``hooks`` in turn (None ones left out)."""

    async def tell(record: Record, error: MessageError) -> None:
        for hook in hooks:
            if hook is not None:
                await maybe_await(hook(record, error))

    return tell


async def maybe_await(result: Awaitable[Any] | None) -> None:
    """Await what an application callback returned when it is awaitable: handlers may be plain or async."""
    if inspect.isawaitable(result):
        await result


@dataclass
class SubscriptionStats:
    received: int = 0
    delivered: int = 0
    duplicates: int = 0
    #: Directed messages for other nodes (on a shared topic), passed over without being opened.
    not_addressed: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    #: Frames held until the directory knows their sender (docs/PROTOCOL.md §4.4).
    held: int = 0


def internal_error(exc: Exception) -> MessageError:
    """The refusal of a record on which a check raised something other than a refusal: ``internal-error``, naming
    the exception's type only (its text may quote the record's content)."""
    return MessageError(
        f"internal error while checking the record ({type(exc).__name__}); the traceback is in the node's log",
        reason="internal-error",
    )


class Subscription(Lifecycle):
    """Verified messages of some topics for one consumer group.

    Records fetched but not yet handled stay in this subscription, in order: a run that ends early (on a
    handler error, after ``limit``) leaves them for the next run, and nothing is skipped. Records of a
    partition that a Kafka rebalance moved to another member are dropped here: their new owner reads
    them from the last commit.
    """

    def __init__(self, node: Node, consumer: Consumer, group: str, topics: Sequence[str] | None = None) -> None:
        self._node = node
        self._consumer = consumer
        self._group = group
        self._stopping = False
        names = list(topics) if topics is not None else []
        #: Fetched, not handled yet: alerts first (:class:`~broker.node.batch.Pending`).
        self._pending = Pending([t for t in names if node.topics.short(t) == ALERTS])
        #: Handled, not committed yet.
        self._handled = Handled()
        #: Records asked for in one fetch: what one commit (and one replay-store transaction) covers at most.
        self.max_batch = 500
        #: Seconds of handling after which what is handled is made durable and committed, and the alerts topic is
        #: looked at again, even in the middle of a fetched batch: one slow batch holds neither back for long.
        self.max_batch_seconds = 0.1
        self._flushing: asyncio.Task[None] | None = None
        # One flush is taken at a time, in order, whoever asks: the run, or the consumer before a rebalance.
        self._flush_lock = asyncio.Lock()
        consumer.before_revoke = self._flush
        #: Quarantine entries sent and not yet known to be durable.
        self._quarantining: list[Awaitable[Sent]] = []
        self.stats = SubscriptionStats()
        self.metrics = process_metrics()
        #: What was quarantined already, and each source's budget of whole entries (docs/PROTOCOL.md §6).
        self.quarantine_book = QuarantineBook(node.replay_guard.path)
        self._pruned_at: datetime | None = None
        #: Frames refused only because the directory does not know their sender yet (docs/PROTOCOL.md §4.4).
        self.held = HeldFrames(node.replay_guard.path)
        self._topics = frozenset(topics) if topics is not None else None
        #: Seconds the directory version stays unchanged before held frames are examined again: a burst of new
        #: versions is taken whole, so a frame is not judged by one that is about to be followed.
        self.settle = 1.0
        self._version_seen: tuple[int, float] = (-1, 0.0)
        self._examined: int | None = None

    async def start(self) -> None:
        self._stopping = False
        await self._consumer.start()

    async def stop(self) -> None:
        self._stopping = True
        self._pending.clear()
        try:
            await self._flush()
        finally:
            await self._consumer.stop()

    async def run(
        self,
        handler: Handler,
        *,
        limit: int | None = None,
        idle_timeout: float | None = None,
        poll: float = 0.5,
        on_refused: RefusalHook | None = None,
        on_duplicate: DuplicateHook | None = None,
        on_status: StatusHook | None = None,
        status_grace: float = 5.0,
    ) -> SubscriptionStats:
        """Hand each verified message to ``handler`` and commit it once the handler returned.

        Returns after ``limit`` deliveries in this run, after ``idle_timeout`` seconds without a record,
        or when the subscription is stopped. ``on_refused`` is told of each record quarantined. A handler
        exception ends the run with :class:`HandlerError`; that message is not committed, and the next
        run (or, after a restart, the next consumer of the group) gets it again. ``on_status`` is told when
        the cluster has been out of reach for ``status_grace`` seconds, and when it is reached again
        (:class:`~broker.transport.health.ConnectionWatch`).
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        async with self.metrics.sampling_lag(self.lag):
            if on_status is None:
                return await self._run(handler, limit, idle_timeout, poll, on_refused, on_duplicate)
            watch = ConnectionWatch(self._node.transport, on_status, grace=status_grace, clock=self._node.clock)
            watching = asyncio.create_task(watch.run(), name="op7-connection-watch")
            try:
                return await self._run(handler, limit, idle_timeout, poll, on_refused, on_duplicate)
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)

    async def lag(self) -> Lag:
        """Records of each partition read here that are not handled yet: beyond the consumer's position, and
        fetched but waiting in this subscription."""
        behind = await self._consumer.lag()
        for partition, waiting in self._pending.per_partition().items():
            if partition in behind:
                behind[partition] += waiting
        return behind

    async def _run(
        self,
        handler: Handler,
        limit: int | None,
        idle_timeout: float | None,
        poll: float,
        on_refused: RefusalHook | None,
        on_duplicate: DuplicateHook | None,
    ) -> SubscriptionStats:
        loop = asyncio.get_running_loop()
        last_seen = batch_started = loop.time()
        delivered = 0
        self._examined = None
        try:
            while not self._stopping:
                if self._release_due(loop.time()):
                    room = None if limit is None else limit - delivered
                    delivered += await self._release(handler, on_refused, on_duplicate, room)
                    if limit is not None and delivered >= limit:
                        return self.stats
                if not self._pending:
                    await self._flush(wait=False)  # the batch is handled: durable, then committed, beside the next
                    want = self.max_batch if limit is None else min(self.max_batch, limit - delivered)
                    records = await self._consumer.fetch(timeout=poll, max_records=want)
                    if not records:
                        if idle_timeout is not None and loop.time() - last_seen >= idle_timeout:
                            break
                        continue
                    self._pending.extend(records)
                    last_seen = batch_started = loop.time()
                while self._pending and not self._stopping:
                    if loop.time() - batch_started >= self.max_batch_seconds:
                        await self._catch_up()
                        batch_started = loop.time()
                    record = self._pending.first()
                    if not self._consumer.owns(record):
                        self._drop_partition(record)
                        continue
                    handled = await self._handle(record, handler, on_refused, on_duplicate)
                    self._pending.pop()
                    if handled:
                        delivered += 1
                        if limit is not None and delivered >= limit:
                            return self.stats
            return self.stats
        finally:
            await self._flush()

    async def _catch_up(self) -> None:
        """In the middle of a long batch: make what is handled durable and commit it, and fetch what arrived on the
        urgent topics since, to be handled next."""
        await self._flush(wait=False)
        if self._pending.urgent:
            urgent = await self._consumer.fetch(timeout=0, max_records=self.max_batch, topics=self._pending.urgent)
            self._pending.extend(urgent)

    async def _flush(self, *, wait: bool = True) -> None:
        """Make what was handled durable, then commit it: the replay store's rows in one transaction (in a thread),
        then the offsets in one request, so a committed offset is never ahead of the replay store. Without ``wait``
        this goes on beside the next records; one flush at a time, in order."""
        async with self._flush_lock:
            await self._flushed()
            rows, records = self._node.replay_guard.take(), self._handled.take()
            entries, self._quarantining = self._quarantining, []
            if rows or records or entries:
                self._flushing = asyncio.create_task(self._write_and_commit(rows, entries, records), name="op7-flush")
            if wait:
                await self._flushed()

    async def _flushed(self) -> None:
        """Wait for the flush under way, if any (its failure ends the run)."""
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            await flushing

    async def _write_and_commit(self, rows: list[Row], entries: list[Awaitable[Sent]], records: list[Record]) -> None:
        await self._node.replay_guard.write_taken(rows)
        for entry in entries:  # the quarantine entries of the records about to be committed
            await entry
        if not records:
            return
        for record in await self._consumer.commit_many(records):
            log.info(
                "%s[%d] handled up to @%d but not committed: the partition moved; its new owner gets those again",
                record.topic,
                record.partition,
                record.offset,
            )

    def _drop_partition(self, record: Record) -> None:
        dropped = self._pending.drop_partition(record.topic, record.partition)
        log.info(
            "partition %s[%d] moved to another member; %d fetched records left to it",
            record.topic,
            record.partition,
            dropped,
        )

    def _examine(self, record: Record, state: Received) -> Outcome | MessageError:
        """Run the stages on ``state``: what becomes of the record, or its refusal."""
        try:
            return receive(self._node, state)
        except MessageError as exc:
            return exc
        except sqlite3.Error:
            raise  # the node's own state failed, not the record: nothing is committed, the run ends
        except Exception as exc:
            # Untrusted bytes met a gap in the checks: the record is kept and the consumer goes on.
            log.error("internal error on %s[%d]@%d", record.topic, record.partition, record.offset, exc_info=True)
            return internal_error(exc)

    async def _handle(
        self, record: Record, handler: Handler, on_refused: RefusalHook | None, on_duplicate: DuplicateHook | None
    ) -> bool:
        """Handle one record; True if it went to the handler, False if it was quarantined, held, a duplicate or
        not ours."""
        self.stats.received += 1
        state = received(record.value, record.topic)
        outcome = self._examine(record, state)
        if isinstance(outcome, MessageError):
            if outcome.reason in HOLD_REASONS and self.holding:
                await self._hold(record, state, outcome, on_refused)
            else:
                await self._quarantine(record, state, outcome, on_refused)
            self._handled.add(record)
            return False
        if outcome is Outcome.NOT_ADDRESSED:
            self.stats.not_addressed += 1
        elif outcome is Outcome.DUPLICATE:
            # The same bytes again (a resend, a redelivery, a replay): handled once already.
            self.stats.duplicates += 1
            if on_duplicate is not None and state.envelope is not None:
                await maybe_await(on_duplicate(record, state.envelope))
        else:
            await self._deliver(record, state, handler)
        self._handled.add(record)
        return outcome is Outcome.DELIVER

    async def _quarantine(
        self,
        record: Record,
        state: Received,
        error: MessageError,
        on_refused: RefusalHook | None,
        *,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Write ``record``'s quarantine entry (as much of it as §6 keeps); the caller commits. With ``then`` (a held
        frame, committed already), the entry is durable before ``then`` runs and before the refusal is counted."""
        # The verified header, when there is one: the sender is then known and can be told.
        error.envelope = state.envelope
        now = self._node.clock.now()
        if self._pruned_at is None or now - self._pruned_at > self.quarantine_book.window:
            self.quarantine_book.prune(now)
            self._pruned_at = now
        book, digest = self.quarantine_book, state.digest
        source = source_of(record, state.envelope.sender if state.envelope is not None else None)
        keep = book.decide(digest, source, now)
        if keep is not None:
            sending = await self._node.quarantine_soon(record, error, self._group, keep)
            if then is None:  # durable before the record's offset is committed (the flush waits for it)
                self._quarantining.append(sending)
            else:
                await sending
        else:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.info("%s: %s again, a copy already quarantined", where, error.reason)
        book.kept(digest, source, keep, record, now)
        if then is not None:
            then()
        self.stats.quarantined[error.reason] += 1
        self.metrics.refused(error.reason)
        if on_refused is not None:
            await maybe_await(on_refused(record, error))

    # --- frames held until the directory knows their sender -----------------------------------------------

    @property
    def holding(self) -> bool:
        """Whether this subscription holds frames of senders the directory does not list yet: only with a directory
        that is followed (new versions arrive) and state kept in a file (a held frame's offset is committed)."""
        node = self._node
        return isinstance(node.trust, DirectoryTrust) and node.follows_directory and node.replay_guard.path is not None

    async def _hold(self, record: Record, state: Received, error: MessageError, on_refused: RefusalHook | None) -> None:
        try:
            sender = parse_frame(state.value).sender  # parsed before the key was looked up: structurally sound
        except MessageError:
            sender = "?"
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        now = self._node.clock.now()
        pushed = self.held.hold(
            state.digest, sender, (error.reason, str(error)), record, now, self._directory_version()
        )
        if pushed is None:
            log.info("%s: the same bytes are held already", where)
            return
        self.stats.held += 1
        directory_log.warning("held %s until the directory lists its sender or key: %s", where, error)
        for old in pushed:  # over the caps: the oldest make room, to quarantine
            await self._unhold(old, MessageError(old.detail, reason=old.reason), on_refused)

    async def _unhold(
        self, held: Held, error: MessageError, on_refused: RefusalHook | None, state: Received | None = None
    ) -> None:
        """Quarantine a held frame with ``error``, then forget it (its offset was committed when it was held)."""
        state = state or received(held.record.value, held.record.topic)
        digest = state.digest  # its offset was committed when it was held: its entry is durable before it is forgotten
        await self._quarantine(held.record, state, error, on_refused, then=lambda: self.held.drop(digest))

    def _directory_version(self) -> int:
        trust = self._node.trust
        return trust.version if isinstance(trust, DirectoryTrust) else 0

    def _release_due(self, now: float) -> bool:
        """Whether held frames are to be examined again (``now``: the event loop's time): at the start of a run, and
        when the directory moved to a newer version and then stayed there for :attr:`settle` seconds."""
        if not self.holding:
            return False
        version = self._directory_version()
        if version != self._version_seen[0]:
            self._version_seen = (version, now)
        return version != self._examined and now - self._version_seen[1] >= self.settle

    async def _release(
        self,
        handler: Handler,
        on_refused: RefusalHook | None,
        on_duplicate: DuplicateHook | None,
        room: int | None,
    ) -> int:
        """Examine the held frames again; deliver those that now pass, quarantine those refused under a newer
        directory or held longer than the freshness window. Returns how many were delivered."""
        now, version = self._node.clock.now(), self._directory_version()
        self._examined = version
        for held in self.held.held_before(now - self._node.freshness.max_age):
            detail = (
                f"held since {held.received_at:%Y-%m-%dT%H:%M:%SZ}, longer than the freshness window: {held.detail}"
            )
            await self._unhold(held, MessageError(detail, reason=held.reason), on_refused)
        delivered = 0
        for held in self.held.frames(self._topics):
            if room is not None and delivered >= room:
                break  # the rest at the next run
            state = received(held.record.value, held.record.topic)
            state.received_at = held.received_at  # fresh as when it was read: the catch-up does not age it
            outcome = self._examine(held.record, state)
            if isinstance(outcome, MessageError):
                if outcome.reason not in HOLD_REASONS or version > held.version:
                    await self._unhold(held, outcome, on_refused, state)
                continue
            if outcome is Outcome.DELIVER:
                await self._deliver(held.record, state, handler)
                self._node.replay_guard.flush()  # its offset was committed when held: remembered before forgotten
                delivered += 1
            elif outcome is Outcome.DUPLICATE and on_duplicate is not None and state.envelope is not None:
                await maybe_await(on_duplicate(held.record, state.envelope))
            self.held.drop(state.digest)
        return delivered

    async def _deliver(self, record: Record, state: Received, handler: Handler) -> None:
        opened = state.opened
        assert opened is not None
        started = time.perf_counter()
        try:
            await maybe_await(handler(Delivery(opened.envelope, opened.message, opened.raw, record)))
        except Exception as exc:
            self.stats.received -= 1  # it will be received again
            raise HandlerError(
                f"handler failed on {opened.envelope.message_type} {opened.envelope.message_id} "
                f"({record.topic}[{record.partition}]@{record.offset}); it was not committed: {exc!r}"
            ) from exc
        self.metrics.handled(record.topic, opened.envelope.message_type, time.perf_counter() - started)
        self._node.replay_guard.remember(opened.envelope, state.digest, self._node.clock.now())
        self.stats.delivered += 1
