"""``op7 topics create``: the shared topics, and an inbox and a quarantine per node, with their retention;
``op7 topics acls``: the Kafka ACLs a node needs on a cluster that enforces them."""

from __future__ import annotations

import asyncio

import click

from broker.cli._click import POSITIVE_INT, argument
from broker.cli._common import Env, command, echo_json, global_options, new_group, pass_env
from broker.models import check_node_id
from broker.node.acls import kafka_acls_commands, node_bindings
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


@command(topics, "acls", "print the Kafka ACLs a node needs (read its inbox only, write but never read other inboxes)")
@argument("node_id", "the node (its inbox, quarantine and consumer group)", metavar="NODE_ID")
@click.option("--principal", metavar="User:NAME", help="its Kafka principal (default User:NODE_ID: a certificate CN)")
@click.option("--authority", is_flag=True, help="it also publishes the network directory (a network authority)")
@click.option(
    "--format",
    "form",
    type=click.Choice(["kafka-acls", "json"]),
    default="kafka-acls",
    show_default=True,
    help="kafka-acls: the kafka-acls.sh commands an operator runs; json: one object per binding",
)
@click.option(
    "--command-config",
    metavar="FILE",
    default="admin.properties",
    show_default=True,
    help="the admin's Kafka client config, in the kafka-acls.sh commands",
)
@global_options
@pass_env
def topics_acls(env: Env, node_id: str, principal: str | None, authority: bool, form: str, command_config: str) -> int:
    bindings = node_bindings(TopicLayout(env.topic_prefix), node_id, principal, authority=authority)
    if form == "json":
        echo_json([b.as_json() for b in bindings], indent=2)
        return 0
    for line in kafka_acls_commands(bindings, env.bootstrap or "HOST:PORT", command_config):
        click.echo(line)
    return 0
