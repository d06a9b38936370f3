"""A national node: publish signed messages, subscribe with verification, quarantine what fails.

A subscription hands a message to application code only after its signature verified against the
trust store and its content decoded and validated. Offsets are committed only after the handler
returned (at-least-once): a consumer that dies mid-handler gets the message again after a restart.
Refused records are written to the quarantine topic with their reason before they are committed, so
nothing is lost.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import json
import logging
import re
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.clock import Clock, default_clock
from broker.errors import ConfigError, HandlerError, HandlingRuleError, MessageError, PolicyError, TransportError
from broker.models import (
    Authority,
    DisseminationDecision,
    Envelope,
    ForwardedMessage,
    Handling,
    Message,
    Request,
    new_message_id,
)
from broker.models.directory import SignedDirectory
from broker.transport.base import Consumer, Record, Sent, Transport, _Lifecycle
from broker.trust.directory import DirectoryTrust, decode_signed_directory, encode_signed_directory, keep_directory
from broker.trust.handling import check_forward
from broker.trust.replay import Freshness, ReplayGuard
from broker.wire.envelope import (
    MAX_FRAME_SIZE,
    NodeIdentity,
    Opened,
    build,
    build_batch,
    open_frame,
    open_verified,
    verify_frame,
)
from broker.wire.schemas import SchemaRegistry, default_registry
from broker.wire.sealing import Opener
from broker.wire.trust import Trust

__all__ = [
    "TOPIC_ALERTS",
    "TOPIC_QUARANTINE",
    "Delivery",
    "Handler",
    "Node",
    "Published",
    "Subscription",
    "SubscriptionStats",
]

log = logging.getLogger("op7.node")

#: What a quarantine entry keeps of a record key, and of a value larger than any valid frame.
_KEEP_OF_KEY = 1024
_KEEP_OF_OVERSIZED = 65_536

TOPIC_ALERTS = "alerts"
TOPIC_QUARANTINE = "quarantine"
TOPIC_DIRECTORY = "directory"


@dataclass(frozen=True)
class Published:
    """A message as sent: its header, where it landed (one copy per recipient inbox), the exact signed bytes."""

    envelope: Envelope
    sent: Sent
    raw: bytes
    copies: tuple[Sent, ...] = ()


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


async def _maybe_await(result: Awaitable[None] | None) -> None:
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


class Node(_Lifecycle):
    """One op7 node on one transport. ``identity`` is needed to publish, not to subscribe.

    The node starts and stops its transport unless ``manage_transport`` is False (several nodes sharing
    one transport, as in the embedded demo).
    """

    def __init__(
        self,
        transport: Transport,
        trust: Trust,
        identity: NodeIdentity | None = None,
        *,
        opener: Opener | None = None,
        registry: SchemaRegistry | None = None,
        topic_prefix: str = "op7",
        manage_transport: bool = True,
        freshness: Freshness | None = None,
        replay_guard: ReplayGuard | None = None,
        follow_directory: bool = True,
        directory_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", topic_prefix):
            raise ConfigError(f"topic prefix {topic_prefix!r}: use letters, digits, '.', '_' and '-' only")
        self.transport = transport
        #: Every reading of the time by this node, its subscriptions and its exchange agent.
        self.clock: Clock = clock or default_clock()
        self._manage_transport = manage_transport
        self.topic_prefix = topic_prefix
        self.trust = trust
        self.identity = identity
        self.opener = opener
        #: This node's id, when it has one: messages addressed to other nodes are passed over.
        self.node_id = identity.node_id if identity else (opener.node_id if opener else None)
        self.registry = registry or default_registry()
        self.freshness = freshness or Freshness()
        self.replay_guard = replay_guard or ReplayGuard()
        self._follow = follow_directory and isinstance(trust, DirectoryTrust)
        self._directory_dir = directory_dir
        self._follower: asyncio.Task[None] | None = None
        #: Seconds a node without any directory waits at start for the first one on the topic.
        self.directory_wait = 30.0
        self._directory_arrived = asyncio.Event()
        self._created: set[str] = set()

    async def start(self) -> None:
        if self._manage_transport:
            await self.transport.start()
        topics = {self.registry.topic_of(t) for t in self.registry.message_types} | {self.quarantine_name}
        if self.node_id:
            topics.add(self.inbox_of(self.node_id))
        for topic in sorted(topics):
            await self._ensure_topic(topic)
        await self.transport.create_topic(self.topic(TOPIC_DIRECTORY), partitions=1, compacted=True)
        if self._follow:
            # In the background: nothing on the message path waits for the directory topic...
            self._follower = asyncio.create_task(self._follow_directory(), name="op7-directory-follower")
            # ...except a node that holds no directory at all yet, which could verify nothing.
            trust = self.trust
            assert isinstance(trust, DirectoryTrust)
            if trust.directory is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._directory_arrived.wait(), self.directory_wait)
            if trust.directory is None:
                log.warning(
                    "no network directory after %.0f s: every message will be refused until one arrives",
                    self.directory_wait,
                )

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._manage_transport:
            await self.transport.stop()

    async def publish_directory(self, signed: SignedDirectory, network: str, version: int) -> Sent:
        """Put a signed directory on the compacted directory topic.

        Keyed by network and version, so that compaction keeps every version: a node that starts from the
        anchor can then verify the whole chain, authority changes included.
        """
        key = f"{network}/{version:010d}".encode()
        return await self.transport.send(self.topic(TOPIC_DIRECTORY), encode_signed_directory(signed), key=key)

    async def _follow_directory(self) -> None:
        trust = self.trust
        assert isinstance(trust, DirectoryTrust)
        # A fresh group each time: the compacted topic is read whole, and nothing is committed.
        group = f"op7.directory-follower.{uuid.uuid4().hex}"
        consumer = self.transport.consumer([self.topic(TOPIC_DIRECTORY)], group, from_beginning=True)
        try:
            async with consumer:
                while True:
                    for record in await consumer.fetch(timeout=1.0):
                        self._offer_directory(trust, record)
        except TransportError as exc:
            log.error(
                "directory follower stopped: %s; the directory held (version %d) stays in force", exc, trust.version
            )

    def _offer_directory(self, trust: DirectoryTrust, record: Record) -> None:
        try:
            signed = decode_signed_directory(record.value)
            if trust.offer(signed, self.clock.now()):
                self._directory_arrived.set()
                if self._directory_dir is not None:
                    keep_directory(self._directory_dir, trust)
        except (MessageError, ConfigError) as exc:
            log.warning("refused a directory from %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)

    def topic(self, name: str) -> str:
        """Full topic name: ``<prefix>.<name>``, e.g. ``op7.alerts``."""
        return f"{self.topic_prefix}.{name}"

    @staticmethod
    def inbox_of(node_id: str) -> str:
        """The inbox topic (without prefix) of a node: directed messages to it go there."""
        return f"inbox.{node_id}"

    @property
    def quarantine_name(self) -> str:
        """This node's quarantine topic (without prefix)."""
        return f"{TOPIC_QUARANTINE}.{self.node_id}" if self.node_id else TOPIC_QUARANTINE

    @property
    def created_topics(self) -> list[str]:
        """Full names of the topics this node created or checked, for tools that clean up after themselves."""
        return sorted(self.topic(name) for name in self._created)

    async def _ensure_topic(self, name: str) -> None:
        if name not in self._created:
            await self.transport.create_topic(self.topic(name))
            self._created.add(name)

    async def publish(
        self,
        message: Message,
        *,
        recipients: tuple[str, ...] = (),
        handling: Handling | None = None,
        seal: bool = False,
        conversation_id: str | None = None,
        in_reply_to: str | None = None,
        now: datetime | None = None,
        before_send: Callable[[Envelope, bytes], None] | None = None,
    ) -> Published:
        """Sign and send ``message``; returns once the transport holds it durably.

        A request without explicit ``recipients`` is addressed to its ``requested_authority``. With
        ``seal``, the payload is encrypted for the recipients' keys from the trust source. ``before_send`` sees
        the signed frame before it leaves (to record it first: a crash then loses nothing).
        """
        if not recipients and isinstance(message, Request):
            recipients = (message.requested_authority.node,)
        now = now or self.clock.now()
        identity = self._signer(message)
        seal_to = None
        if seal:
            if not recipients:
                raise ConfigError("a sealed message needs recipients: it is readable by them only")
            seal_to = {r: self.trust.encryption_key(r, now) for r in recipients}
        envelope, frame = build(
            identity,
            message,
            recipients=recipients,
            handling=handling,
            now=now,
            seal_to=seal_to,
            conversation_id=conversation_id,
            in_reply_to=in_reply_to,
            registry=self.registry,
        )
        if before_send is not None:
            before_send(envelope, frame)
        key = (envelope.conversation_id or envelope.case_id or envelope.message_id).encode()
        # Directed messages go to each recipient's inbox (the same signed bytes); others to their type's topic.
        names = [self.inbox_of(r) for r in recipients] or [self.registry.topic_of(message.avro_name)]
        copies = []
        for name in names:
            await self._ensure_topic(name)
            copies.append(await self.transport.send(self.topic(name), frame, key=key))
        sent = copies[0]
        log.info(
            "published %s %s case=%s to %s[%d]@%d",
            envelope.message_type,
            envelope.message_id,
            envelope.case_id,
            sent.topic,
            sent.partition,
            sent.offset,
        )
        return Published(envelope, sent, frame, tuple(copies))

    def _signer(self, message: Message) -> NodeIdentity:
        """This node's identity, to sign ``message``; ``ConfigError`` for what receivers would refuse."""
        if self.identity is None:
            raise ConfigError("this node has no signing key: it can subscribe but not publish")
        if message.issuer.node != self.identity.node_id:
            raise ConfigError(
                f"the {message.avro_name} says {message.issuer.node} issued it; only {message.issuer.node} can "
                f"sign it, not {self.identity.node_id} (receivers would refuse it as issuer-mismatch)"
            )
        clock_now = self.clock.now()
        if message.sent_at - clock_now > self.freshness.max_skew:
            raise ConfigError(
                f"the {message.avro_name} is dated {message.sent_at:%Y-%m-%dT%H:%M:%SZ}, more than "
                f"{self.freshness.max_skew} after this node's clock ({clock_now:%Y-%m-%dT%H:%M:%SZ}): "
                "a message is not sent from the future"
            )
        return self.identity

    async def send_frame(self, frame: bytes, recipients: tuple[str, ...], *, key: bytes) -> list[Sent]:
        """Send an already signed frame (a kept receipt, a resend) to the recipients' inboxes, unchanged."""
        sent = []
        for recipient in recipients:
            await self._ensure_topic(self.inbox_of(recipient))
            sent.append(await self.transport.send(self.topic(self.inbox_of(recipient)), frame, key=key))
        return sent

    async def publish_batch(
        self, messages: Sequence[Message], *, recipients: tuple[str, ...] = (), now: datetime | None = None
    ) -> list[Published]:
        """Sign several messages with one signature (scheme 2) and send them; each still verifies alone."""
        now = now or self.clock.now()
        signers = [self._signer(m) for m in messages]
        if not signers:
            return []
        built = build_batch(signers[0], messages, recipients=recipients, now=now, registry=self.registry)
        by_topic: dict[str, list[int]] = {}
        for i, message in enumerate(messages):
            for name in [self.inbox_of(r) for r in recipients] or [self.registry.topic_of(message.avro_name)]:
                by_topic.setdefault(name, []).append(i)
        sent: dict[int, list[Sent]] = {}
        for name, indexes in by_topic.items():
            await self._ensure_topic(name)
            records = []
            for i in indexes:
                env = built[i][0]
                records.append(((env.conversation_id or env.case_id or env.message_id).encode(), built[i][1]))
            for i, s in zip(indexes, await self.transport.send_many(self.topic(name), records), strict=True):
                sent.setdefault(i, []).append(s)
        return [Published(env, sent[i][0], frame, tuple(sent[i])) for i, (env, frame) in enumerate(built)]

    async def forward(
        self,
        delivery: Delivery,
        to: tuple[str, ...],
        issuer: Authority,
        *,
        permission: Delivery | None = None,
        note: str | None = None,
    ) -> Published:
        """Pass a received message on to other nodes, intact, if its handling code allows it.

        Raises :class:`HandlingRuleError` quoting the rule otherwise; ``permission`` is the originator's
        signed ``DisseminationDecision`` granting it. A sealed original is forwarded sealed, with its
        content key, so that the new recipients can open the original and nobody else can.
        """
        if self.identity is None:
            raise ConfigError("this node has no signing key: it cannot forward")
        grant = permission.message if permission is not None else None
        if grant is not None and not isinstance(grant, DisseminationDecision):
            raise ConfigError("permission must be a DisseminationDecision")
        original = delivery.envelope
        now = self.clock.now()
        check_forward(
            original,
            self.identity.node_id,
            to,
            grant=grant,
            grant_sender=permission.envelope.sender if permission else None,
            at=now,
        )
        content_key = None
        if original.sealed is not None:
            if self.opener is None:
                raise ConfigError("this node cannot open the original, so it cannot forward it")
            content_key = self.opener.content_key(original)
        forwarded = ForwardedMessage(
            forward_id=new_message_id(now),
            status=original.status,
            sent_at=now,
            case_id=original.case_id,
            original_frame=delivery.raw,
            original_content_key=content_key,
            permission_frame=permission.raw if permission else None,
            note=note,
            languages=original.languages or ("en",),
            handling=original.handling,
            issuer=issuer,
        )
        return await self.publish(forwarded, recipients=to, seal=content_key is not None)

    def open_forwarded(
        self, forwarded: ForwardedMessage, forwarder: str, *, sealed: bool = True, depth: int = 0
    ) -> Opened:
        """Verify a forwarded message's original (and its permission), check the forward was allowed, and
        return the original opened. :class:`PolicyError` (``bad-forward``) when it does not hold.

        ``sealed`` says whether the forwarded message itself was sealed (a content key must never travel in
        clear). Nested forwards are checked all the way down.
        """
        now = self.clock.now()
        try:
            if forwarded.original_content_key is not None and not sealed:
                raise HandlingRuleError("a content key travelled in clear")
            if depth > 3:
                raise HandlingRuleError("forwarded more than three times")
            original = open_verified(
                verify_frame(forwarded.original_frame, self.trust, self.registry),
                self.registry,
                content_key=forwarded.original_content_key,
            )
            # Originals are held to the same freshness window as direct messages: a forward cannot launder a
            # stale or backdated message (a revoked key's) into acceptance.
            self.freshness.check(original.envelope, now)
            if forwarded.handling != original.envelope.handling:
                raise HandlingRuleError("the forward does not carry the original's handling code")
            grant, grant_sender = None, None
            if forwarded.permission_frame is not None:
                permission = open_frame(forwarded.permission_frame, self.trust, self.registry)
                self.freshness.check(permission.envelope, now)
                if isinstance(permission.message, DisseminationDecision):
                    grant, grant_sender = permission.message, permission.envelope.sender
            addressed = not original.envelope.recipients or forwarder in original.envelope.recipients
            if not addressed and not (grant is not None and grant.grantee == forwarder):
                raise HandlingRuleError(f"{forwarder} was not a recipient of the original")
            check_forward(
                original.envelope,
                forwarder,
                (self.node_id,) if self.node_id else None,
                grant=grant,
                grant_sender=grant_sender,
                at=now,
            )
            if isinstance(original.message, ForwardedMessage):
                self.open_forwarded(
                    original.message,
                    original.envelope.sender,
                    sealed=original.envelope.sealed is not None,
                    depth=depth + 1,
                )
        except (MessageError, HandlingRuleError) as exc:
            raise PolicyError(f"forwarded by {forwarder}: {exc}", reason="bad-forward") from exc
        return original

    def subscribe(
        self, group: str, topics: Sequence[str] = (TOPIC_ALERTS,), *, from_beginning: bool = True
    ) -> Subscription:
        """A consumer-group subscription; ``group`` is usually the subscribing node's id."""
        consumer = self.transport.consumer([self.topic(t) for t in topics], group, from_beginning=from_beginning)
        return Subscription(self, consumer, group)

    async def quarantine(self, record: Record, error: MessageError, group: str) -> None:
        """Keep a refused record with its reason; raises if it cannot be kept (so it is not committed)."""
        entry: dict[str, Any] = {
            "reason": error.reason,
            "detail": str(error),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "record_timestamp_ms": record.timestamp_ms,
            "quarantined_at": self.clock.now().isoformat(),
            "consumer_group": group,
            "key": base64.b64encode(record.key[:_KEEP_OF_KEY]).decode() if record.key is not None else None,
            "value_sha256": hashlib.sha256(record.value).hexdigest(),
            "value_length": len(record.value),
        }
        if len(record.value) <= MAX_FRAME_SIZE:
            entry["value"] = base64.b64encode(record.value).decode()
        else:
            # Too large to keep whole in one record: keep its digest, its length and its beginning.
            entry["value_prefix"] = base64.b64encode(record.value[:_KEEP_OF_OVERSIZED]).decode()
        await self.transport.send(
            self.topic(self.quarantine_name), json.dumps(entry).encode(), key=record.topic.encode()
        )
        log.warning(
            "quarantined %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            error.reason,
            error,
        )


