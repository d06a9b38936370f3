"""``op7 quarantine``: the records a node refused, with the reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import click

from broker.cli._click import POSITIVE_INT, argument
from broker.cli._common import Env, command, echo_json, global_options, new_group, pass_env, show_table, table
from broker.cli._common import transport as make_transport
from broker.errors import ConfigError
from broker.models import check_node_id
from broker.node.topics import TopicLayout

__all__ = ["quarantine"]

quarantine = new_group("quarantine", "records this node refused")

_AS = "whose quarantine (default: the shared one)"


def _topic(env: Env, as_node: str | None) -> str:
    node_id = check_node_id(as_node) if as_node else None
    layout = TopicLayout(env.topic_prefix)
    return layout.name(layout.quarantine_of(node_id))


async def _read(env: Env, topic: str) -> list[dict[str, Any]]:
    """Every entry of the quarantine topic, read to its end (two empty fetches)."""
    transport = make_transport(env)
    entries: list[dict[str, Any]] = []
    async with transport:
        await transport.create_topic(topic)
        consumer = transport.consumer([topic], f"op7.quarantine-reader.{uuid.uuid4().hex}")
        async with consumer:
            idle = 0
            while idle < 2:
                records = await consumer.fetch(timeout=1.0)
                idle = 0 if records else idle + 1
                for r in records:
                    try:
                        entries.append(json.loads(r.value))
                    except ValueError:  # not written by op7: shown, not trusted
                        entries.append(
                            {
                                "reason": "not-an-op7-entry",
                                "detail": repr(r.value[:80]),
                                "topic": r.topic,
                                "partition": r.partition,
                                "offset": r.offset,
                                "quarantined_at": "?" * 19,
                            }
                        )
    return entries


@command(quarantine, "list", "every quarantined record, with its reason")
@click.option("--json", "as_json", is_flag=True, help="every entry, as a JSON list")
@click.option("--as", "as_node", metavar="NODE_ID", help=_AS)
@global_options
@pass_env
def quarantine_list(env: Env, as_json: bool, as_node: str | None) -> int:
    topic = _topic(env, as_node)
    entries = asyncio.run(_read(env, topic))
    if as_json:
        echo_json(entries, indent=2)
        return 0
    if not entries:
        click.echo(f"nothing in {topic}")
    rows = [
        (
            str(n),
            f"{e['quarantined_at'][:19]}Z",
            e["reason"],
            f"{e['topic']}[{e['partition']}]@{e['offset']}",
            e["detail"][:80],
        )
        for n, e in enumerate(entries, start=1)
    ]
    grid = table("#", "QUARANTINED AT", "REASON", "RECORD", "DETAIL")
    grid.columns[0].justify = "right"
    show_table(grid, rows, whole=[3])
    return 0


@command(quarantine, "show", "one quarantined record, with its bytes")
@argument("number", "its number in 'op7 quarantine list' (from 1)", type=POSITIVE_INT)
@click.option("--as", "as_node", metavar="NODE_ID", help=_AS)
@global_options
@pass_env
def quarantine_show(env: Env, number: int, as_node: str | None) -> int:
    entries = asyncio.run(_read(env, _topic(env, as_node)))
    if not 1 <= number <= len(entries):
        raise ConfigError(f"there are {len(entries)} quarantined record(s); give a number from 1")
    echo_json(entries[number - 1], indent=2)
    return 0
