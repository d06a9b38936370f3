"""``op7 topics create``: the shared topics, and an inbox and a quarantine per node, with their retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click

from broker.cli._click import POSITIVE_INT
from broker.cli._common import Env, command, global_options, new_group, pass_env
from broker.models import check_node_id
from broker.transport import make_transport
from broker.trust.directory import DirectoryTrust
from broker.wire.schemas import default_registry

__all__ = ["RETENTION", "topics"]

topics = new_group("topics", "Kafka topics")

#: Retention of each kind of topic: alerts matter for days, directed exchanges until answered and audited.
RETENTION = {
    "alerts": timedelta(days=7),
    "cases": timedelta(days=90),
    "requests": timedelta(days=90),
    "reports": timedelta(days=400),
    "receipts": timedelta(days=90),
    "inbox": timedelta(days=90),
    "quarantine": timedelta(days=400),
}


@command(topics, "create", "create the shared topics, and an inbox and quarantine per directory node")
@click.option("--node", multiple=True, metavar="NODE_ID", help="also for this node (repeatable)")
@click.option("--partitions", type=POSITIVE_INT, default=3, help="partitions of each topic (default 3)")
@click.option("--replication-factor", type=POSITIVE_INT, help="default: 3, or fewer brokers")
@click.option("--min-insync-replicas", type=POSITIVE_INT, help="default: the broker's")
@global_options
@pass_env
def topics_create(
    env: Env, node: tuple[str, ...], partitions: int, replication_factor: int | None, min_insync_replicas: int | None
) -> int:
    trust = env.home.trust()
    nodes = [check_node_id(n) for n in node]
    if isinstance(trust, DirectoryTrust) and trust.directory is not None:
        nodes += [n.node_id for n in trust.directory.nodes]
    prefix = env.topic_prefix
    registry = default_registry()
    names = [
        f"{prefix}.{topic}" for topic in sorted({registry.topic_of(t) for t in registry.message_types} | {"quarantine"})
    ]
    names.append(f"{prefix}.directory")
    for node_id in sorted(set(nodes)):
        names += [f"{prefix}.inbox.{node_id}", f"{prefix}.quarantine.{node_id}"]

    async def create() -> None:
        transport = make_transport(
            env.bootstrap,
            env.home.embedded_path,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
        async with transport:
            for name in names:
                kind = name.removeprefix(f"{prefix}.").split(".")[0]
                await transport.create_topic(
                    name,
                    partitions=1 if kind == "directory" else partitions,
                    compacted=kind == "directory",
                    retention=RETENTION.get(kind),
                )

    asyncio.run(create())
    for name in names:
        click.echo(name)
    return 0
