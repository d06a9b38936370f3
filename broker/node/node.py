"""A national node: a thin facade over signing and sending, subscriptions, forwarding and the directory it follows.

As aiokafka's producer delegates to its accumulator and sender, :class:`Node` delegates: topic names, specs and
record keys to :class:`~broker.node.topics.TopicLayout`, the receive path to :mod:`broker.node.receive` and
:class:`~broker.node.subscription.Subscription`, forwarding to :mod:`broker.node.forwarding`. It holds what they
share: the transport, the trust source, the identity and keys, the replay store, and the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from broker.clock import Clock, default_clock
from broker.errors import ConfigError, MessageError, TransportError
from broker.lifecycle import Lifecycle
from broker.models import Authority, Envelope, ForwardedMessage, Handling, Message, Request
from broker.models.directory import SignedDirectory
from broker.node.courier import Courier
from broker.node.forwarding import ForwardCheck, forwarded_message
from broker.node.metrics import set_outbox_pending
from broker.node.outbox import Outbox, Outgoing
from broker.node.outgoing import (
    check_answer,
    check_audience,
    check_recipients,
    check_signer,
    must_seal,
    seal_keys,
)
from broker.node.quarantine import quarantine_entry
from broker.node.receive_state import Keep
from broker.node.sequence import SenderSequence
from broker.node.subscription import Delivery, Handler, Subscription, SubscriptionStats
from broker.node.topics import ALERTS, DIRECTORY, QUARANTINE, TopicLayout, partition_key
from broker.transport.base import Record, Sent, Transport
from broker.trust.directory import DirectoryDocument, DirectoryTrust, keep_directory
from broker.trust.replay import Freshness, ReplayGuard
from broker.wire.codec import read_header
from broker.wire.envelope import NodeIdentity, Numbering, Opened, build, build_batch, parse_frame, verify_frame
from broker.wire.schemas import SchemaRegistry, default_registry
from broker.wire.sealing import Opener
from broker.wire.trust import Trust

# Delivery, Handler, Subscription and SubscriptionStats belong to the subscription module; named here too because
# they are what a node's subscribe() gives its user.
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
#: What the directory follower says: commands show it (they report record refusals themselves, not these).
directory_log = logging.getLogger("op7.directory")

#: Kept for programs that name the alert and quarantine topics through these constants.
TOPIC_ALERTS = ALERTS
TOPIC_QUARANTINE = QUARANTINE


@dataclass(frozen=True)
class Published:
    """A message as sent: its header, where it landed (one copy per recipient inbox), the exact signed bytes."""

    envelope: Envelope
    sent: Sent
    raw: bytes
    copies: tuple[Sent, ...] = ()


class Node(Lifecycle):
    """One op7 node on one transport. ``identity`` is needed to publish, not to subscribe.

    The node starts and stops its transport unless ``manage_transport`` is False (several nodes sharing
    one transport, as in the embedded demo). With a ``sequence``, every frame it signs carries the next of its
    sequence numbers (docs/PROTOCOL.md section 3); without, its frames are unnumbered.
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
        outbox: Outbox | None = None,
        delivery_timeout: float = 30.0,
        sequence: SenderSequence | None = None,
    ) -> None:
        self.transport = transport
        #: Every reading of the time by this node, its subscriptions and its exchange agent.
        self.clock: Clock = clock or default_clock()
        self._manage_transport = manage_transport
        self.topic_prefix = topic_prefix
        self.trust = trust
        # Every header this node signs names its network (its directory's): frames of an exercise network signed
        # with the same key are then refused here, and ours there (docs/PROTOCOL.md section 3).
        if identity is not None and trust.network is not None and identity.network != trust.network:
            if identity.network is not None:
                raise ConfigError(f"{identity.node_id} signs for network {identity.network!r}, not {trust.network!r}")
            identity = dataclasses.replace(identity, network=trust.network)
        self.identity = identity
        if sequence is not None and (identity is None or sequence.node_id != identity.node_id):
            signer = identity.node_id if identity else "nobody (no signing key)"
            raise ConfigError(
                f"the sequence numbers of {sequence.node_id} are for its frames, and this node signs as {signer}"
            )
        self.sequence = sequence
        self.opener = opener
        #: This node's id, when it has one: messages addressed to other nodes are passed over.
        self.node_id = identity.node_id if identity else (opener.node_id if opener else None)
        self.registry = registry or default_registry()
        #: Every topic name, spec and record key of this node's network.
        self.topics = TopicLayout(topic_prefix, self.registry)
        self.freshness = freshness or Freshness()
        self.replay_guard = replay_guard or ReplayGuard()
        self._follow = follow_directory and isinstance(trust, DirectoryTrust)
        self._directory_dir = directory_dir
        self._follower: asyncio.Task[None] | None = None
        #: Seconds a node without any directory waits at start for the first one on the topic.
        self.directory_wait = 30.0
        self._directory_arrived = asyncio.Event()
        self._created: set[str] = set()
        #: Every frame this node sends is recorded here first and sent again with the same bytes until acknowledged
        #: (in memory unless given one: a restart then forgets what was pending).
        self.outbox = outbox or Outbox()
        self.courier = Courier(transport, self.outbox, self.clock, prepare=self._prepare, timeout=delivery_timeout)
        self.courier.on_change = set_outbox_pending

    async def start(self) -> None:
        if self._manage_transport:
            await self.transport.start()
        own = self.topics.of_node(self.node_id) if self.node_id else [self.quarantine_name]
        try:
            for topic in [*self.topics.shared, *own]:
                await self._ensure_topic(topic)
        except BaseException:
            # A node that does not start leaves no producer or connection behind.
            if self._manage_transport:
                await self.transport.stop()
            raise
        self.courier.start()
        if self._follow:
            # In the background: nothing on the message path waits for the directory topic...
            self._follower = asyncio.create_task(self._follow_directory(), name="op7-directory-follower")
            # ...except a node that holds no directory at all yet, which could verify nothing.
            trust = self.trust
            assert isinstance(trust, DirectoryTrust)
            if trust.directory is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.directory_wait):  # not wait_for: see broker.transport.embedded
                        await self._directory_arrived.wait()
            if trust.directory is None:
                directory_log.warning(
                    "no network directory after %.0f s: every message will be refused until one arrives",
                    self.directory_wait,
                )

    async def stop(self) -> None:
        await self.courier.stop()
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
        return await self.transport.send(self.topic(DIRECTORY), DirectoryDocument(signed).to_bytes(), key=key)

    async def _follow_directory(self) -> None:
        trust = self.trust
        assert isinstance(trust, DirectoryTrust)
        # A fresh group each time: the compacted topic is read whole, and nothing is committed.
        group = f"op7.directory-follower.{uuid.uuid4().hex}"
        consumer = self.transport.consumer([self.topic(DIRECTORY)], group, from_beginning=True)
        try:
            async with consumer:
                while True:
                    for record in await consumer.fetch(timeout=1.0):
                        await self._offer_directory(trust, record)
        except TransportError as exc:
            directory_log.error(
                "directory follower stopped: %s; the directory held (version %d) stays in force", exc, trust.version
            )

    def _take_directory(self, trust: DirectoryTrust, value: bytes) -> bool:
        """Decode, verify and keep one record's version (in a worker thread: signature checks take time)."""
        took = trust.offer(DirectoryDocument.from_bytes(value).signed, self.clock.now())
        if took and self._directory_dir is not None:
            keep_directory(self._directory_dir, trust)
        return took

    async def _offer_directory(self, trust: DirectoryTrust, record: Record) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if not record.value:  # a tombstone (its null value read as empty): it erases a version, never the one held
            directory_log.warning("ignored an empty record (a tombstone) from %s, key %r", where, record.key)
            return
        try:
            # Off the event loop: a record padded to cost many checks must not hold up delivery meanwhile.
            took = await asyncio.to_thread(self._take_directory, trust, record.value)
        except (MessageError, ConfigError) as exc:
            directory_log.warning("refused a directory from %s: %s", where, exc)
            return
        except Exception as exc:  # whatever a record holds, the follower goes on to the next
            directory_log.error("refused a directory from %s: internal error: %r", where, exc)
            return
        if took:
            self._directory_arrived.set()

    @property
    def follows_directory(self) -> bool:
        """Whether this node reads new directory versions from the directory topic while it runs."""
        return self._follow

    def topic(self, name: str) -> str:
        """Full topic name: ``<prefix>.<name>``, e.g. ``op7.alerts``."""
        return self.topics.name(name)

    @staticmethod
    def inbox_of(node_id: str) -> str:
        """The inbox topic (without prefix) of a node: directed messages to it go there."""
        return TopicLayout.inbox_of(node_id)

    @property
    def quarantine_name(self) -> str:
        """This node's quarantine topic (without prefix)."""
        return TopicLayout.quarantine_of(self.node_id)

    @property
    def created_topics(self) -> list[str]:
        """Full names of the topics this node created or checked, for tools that clean up after themselves."""
        return sorted(self.topic(name) for name in self._created)

    async def _prepare(self, topic: str) -> None:
        """Make sure the full-named ``topic`` exists before a copy is sent to it (a node created it, or this one)."""
        await self._ensure_topic(topic.removeprefix(f"{self.topic_prefix}."))

    async def _ensure_topic(self, name: str) -> None:
        if name not in self._created:
            spec = self.topics.spec(name)
            await self.transport.create_topic(
                spec.name, partitions=spec.partitions, compacted=spec.compacted, retention=spec.retention
            )
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
        message_id: str | None = None,
    ) -> Published:
        """Sign and send ``message``; returns once the transport holds it durably.

        A request without explicit ``recipients`` is addressed to its ``requested_authority``. With
        ``seal``, the payload is encrypted for the recipients' keys from the trust source; a directed message
        under TLP:RED or AMBER+STRICT is always sealed. ``before_send`` sees the signed frame before it leaves
        (to record it first: a crash then loses nothing). ``message_id`` is the header's id when the caller derives
        it (an adapter, from the record it translated); a new one otherwise. What receivers would refuse, or an
        unknown recipient, is refused first (:mod:`broker.node.outgoing`).
        """
        if not recipients and isinstance(message, Request):
            recipients = (message.requested_authority.node,)
        now = now or self.clock.now()
        identity = self._signer(message, now)
        check_recipients(self.trust, recipients)
        check_answer(message, recipients)
        check_audience(message, handling or message.handling, recipients)
        seal_to = seal_keys(self.trust, message, recipients, handling or message.handling, seal=seal, at=now)
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
            message_id=message_id,
            sequence=self.numbering,
        )
        if before_send is not None:
            before_send(envelope, frame)
        # Directed messages go to each recipient's inbox (the same signed bytes); others to their type's topic.
        names = self.topics.destinations(message.avro_name, recipients)
        copies = await self.courier.deliver(self._copies(envelope, frame, names))
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

    @property
    def numbering(self) -> Numbering | None:
        """What draws the sequence numbers of the frames this node signs, as each is built; None: unnumbered."""
        return self.sequence.next if self.sequence is not None else None

    def _copies(self, envelope: Envelope, frame: bytes, names: Sequence[str]) -> list[Outgoing]:
        key, queued = partition_key(envelope), self.clock.now()
        return [
            Outgoing(envelope.message_id, self.topic(n), key, frame, envelope.message_type, envelope.case_id, queued)
            for n in names
        ]

    def _signer(self, message: Message, at: datetime) -> NodeIdentity:
        """This node's identity, to sign ``message`` at ``at``; ``ConfigError`` for what receivers would refuse."""
        if self.identity is None:
            raise ConfigError("this node has no signing key: it can subscribe but not publish")
        if message.issuer.node != self.identity.node_id:
            raise ConfigError(
                f"the {message.avro_name} says {message.issuer.node} issued it; only {message.issuer.node} can "
                f"sign it, not {self.identity.node_id} (receivers would refuse it as issuer-mismatch)"
            )
        check_signer(self.trust, self.identity, message.avro_name, at)
        clock_now = self.clock.now()
        if message.sent_at - clock_now > self.freshness.max_skew:
            raise ConfigError(
                f"the {message.avro_name} is dated {message.sent_at:%Y-%m-%dT%H:%M:%SZ}, more than "
                f"{self.freshness.max_skew} after this node's clock ({clock_now:%Y-%m-%dT%H:%M:%SZ}): "
                "a message is not sent from the future"
            )
        return self.identity

    async def send_again(self, frame: bytes) -> list[Sent]:
        """Send a frame this node signed earlier, unchanged, where :meth:`publish` sent it (its type's topic, or its
        recipients' inboxes): receivers that had it already recognise the same bytes as a copy."""
        verified = verify_frame(frame, self.trust, self.registry)
        envelope = verified.envelope
        if self.identity is None or envelope.sender != self.identity.node_id:
            raise ConfigError(f"the frame {envelope.message_id} was signed by {envelope.sender}, not by this node")
        names = self.topics.destinations(envelope.message_type, tuple(envelope.recipients))
        return await self.courier.deliver(self._copies(envelope, frame, names))

    async def send_frame(self, frame: bytes, recipients: tuple[str, ...], *, key: bytes) -> list[Sent]:
        """Send an already signed frame (a kept receipt, a resend) to the recipients' inboxes, unchanged."""
        header = read_header(parse_frame(frame).header, self.registry)
        queued = self.clock.now()
        copies = [
            Outgoing(
                str(header["message_id"]),
                self.topic(self.inbox_of(r)),
                key,
                frame,
                str(header["message_type"]),
                None if header["case_id"] is None else str(header["case_id"]),
                queued,
            )
            for r in recipients
        ]
        return await self.courier.deliver(copies)

    async def publish_batch(
        self, messages: Sequence[Message], *, recipients: tuple[str, ...] = (), now: datetime | None = None
    ) -> list[Published]:
        """Sign several messages with one signature (scheme 2) and send them; each still verifies alone."""
        now = now or self.clock.now()
        signers = [self._signer(m, now) for m in messages]
        if not signers:
            return []
        check_recipients(self.trust, recipients)
        for message in messages:
            check_answer(message, recipients)
            check_audience(message, message.handling, recipients)
            if must_seal(message.handling, recipients):
                # One signature over several payloads in clear: such a message goes alone, sealed, by publish().
                raise ConfigError(
                    f"a batch is not sealed, and the {message.avro_name} to {', '.join(recipients)} is "
                    f"TLP:{message.handling.tlp.value}: publish it alone, to be sealed to its recipients"
                )
        built = build_batch(
            signers[0], messages, recipients=recipients, now=now, registry=self.registry, sequence=self.numbering
        )
        copies: list[Outgoing] = []
        for env, frame in built:
            copies += self._copies(env, frame, self.topics.destinations(env.message_type, recipients))
        delivered = iter(await self.courier.deliver(copies))
        sent = [[next(delivered) for _ in self.topics.destinations(env.message_type, recipients)] for env, _ in built]
        return [Published(env, s[0], frame, tuple(s)) for (env, frame), s in zip(built, sent, strict=True)]

    async def forward(
        self,
        delivery: Delivery,
        to: tuple[str, ...],
        issuer: Authority,
        *,
        permission: Delivery | None = None,
        note: str | None = None,
    ) -> Published:
        """Pass a received message on to other nodes, intact, if its handling code allows it
        (:func:`~broker.node.forwarding.forwarded_message`); a sealed original is forwarded sealed."""
        if self.identity is None:
            raise ConfigError("this node has no signing key: it cannot forward")
        forwarded = forwarded_message(
            delivery,
            self.identity.node_id,
            to,
            issuer,
            now=self.clock.now(),
            opener=self.opener,
            permission=permission,
            note=note,
        )
        return await self.publish(forwarded, recipients=to, seal=forwarded.original_content_key is not None)

    def open_forwarded(self, forwarded: ForwardedMessage, forwarder: str, *, sealed: bool = True) -> Opened:
        """Check a forwarded message as this node receives it, and return its original opened
        (:class:`~broker.node.forwarding.ForwardCheck`); ``bad-forward`` when it does not hold."""
        check = ForwardCheck(self.trust, self.registry, self.freshness, self.node_id)
        return check.open(forwarded, forwarder, self.clock.now(), sealed=sealed)

    def prune_replay_store(self, now: datetime) -> int:
        """Forget handled message ids older than twice the freshness window (and its skew): a copy read now is
        refused as stale after one window, and a held copy (judged fresh when it was first read) is released or
        quarantined within one more, so the store stays bounded and no copy is handed over twice."""
        return self.replay_guard.prune(now - 2 * self.freshness.max_age - self.freshness.max_skew)

    def subscribe(self, group: str, topics: Sequence[str] = (ALERTS,), *, from_beginning: bool = True) -> Subscription:
        """A consumer-group subscription; ``group`` is usually the subscribing node's id."""
        consumer = self.transport.consumer([self.topic(t) for t in topics], group, from_beginning=from_beginning)
        return Subscription(self, consumer, group, [self.topic(t) for t in topics])

    async def quarantine(self, record: Record, error: MessageError, group: str, keep: Keep | None = None) -> None:
        """Keep a refused record with its reason (its value too, unless ``keep`` says otherwise: a repeat, a source
        over its budget); raises if it cannot be kept (so it is not committed)."""
        await (await self.quarantine_soon(record, error, group, keep))

    async def quarantine_soon(
        self, record: Record, error: MessageError, group: str, keep: Keep | None = None
    ) -> Awaitable[Sent]:
        """:meth:`quarantine` without waiting for the entry to be durable: the caller awaits what is returned before
        it commits the record (a flood of refusals is not made to wait one round trip each)."""
        entry = quarantine_entry(record, error, group, self.clock.now(), keep)
        sending = await self.transport.send_soon(self.topic(self.quarantine_name), entry, key=record.topic.encode())
        log.warning("quarantined %s[%d]@%d: %s: %s", record.topic, record.partition, record.offset, error.reason, error)
        return sending
