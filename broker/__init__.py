"""op7: signed Avro messages over Apache Kafka for law-enforcement cooperation against kidnapping.

The public API is what ``__all__`` lists, plus the shared model in :mod:`broker.models`; every other module is
internal and may change. The data path reads from the folders::

    models/     the shared model (pydantic, mirroring the Avro schemas)
    wire/       model <-> signed bytes: schemas, codec, envelope, signing, sealing
    trust/      who may send what: trust store, network directory, handling rules, freshness and replay
    transport/  one interface: Kafka, and an embedded single-machine transport
    node/       the node: publishing, subscriptions, forwarding, directed exchanges
    cli/        the ``op7`` command

A program embedding op7::

    from broker import EmbeddedTransport, Node, NodeIdentity, SigningKey, TrustStore

    key = SigningKey.generate()
    async with Node(EmbeddedTransport(), TrustStore({"FR.GN": [key.public]}), NodeIdentity("FR.GN", key)) as node:
        await node.publish(alert)
"""

from __future__ import annotations

from importlib import metadata

from broker.clock import Clock, ManualClock, SystemClock, default_clock, set_default_clock
from broker.errors import (
    ConfigError,
    DecodeError,
    DecryptionError,
    FrameError,
    HandlerError,
    HandlingRuleError,
    InputError,
    MessageError,
    Op7Error,
    PolicyError,
    SchemaError,
    TransportError,
    VerificationError,
)
from broker.node.deadlines import DeadlinePolicy, ResendPolicy
from broker.node.exchange import ExchangeAgent, ExchangeEvent
from broker.node.exchange_store import ExchangeState, ExchangeStore
from broker.node.node import Node, Published
from broker.node.subscription import Delivery, Handler, Subscription, SubscriptionStats
from broker.node.topics import TopicLayout
from broker.transport import EmbeddedTransport, KafkaSettings, KafkaTransport, Record, Sent, Transport, make_transport
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.replay import Freshness, ReplayGuard
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.envelope import NodeIdentity, Opened, Verified, open_frame, verify_frame
from broker.wire.sealing import Opener
from broker.wire.signing import EncryptionKey, SealPublicKey, SigningKey, VerifyKey
from broker.wire.trust import Trust

try:
    __version__ = metadata.version("op7-exchange")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Clock",
    "ConfigError",
    "DeadlinePolicy",
    "DecodeError",
    "DecryptionError",
    "Delivery",
    "DirectoryAnchor",
    "DirectoryTrust",
    "EmbeddedTransport",
    "EncryptionKey",
    "ExchangeAgent",
    "ExchangeEvent",
    "ExchangeState",
    "ExchangeStore",
    "FrameError",
    "Freshness",
    "Handler",
    "HandlerError",
    "HandlingRuleError",
    "InputError",
    "KafkaSettings",
    "KafkaTransport",
    "ManualClock",
    "MessageError",
    "Node",
    "NodeIdentity",
    "Op7Error",
    "Opened",
    "Opener",
    "PolicyError",
    "PublicKeyCard",
    "Published",
    "Record",
    "ReplayGuard",
    "ResendPolicy",
    "SchemaError",
    "SealPublicKey",
    "Sent",
    "SigningKey",
    "Subscription",
    "SubscriptionStats",
    "SystemClock",
    "TopicLayout",
    "Transport",
    "TransportError",
    "Trust",
    "TrustStore",
    "Verified",
    "VerificationError",
    "VerifyKey",
    "__version__",
    "default_clock",
    "make_transport",
    "open_frame",
    "set_default_clock",
    "verify_frame",
]
