"""``op7 topics create``: the shared topics, and an inbox and a quarantine per node, with their retention."""

from __future__ import annotations

import asyncio

import click

from broker.cli._click import POSITIVE_INT
from broker.cli._common import Env, command, global_options, new_group, pass_env
from broker.models import check_node_id
from broker.node.topics import TopicLayout
from broker.trust.directory import DirectoryTrust

__all__ = ["topics"]

topics = new_group("topics", "Kafka topics")


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
    layout = TopicLayout(env.topic_prefix, partitions=partitions)
    specs = [layout.spec(t) for t in layout.shared] + [
        layout.spec(t) for n in sorted(set(nodes)) for t in layout.of_node(n)
    ]

    async def create() -> None:
        transport = env.settings.transport(
            env.home.embedded_path,
            clock=env.home.clock,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
        async with transport:
            for spec in specs:
                await transport.create_topic(
                    spec.name, partitions=spec.partitions, compacted=spec.compacted, retention=spec.retention
                )

    asyncio.run(create())
    for spec in specs:
        click.echo(spec.name)
    return 0
