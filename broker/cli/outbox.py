"""``op7 outbox``: what a node signed and sent that the cluster has not acknowledged yet.

A pending message is sent again, with the same bytes, by every run of the node that sends (``op7 inbox watch`` does
it all along); ``retry`` sends now, ``drop`` gives up. Receivers recognise a copy that had arrived after all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, me, new_group, pass_env, show_table, table
from broker.cli._common import transport as make_transport
from broker.errors import ConfigError, TransportError
from broker.models.answers import short_name
from broker.node.courier import Courier
from broker.node.outbox import Outbox, Outgoing
from broker.transport.base import Sent

__all__ = ["PENDING", "outbox"]

#: The exit status when a message waits in the outbox (sysexits' EX_TEMPFAIL: try again later).
PENDING = 75

outbox = new_group("outbox", "messages sent and not yet acknowledged")

_AS = "the sending node (its keys in this home)"


def _open(env: Env, as_node: str | None) -> Outbox:
    return Outbox(env.home.outbox_path(me(as_node)))


def _row(copy: Outgoing) -> dict[str, Any]:
    return {
        "message_id": copy.message_id,
        "message_type": copy.message_type,
        "case_id": copy.case_id,
        "topic": copy.topic,
        "state": copy.state.value,
        "attempts": copy.attempts,
        "queued_at": f"{copy.queued_at:%Y-%m-%dT%H:%M:%SZ}",
        "last_attempt": f"{copy.last_attempt:%Y-%m-%dT%H:%M:%SZ}" if copy.last_attempt else None,
        "last_error": copy.last_error,
        "bytes": len(copy.frame),
    }


@command(outbox, "list", "every message not yet acknowledged, pending or failed")
@click.option("--as", "as_node", metavar="NODE_ID", help=_AS)
@click.option("--json", "as_json", is_flag=True, help="as a JSON list")
@global_options
@pass_env
def outbox_list(env: Env, as_node: str | None, as_json: bool) -> int:
    box = _open(env, as_node)
    try:
        copies = box.copies()
    finally:
        box.close()
    if as_json:
        echo_json([_row(c) for c in copies], indent=2)
        return 0
    if not copies:
        click.echo(f"nothing waits in the outbox of {me(as_node)}")
        return 0
    rows = [
        (
            f"{c.queued_at:%Y-%m-%dT%H:%M:%SZ}",
            c.state.value,
            short_name(c.message_type),
            c.message_id,
            c.case_id or "-",
            c.topic,
            str(c.attempts),
            (c.last_error or "")[:80],
        )
        for c in copies
    ]
    show_table(table("QUEUED AT", "STATE", "TYPE", "MESSAGE", "CASE", "TOPIC", "TRIES", "LAST ERROR"), rows, whole=[3])
    return 0


@command(outbox, "retry", "send waiting messages again now, the same bytes (all, or those named)")
@argument("message_ids", "message ids (default: every pending and failed one)", nargs=-1, required=False)
@click.option("--as", "as_node", metavar="NODE_ID", help=_AS)
@global_options
@pass_env
def outbox_retry(env: Env, message_ids: tuple[str, ...], as_node: str | None) -> int:
    box = _open(env, as_node)
    try:
        return asyncio.run(_retry(env, box, message_ids))
    finally:
        box.close()


async def _retry(env: Env, box: Outbox, message_ids: tuple[str, ...]) -> int:
    copies = box.copies(message_ids)
    missing = sorted(set(message_ids) - {c.message_id for c in copies})
    if missing:
        raise ConfigError(f"not in the outbox: {', '.join(missing)} (see 'op7 outbox list')")
    if not copies:
        click.echo("nothing waits in the outbox")
        return 0
    box.reopen(message_ids)
    transport = make_transport(env)
    async with transport:

        async def exists(topic: str) -> None:
            await transport.create_topic(topic)

        courier = Courier(transport, box, env.home.clock, prepare=exists)
        results = await courier.retry(box.copies(message_ids))
    failed = pending = 0
    for copy, result in zip(copies, results, strict=True):
        what = f"{short_name(copy.message_type)} {copy.message_id} to {copy.topic}"
        if isinstance(result, Sent):
            click.echo(f"sent {what} ({result.topic}[{result.partition}]@{result.offset})")
        elif isinstance(result, TransportError) and not result.retriable:
            failed += 1
            click.echo(f"failed {what}: {result}", err=True)
        else:
            pending += 1
            click.echo(f"pending {what}: {result}", err=True)
    return 1 if failed else (PENDING if pending else 0)


@command(outbox, "drop", "give up on messages: they are not sent again")
@argument("message_ids", "message ids", nargs=-1, required=True)
@click.option("--as", "as_node", metavar="NODE_ID", help=_AS)
@global_options
@pass_env
def outbox_drop(env: Env, message_ids: tuple[str, ...], as_node: str | None) -> int:
    box = _open(env, as_node)
    try:
        dropped = box.drop(message_ids)
    finally:
        box.close()
    if not dropped:
        raise ConfigError(f"not in the outbox: {', '.join(message_ids)} (see 'op7 outbox list')")
    click.echo(f"dropped {dropped} cop{'y' if dropped == 1 else 'ies'} of {len(message_ids)} message(s)")
    return 0