class Subscription(_Lifecycle):
    """Verified messages of some topics for one consumer group.

    Records fetched but not yet handled stay in this subscription, in order: a run that ends early (on a
    handler error, after ``limit``) leaves them for the next run, and nothing is skipped. Records of a
    partition that a Kafka rebalance moved to another member are dropped here: their new owner reads
    them from the last commit.
    """

    def __init__(self, node: Node, consumer: Consumer, group: str) -> None:
        self._node = node
        self._consumer = consumer
        self._group = group
        self._stopping = False
        self._pending: deque[Record] = deque()
        self.stats = SubscriptionStats()

    async def start(self) -> None:
        self._stopping = False
        await self._consumer.start()

    async def stop(self) -> None:
        self._stopping = True
        self._pending.clear()
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
    ) -> SubscriptionStats:
        """Hand each verified message to ``handler`` and commit it once the handler returned.

        Returns after ``limit`` deliveries in this run, after ``idle_timeout`` seconds without a record,
        or when the subscription is stopped. ``on_refused`` is told of each record quarantined. A handler
        exception ends the run with :class:`HandlerError`; that message is not committed, and the next
        run (or, after a restart, the next consumer of the group) gets it again.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        loop = asyncio.get_running_loop()
        last_seen = loop.time()
        delivered = 0
        while not self._stopping:
            if not self._pending:
                want = 500 if limit is None else min(500, limit - delivered)
                records = await self._consumer.fetch(timeout=poll, max_records=want)
                if not records:
                    if idle_timeout is not None and loop.time() - last_seen >= idle_timeout:
                        break
                    continue
                self._pending.extend(records)
                last_seen = loop.time()
            while self._pending and not self._stopping:
                record = self._pending[0]
                if not self._consumer.owns(record):
                    self._drop_partition(record)
                    continue
                handled = await self._handle(record, handler, on_refused, on_duplicate)
                self._pending.popleft()
                if handled:
                    delivered += 1
                    if limit is not None and delivered >= limit:
                        return self.stats
        return self.stats

    def _drop_partition(self, record: Record) -> None:
        kept = [r for r in self._pending if (r.topic, r.partition) != (record.topic, record.partition)]
        log.info(
            "partition %s[%d] moved to another member; %d fetched records left to it",
            record.topic,
            record.partition,
            len(self._pending) - len(kept),
        )
        self._pending = deque(kept)

    async def _commit(self, record: Record) -> None:
        if not await self._consumer.commit(record):
            log.info(
                "%s[%d]@%d handled but not committed: the partition moved; its new owner gets it again",
                record.topic,
                record.partition,
                record.offset,
            )

    async def _handle(
        self, record: Record, handler: Handler, on_refused: RefusalHook | None, on_duplicate: DuplicateHook | None
    ) -> bool:
        """Handle one record; True if it went to the handler, False if it was quarantined or a duplicate."""
        self.stats.received += 1
        node = self._node
        digest = hashlib.sha256(record.value).digest()
        envelope: Envelope | None = None
        try:
            verified = verify_frame(record.value, node.trust, node.registry)
            envelope = verified.envelope
            recipients = verified.envelope.recipients
            sealed_elsewhere = verified.envelope.sealed is not None and node.node_id is None
            if (recipients and node.node_id is not None and node.node_id not in recipients) or sealed_elsewhere:
                self.stats.not_addressed += 1
                await self._commit(record)
                return False
            # A message handled before is recognised first: read again much later (expired consumer offsets),
            # it is a duplicate to pass over, not a stale message to refuse.
            handled = node.replay_guard.digest_of(envelope.sender, envelope.message_id)
            if handled is not None and handled != digest:
                raise PolicyError(
                    f"message id {envelope.message_id} was already used for other bytes", reason="replayed"
                )
            if handled is None:
                node.freshness.check(envelope, node.clock.now())
                opened = open_verified(verified, node.registry, opener=node.opener)
                if isinstance(opened.message, ForwardedMessage):
                    node.open_forwarded(
                        opened.message, opened.envelope.sender, sealed=opened.envelope.sealed is not None
                    )
        except MessageError as exc:
            # The verified header, when there is one: the sender is then known and can be told.
            exc.envelope = envelope
            await self._node.quarantine(record, exc, self._group)
            self.stats.quarantined[exc.reason] += 1
            if on_refused is not None:
                await _maybe_await(on_refused(record, exc))
            await self._commit(record)
            return False
        if handled is not None:
            # The same bytes again (a resend, a redelivery, a replay): handled once already.
            self.stats.duplicates += 1
            if on_duplicate is not None:
                await _maybe_await(on_duplicate(record, envelope))
            await self._commit(record)
            return False
        delivery = Delivery(opened.envelope, opened.message, opened.raw, record)
        try:
            await _maybe_await(handler(delivery))
        except Exception as exc:
            self.stats.received -= 1  # it will be received again
            raise HandlerError(
                f"handler failed on {opened.envelope.message_type} {opened.envelope.message_id} "
                f"({record.topic}[{record.partition}]@{record.offset}); it was not committed: {exc!r}"
            ) from exc
        node.replay_guard.remember(opened.envelope, digest, node.clock.now())
        await self._commit(record)
        self.stats.delivered += 1
        return True
