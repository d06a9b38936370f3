"""The receive path: what a node does with a record, one named stage after another (docs/PROTOCOL.md §4.4).

Each stage is a plain function that refuses with a :class:`~broker.errors.MessageError` carrying its reason, or
says what becomes of the record. :func:`receive` runs them in the order the protocol states; a subscription then
hands the message over, or quarantines the record with the reason.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from broker.errors import FrameError, MessageError, PolicyError, SchemaError
from broker.models import Envelope, ForwardedMessage
from broker.node.topics import TopicLayout
from broker.trust.replay import Freshness, ReplayGuard
from broker.wire.envelope import Opened, Verified, check_sender, open_verified, verify_signed
from broker.wire.schemas import SchemaRegistry
from broker.wire.sealing import Opener
from broker.wire.trust import Trust

if TYPE_CHECKING:
    from broker.node.node import Node

__all__ = [
    "KEY_NOT_VALID",
    "Outcome",
    "Received",
    "authorise",
    "check_forwarding",
    "check_fresh",
    "check_record",
    "check_topic",
    "is_addressed",
    "open_and_decode",
    "receive",
    "recognise_duplicate",
    "verify",
]


class Outcome(enum.Enum):
    """What becomes of a record that no stage refused."""

    DELIVER = "deliver"
    #: The same bytes as a message already handled: acknowledged again, not handed over again.
    DUPLICATE = "duplicate"
    #: A directed message for other nodes on a shared topic: passed over without being opened.
    NOT_ADDRESSED = "not-addressed"


@dataclass
class Received:
    """A record on its way through the stages: what each stage learnt of it."""

    value: bytes
    digest: bytes
    #: The full name of the topic the record was read from.
    topic: str
    verified: Verified | None = None
    opened: Opened | None = None
    #: For a frame held until the directory knew its sender (§4.4): when it was first read, by the receiver's clock.
    #: Its freshness is judged then, so that the directory catching up does not make it stale.
    received_at: datetime | None = None

    @property
    def envelope(self) -> Envelope | None:
        """The verified header, once there is one (the sender is then known and can be told of a refusal)."""
        return self.verified.envelope if self.verified is not None else None


def check_record(value: bytes) -> None:
    """``empty-record`` for a record without a value: a Kafka tombstone (null value, read as empty bytes) or an
    empty write; no frame is that short, and it is named apart from other truncated input."""
    if not value:
        raise FrameError(
            "an empty record (a Kafka tombstone or an empty value): not an op7 frame", reason="empty-record"
        )


#: Refusals of a key that was not valid when it signed: its signature proves nothing of who holds it, so the sender is
#: not believed (the refusal counts against the partition, and no one is told).
KEY_NOT_VALID = frozenset({"key-not-yet-valid", "key-expired", "key-revoked"})


def verify(value: bytes, trust: Trust, registry: SchemaRegistry) -> Verified:
    """Parse the frame, check the signature over the bytes as received, decode the header."""
    return verify_signed(value, trust, registry)


def authorise(received: Received, verified: Verified, trust: Trust) -> None:
    """Ask the trust source whether the header names its network, the key was valid when it signed and the sender
    may send this type (:func:`check_sender`). The frame is the sender's from here, refused or not (§6: its budget,
    and a report to it), unless the key was not valid."""
    try:
        check_sender(verified, trust)
    except MessageError as exc:
        if exc.reason not in KEY_NOT_VALID:
            received.verified = verified
        raise
    received.verified = verified


def check_topic(envelope: Envelope, topic: str, layout: TopicLayout) -> None:
    """``wrong-topic`` for a message read from a topic its sender would not have sent it to: a directed message
    anywhere but the inbox of one of its recipients, a broadcast anywhere but its type's topic (§4.4).

    A type this node does not know is left to decoding, which refuses it as ``unknown-type``.
    """
    try:
        expected = layout.destinations(envelope.message_type, envelope.recipients)
    except SchemaError:
        return
    if layout.short(topic) not in expected:
        to = f"to {', '.join(envelope.recipients)}" if envelope.recipients else "without recipients"
        where = " or ".join(layout.name(name) for name in expected)
        raise PolicyError(f"a {envelope.message_type} {to} travels on {where}, not on {topic}", reason="wrong-topic")


def is_addressed(envelope: Envelope, me: str | None) -> bool:
    """Whether this reader is meant to open the message: broadcast, or addressed to it; a sealed message only by a
    reader with a node id."""
    if envelope.recipients and me is not None and me not in envelope.recipients:
        return False
    return not (envelope.sealed is not None and me is None)


def recognise_duplicate(envelope: Envelope, digest: bytes, replay: ReplayGuard) -> bool:
    """True for the same bytes as a message handled before; ``replayed`` for other bytes under a used id.

    Before freshness: read again much later (expired consumer offsets), a handled message is a duplicate to pass
    over, not a stale message to refuse.
    """
    handled = replay.digest_of(envelope.sender, envelope.message_id)
    if handled is not None and handled != digest:
        raise PolicyError(f"message id {envelope.message_id} was already used for other bytes", reason="replayed")
    return handled is not None


def check_fresh(envelope: Envelope, freshness: Freshness, now: datetime) -> None:
    """``stale`` or ``from-the-future`` by the receiver's clock at the time it handles the record."""
    freshness.check(envelope, now)


def open_and_decode(verified: Verified, registry: SchemaRegistry, opener: Opener | None) -> Opened:
    """Open a sealed payload, decode it with its writer schema, check the rules beyond Avro and that the header
    agrees with the payload."""
    return open_verified(verified, registry, opener=opener)


def check_forwarding(opened: Opened, node: Node) -> None:
    """For a forwarded message: the original (and permission) verified, fresh and allowed to reach this node."""
    if isinstance(opened.message, ForwardedMessage):
        node.open_forwarded(opened.message, opened.envelope.sender, sealed=opened.envelope.sealed is not None)


def receive(node: Node, received: Received) -> Outcome:
    """Run every stage on ``received`` in protocol order; raises the first refusal."""
    check_record(received.value)
    verified = verify(received.value, node.trust, node.registry)
    authorise(received, verified, node.trust)
    envelope = verified.envelope
    check_topic(envelope, received.topic, node.topics)
    if not is_addressed(envelope, node.node_id):
        return Outcome.NOT_ADDRESSED
    if recognise_duplicate(envelope, received.digest, node.replay_guard):
        return Outcome.DUPLICATE
    check_fresh(envelope, node.freshness, received.received_at or node.clock.now())
    received.opened = open_and_decode(verified, node.registry, node.opener)
    check_forwarding(received.opened, node)
    return Outcome.DELIVER


def received(value: bytes, topic: str) -> Received:
    """A record value read from ``topic`` (its full name), about to go through the stages; an empty one (a Kafka
    tombstone, whose null value the transport hands over as empty bytes) is refused as ``empty-record``."""
    return Received(value, hashlib.sha256(value).digest(), topic)
