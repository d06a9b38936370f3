"""The topic layout of a network: every topic's name, its spec, and the one partition-key rule.

One :class:`TopicLayout` per topic prefix (``op7`` on a production network, another for an exercise sharing the
cluster). Everything that names a topic, creates one or keys a record goes through it, so that the CLI, the node,
the exchange agent and the operations tools agree (docs/PROTOCOL.md §1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from broker.errors import ConfigError
from broker.models import Envelope, check_node_id
from broker.wire.schemas import SchemaRegistry, default_registry

__all__ = ["TopicLayout", "TopicSpec", "partition_key", "record_key"]

ALERTS = "alerts"
DIRECTORY = "directory"
INBOX = "inbox"
QUARANTINE = "quarantine"
#: The auditor's signed checkpoints of its evidence log (one partition: one order), kept as long as the evidence.
CHECKPOINTS = "audit.checkpoints"

#: Retention of each kind of topic: alerts matter for days, directed exchanges until answered and audited, reports
#: and refusals for a reporting year and more.
RETENTION = {
    "alerts": timedelta(days=7),
    "cases": timedelta(days=90),
    "requests": timedelta(days=90),
    "reports": timedelta(days=400),
    "receipts": timedelta(days=90),
    INBOX: timedelta(days=90),
    QUARANTINE: timedelta(days=400),
    # Anyone holding the auditor to a checkpoint must find it for as long as the evidence may be asked for.
    "audit": timedelta(days=3650),
}


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created."""

    name: str
    partitions: int
    compacted: bool = False
    retention: timedelta | None = None


def record_key(conversation_id: str | None, case_id: str | None, message_id: str) -> bytes:
    """The record key of a message: its conversation, else its case, else itself. Messages with one key share a
    partition and so stay in order."""
    return (conversation_id or case_id or message_id).encode()


def partition_key(envelope: Envelope) -> bytes:
    """:func:`record_key` of a message's header."""
    return record_key(envelope.conversation_id, envelope.case_id, envelope.message_id)


class TopicLayout:
    """Names and specs of the topics under one prefix."""

    def __init__(self, prefix: str = "op7", registry: SchemaRegistry | None = None, *, partitions: int = 3) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", prefix):
            raise ConfigError(f"topic prefix {prefix!r}: use letters, digits, '.', '_' and '-' only")
        self.prefix = prefix
        self.registry = registry or default_registry()
        self.partitions = partitions

    def name(self, short: str) -> str:
        """Full topic name: ``<prefix>.<short>``, e.g. ``op7.alerts``."""
        return f"{self.prefix}.{short}"

    def short(self, full: str) -> str:
        """The name without the prefix."""
        return full.removeprefix(f"{self.prefix}.")

    @staticmethod
    def inbox_of(node_id: str) -> str:
        """A node's inbox (short name): directed messages to it go there."""
        return f"{INBOX}.{check_node_id(node_id)}"

    @staticmethod
    def quarantine_of(node_id: str | None) -> str:
        """A node's quarantine (short name); ``quarantine`` for a reader without a node id."""
        return f"{QUARANTINE}.{check_node_id(node_id)}" if node_id else QUARANTINE

    @property
    def alerts(self) -> str:
        return ALERTS

    @property
    def directory(self) -> str:
        return DIRECTORY

    @property
    def checkpoints(self) -> str:
        """The auditor's checkpoint topic (short name): not among the shared topics, which nodes create and read."""
        return CHECKPOINTS

    def of_type(self, message_type: str) -> str:
        """The shared topic (short name) of a message type, from its schema's ``op7.topic``."""
        return self.registry.topic_of(message_type)

    def destinations(self, message_type: str, recipients: Iterable[str]) -> list[str]:
        """Where a message goes (short names): each recipient's inbox, or, without recipients, its type's topic."""
        return [self.inbox_of(r) for r in recipients] or [self.of_type(message_type)]

    @property
    def shared(self) -> list[str]:
        """The topics every node of the network reads or writes (short names), the directory last."""
        kinds = {self.registry.topic_of(t) for t in self.registry.message_types}
        return [*sorted(kinds | {QUARANTINE}), DIRECTORY]

    def of_node(self, node_id: str) -> list[str]:
        """A node's own topics (short names): its inbox and its quarantine."""
        return [self.inbox_of(node_id), self.quarantine_of(node_id)]

    def spec(self, short: str) -> TopicSpec:
        """How to create a topic: the directory compacted in one partition (every version kept, in order), the
        others with the retention of their kind."""
        kind = short.split(".")[0]
        if kind == DIRECTORY:
            return TopicSpec(self.name(short), partitions=1, compacted=True)
        if short == CHECKPOINTS:
            return TopicSpec(self.name(short), partitions=1, retention=RETENTION["audit"])
        return TopicSpec(self.name(short), partitions=self.partitions, retention=RETENTION.get(kind))
