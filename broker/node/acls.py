"""The Kafka ACLs a node needs on a cluster that enforces them, and no more (docs/OPERATIONS.md, "Kafka ACLs").

Derived from the :class:`~broker.node.topics.TopicLayout` and the consumer groups op7 reads in: a node reads the
shared topics, the directory, its own inbox and its own quarantine; it writes the shared topics, its quarantine and
any inbox (a prefixed ACL: nodes that join later have inboxes too; a write ACL gives no read); it reads in its own
group (its node id, the default of the listening commands) and in the throwaway groups of the directory follower
and the quarantine reader. Only a network authority writes the directory. Nodes create no topic: the operator does
(``op7 topics create``). Kafka lets Read and Write imply Describe; the prefixed inbox write so lets a node see that
other inboxes exist and how far they go (metadata, offsets), never their records.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from broker.errors import ConfigError
from broker.models import check_node_id
from broker.node.topics import DIRECTORY, INBOX, QUARANTINE, TopicLayout

__all__ = [
    "DIRECTORY_FOLLOWER_GROUPS",
    "QUARANTINE_READER_GROUPS",
    "AclBinding",
    "Operation",
    "PatternType",
    "ResourceType",
    "check_principal",
    "kafka_acls_commands",
    "node_bindings",
]

#: Prefixes of the throwaway consumer groups (a random suffix each run) of the directory follower
#: (broker.node.node) and of ``op7 quarantine`` (broker.cli.quarantine): nothing is committed in them.
DIRECTORY_FOLLOWER_GROUPS = "op7.directory-follower."
QUARANTINE_READER_GROUPS = "op7.quarantine-reader."


class ResourceType(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class PatternType(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "Read"
    WRITE = "Write"
    DESCRIBE = "Describe"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One allow rule: ``principal`` may ``operation`` on the resource, from any host."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation

    def as_json(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "permission": "Allow",
            "host": "*",
            "operation": self.operation.value,
            "resource_type": self.resource_type.value,
            "resource_name": self.resource_name,
            "pattern_type": self.pattern_type.value,
        }


def check_principal(principal: str) -> str:
    """``User:NAME``, checked (a certificate's CN, a SASL user name); :class:`ConfigError` otherwise."""
    if not re.fullmatch(r"User:[^\s,;*]{1,200}", principal):
        raise ConfigError(f"principal {principal!r}: expected User:NAME, e.g. User:FR.GN (no spaces, ',', ';', '*')")
    return principal


def node_bindings(
    layout: TopicLayout, node_id: str, principal: str | None = None, *, authority: bool = False
) -> list[AclBinding]:
    """What ``node_id`` (as ``principal``, default ``User:<node_id>``) needs; ``authority``: it also publishes the
    network directory. Sorted, without repeats."""
    node_id = check_node_id(node_id)
    who = check_principal(principal or f"User:{node_id}")
    shared = [t for t in layout.shared if t not in (DIRECTORY, QUARANTINE)]
    mine = [layout.inbox_of(node_id), layout.quarantine_of(node_id)]
    rules: list[tuple[ResourceType, str, PatternType, Operation]] = []
    for short in [*shared, DIRECTORY, *mine]:
        rules.append((ResourceType.TOPIC, layout.name(short), PatternType.LITERAL, Operation.READ))
    for short in [*shared, layout.quarantine_of(node_id), *([DIRECTORY] if authority else [])]:
        rules.append((ResourceType.TOPIC, layout.name(short), PatternType.LITERAL, Operation.WRITE))
    rules.append((ResourceType.TOPIC, layout.name(f"{INBOX}."), PatternType.PREFIXED, Operation.WRITE))
    # A node checks at start that every shared topic exists, the quarantine of readers without a node id too.
    rules.append((ResourceType.TOPIC, layout.name(QUARANTINE), PatternType.LITERAL, Operation.DESCRIBE))
    rules.append((ResourceType.GROUP, node_id, PatternType.LITERAL, Operation.READ))
    for prefix in (DIRECTORY_FOLLOWER_GROUPS, QUARANTINE_READER_GROUPS):
        rules.append((ResourceType.GROUP, prefix, PatternType.PREFIXED, Operation.READ))
    return sorted({AclBinding(who, *rule) for rule in rules})


def kafka_acls_commands(bindings: Iterable[AclBinding], bootstrap: str, command_config: str) -> list[str]:
    """The ``kafka-acls.sh --add`` command lines that create ``bindings``: one per principal, resource type, pattern
    type and set of operations (Kafka's tool adds each operation on each resource given)."""
    ops: dict[tuple[str, ResourceType, str, PatternType], set[Operation]] = {}
    for b in bindings:
        ops.setdefault((b.principal, b.resource_type, b.resource_name, b.pattern_type), set()).add(b.operation)
    lines: dict[tuple[str, ResourceType, PatternType, tuple[Operation, ...]], list[str]] = {}
    for (principal, kind, name, pattern), allowed in ops.items():
        lines.setdefault((principal, kind, pattern, tuple(sorted(allowed))), []).append(name)
    commands = []
    for (principal, kind, pattern, operations), names in sorted(lines.items()):
        words: list[str] = ["kafka-acls.sh", "--bootstrap-server", bootstrap, "--command-config", command_config]
        words += ["--add", "--allow-principal", principal, "--resource-pattern-type", pattern.value]
        words += _each("--operation", [o.value for o in operations]) + _each(f"--{kind.value}", sorted(names))
        commands.append(shlex.join(words))
    return commands


def _each(option: str, values: Sequence[str]) -> list[str]:
    return [word for value in values for word in (option, value)]
