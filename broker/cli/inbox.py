"""``op7 inbox watch``: a node receives its directed messages, signs receipts, follows deadlines and resends."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

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
from broker.cli._consuming import Reporter, metrics_options, serving_metrics
from broker.cli._issuer import directory_entry
from broker.cli.render import render_body
from broker.errors import ConfigError
from broker.models import Authority
from broker.models.directory import NodeEntry
from broker.models.inputs import validate
from broker.node.exchange import ExchangeEvent
from broker.node.node import Delivery
from broker.transport import ConnectionWatch

__all__ = ["inbox"]

log = logging.getLogger("op7.cli")

inbox = new_group("inbox", "this node's inbox")


@command(inbox, "watch", "receive directed messages: receipts, answers, deadlines, reminders, resends")
@click.option("--as", "as_node", metavar="NODE_ID", required=True, help="the node whose inbox is read (keys here)")
@click.option("--agency", help="your authority's name, signed into receipts and reminders (default: the directory's)")
@click.option("--desk", help="your 24/7 desk, signed into receipts and reminders (default: the directory's)")
@click.option("--phone", help="your 24/7 desk's E.164 number (default: the directory's)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per message received, refusal or outage")
@click.option("--count", type=POSITIVE_INT, help="exit after this many messages")
@click.option("--timeout", type=POSITIVE_SECONDS, help="exit after this many seconds without a record")
@click.option("--tick", type=POSITIVE_SECONDS, default=5.0, help="seconds between deadline and resend checks")
@metrics_options
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
    metrics_port: int | None,
    metrics_address: str | None,
) -> int:
    node_id = me(as_node)
    given = Given(agency, desk, phone)
    if not env.home.uses_directory():
        given.authority(node_id, None)  # without a directory, the options must say it all: fail before connecting
    report = Reporter(where(env), as_json)

    def show(d: Delivery) -> None:
        if as_json:
            echo_json(delivery_json(d))
            return
        e = d.envelope
        click.echo(
            f"{e.created_at:%Y-%m-%dT%H:%M:%SZ} {e.message_type.rsplit('.', 1)[1]} from {e.sender} "
            f"case {e.case_id or '-'} id {e.message_id} (signature verified; receipt sent)"
        )
        # What the duty desk acts on, readable as it arrives (sealed content is shown opened: it is addressed here).
        click.echo("\n".join(render_body(d.message, now=env.home.clock.now(), indent="    ")))

    def event(e: ExchangeEvent) -> None:
        if not as_json:
            click.echo(f"  exchange {e.message_id}: {e.state}: {e.detail}")

    async def watch() -> None:
        node = make_node(env, me=node_id, sign=True, group=node_id)
        async with node:
            exchanges = await agent(
                env.home, node, given.authority(node_id, directory_entry(node.trust, node_id)), on_event=event
            )
            # The exchange agent reads the inbox; the connection is watched beside it.
            watching = asyncio.create_task(ConnectionWatch(node.transport, report.status, clock=node.clock).run())
            try:
                if not as_json:
                    click.echo(f"watching the inbox of {node_id} on {where(env)} (Ctrl-C to stop)", err=True)
                await exchanges.serve(
                    show, idle_timeout=timeout, limit=count, tick_every=tick, on_refused=report.refused
                )
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
                exchanges.store.close()

    with serving_metrics(env, metrics_port, metrics_address) as metrics:
        if metrics is not None:
            metrics.watch_exchanges(env.home.exchanges_path(node_id))
        asyncio.run(watch())
    return 0


@dataclass(frozen=True)
class Given:
    """The authority options of ``inbox watch``: what the directory does not say about this node."""

    agency: str | None
    desk: str | None
    phone: str | None

    def authority(self, node_id: str, entry: NodeEntry | None) -> Authority:
        """The authority receipts and reminders are signed as: the directory's name and contact for this node,
        else the options; never an invented one (these messages go to foreign authorities)."""
        name = entry.agency if entry is not None else self.agency
        contact = entry.contact if entry is not None and entry.contact is not None else None
        missing = [] if name else ["--agency NAME"]
        if contact is None:
            missing += [
                option for option, value in (("--desk DESK", self.desk), ("--phone +E164", self.phone)) if not value
            ]
        if missing:
            source = "the network directory lists no 24/7 contact for it" if entry else "no network directory lists it"
            raise ConfigError(
                f"{node_id} signs receipts and reminders with its authority's name and 24/7 contact, which other "
                f"authorities call; {source}: give {' '.join(missing)}"
            )
        overridden = [
            o
            for o, given in (
                ("--agency", self.agency and entry),
                ("--desk", self.desk and contact),
                ("--phone", self.phone and contact),
            )
            if given
        ]
        if overridden:
            log.warning("%s: the network directory's entry is used, not %s", node_id, ", ".join(overridden))
        data = {"node": node_id, "name": name, "contact": contact or {"desk": self.desk, "phone": self.phone}}
        return validate(Authority, data, "--agency/--desk/--phone")
