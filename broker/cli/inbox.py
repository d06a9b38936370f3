"""``op7 inbox watch``: a node receives its directed messages, signs receipts, follows deadlines and resends."""

from __future__ import annotations

import asyncio

import click

from broker.cli._click import POSITIVE_INT, POSITIVE_SECONDS
from broker.cli._common import (
    Env,
    agent,
    command,
    delivery_json,
    echo_json,
    global_options,
    make_node,
    me,
    new_group,
    pass_env,
    where,
)
from broker.models import Authority
from broker.node.exchange import ExchangeEvent
from broker.node.node import Delivery

__all__ = ["inbox"]

inbox = new_group("inbox", "this node's inbox")


@command(inbox, "watch", "receive directed messages: receipts, answers, deadlines, reminders, resends")
@click.option("--as", "as_node", metavar="NODE_ID", required=True, help="the node whose inbox is read (keys here)")
@click.option("--agency", help="your authority's name, in the receipts you sign")
@click.option("--desk", help="your 24/7 desk, in the receipts you sign")
@click.option("--phone", help="your 24/7 desk's E.164 number")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per message received")
@click.option("--count", type=POSITIVE_INT, help="exit after this many messages")
@click.option("--timeout", type=POSITIVE_SECONDS, help="exit after this many seconds without a record")
@click.option("--tick", type=POSITIVE_SECONDS, default=5.0, help="seconds between deadline and resend checks")
@global_options
@pass_env
def inbox_watch(
    env: Env,
    as_node: str,
    agency: str | None,
    desk: str | None,
    phone: str | None,
    as_json: bool,
    count: int | None,
    timeout: float | None,
    tick: float,
) -> int:
    node_id = me(as_node)
    authority = Authority.model_validate(
        {
            "node": node_id,
            "name": agency or node_id,
            "contact": {"desk": desk or f"{node_id} duty desk", "phone": phone or "+10000000000"},
        }
    )

    def show(d: Delivery) -> None:
        if as_json:
            echo_json(delivery_json(d))
            return
        e = d.envelope
        click.echo(
            f"{e.created_at:%Y-%m-%dT%H:%M:%SZ} {e.message_type.rsplit('.', 1)[1]} from {e.sender} "
            f"case {e.case_id or '-'} id {e.message_id} (signature verified; receipt sent)"
        )

    def event(e: ExchangeEvent) -> None:
        if not as_json:
            click.echo(f"  exchange {e.message_id}: {e.state}: {e.detail}")

    async def watch() -> None:
        node = make_node(env, me=node_id, sign=True, group=node_id)
        async with node:
            exchanges = agent(env.home, node, authority, on_event=event)
            try:
                if not as_json:
                    click.echo(f"watching the inbox of {node_id} on {where(env)} (Ctrl-C to stop)", err=True)
                await exchanges.serve(show, idle_timeout=timeout, limit=count, tick_every=tick)
            finally:
                exchanges.store.close()

    asyncio.run(watch())
    return 0
