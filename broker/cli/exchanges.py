"""``op7 exchanges``: the directed exchanges a node sent or received, with their history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, me, new_group, pass_env, show_table, table
from broker.errors import ConfigError
from broker.node.exchange_store import ExchangeRecord, ExchangeState, ExchangeStore

__all__ = ["exchanges"]

exchanges = new_group("exchanges", "directed exchanges this node sent or received, with their history")

F = Callable[..., Any]


def _as_option(f: F) -> F:
    return click.option("--as", "as_node", metavar="NODE_ID", help="whose exchanges")(f)


@command(exchanges, "list", "every exchange, or those overdue, or of a case")
@click.option("--overdue", is_flag=True, help="only the exchanges whose answer deadline has passed")
@click.option("--case", help="only the exchanges of this case id")
@click.option("--json", "as_json", is_flag=True, help="a JSON list of the exchanges")
@_as_option
@global_options
@pass_env
def exchanges_list(env: Env, overdue: bool, case: str | None, as_json: bool, as_node: str | None) -> int:
    node_id = me(as_node)
    store = ExchangeStore(env.home.exchanges_path(node_id))
    try:
        rows = store.select(case_id=case, overdue=overdue)
    finally:
        store.close()
    if as_json:
        echo_json([r.to_json() for r in rows], indent=2)
        return 0
    if not rows:
        click.echo(f"no exchanges{' overdue' if overdue else ''} for {node_id}")
    grid = table("MESSAGE ID", "DIR", "PEER", "TYPE", "STATE", "CASE", "DUE")
    show_table(grid, [_row(r) for r in rows], whole=[0])
    return 0


def _row(r: ExchangeRecord) -> tuple[str, ...]:
    due = f"{r.deadline:%Y-%m-%dT%H:%MZ}" if r.deadline else ""
    arrow = "->" if r.direction.value == "out" else "<-"
    return (r.message_id, arrow, r.peer, r.message_type.rsplit(".", 1)[1], r.state.value, r.case_id or "-", due)


def _find(store: ExchangeStore, message_id: str, node_id: str) -> ExchangeRecord:
    record = store.find(message_id)
    if record is None:
        raise ConfigError(f"no exchange {message_id!r} for {node_id} (give a message id, or enough of its start)")
    return record


@command(exchanges, "show", "one exchange, its conversation and its history")
@argument("message_id", "message id (or its first or last characters)", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="the conversation as a JSON list, each with its events")
@_as_option
@global_options
@pass_env
def exchanges_show(env: Env, message_id: str, as_json: bool, as_node: str | None) -> int:
    node_id = me(as_node)
    store = ExchangeStore(env.home.exchanges_path(node_id))
    try:
        conversation = store.conversation(_find(store, message_id, node_id))
        if as_json:
            history = [
                {**r.to_json(), "events": [e.to_json() for e in store.events(r.message_id)]} for r in conversation
            ]
            echo_json(history, indent=2)
            return 0
        for r in conversation:
            arrow = "->" if r.direction.value == "out" else "<-"
            click.echo(f"{r.message_id} {arrow} {r.peer} {r.message_type} [{r.state.value}] case {r.case_id or '-'}")
            for e in store.events(r.message_id):
                related = f" ({e.related_message_id})" if e.related_message_id else ""
                click.echo(f"    {e.at:%Y-%m-%dT%H:%M:%SZ}  {e.state:<16} {e.detail}{related}")
        return 0
    finally:
        store.close()


@command(exchanges, "close", "mark an exchange closed")
@argument("message_id", "message id (or its first or last characters)", metavar="ID")
@click.option("--note", help="why it is closed, kept in its history (default: closed)")
@_as_option
@global_options
@pass_env
def exchanges_close(env: Env, message_id: str, note: str | None, as_node: str | None) -> int:
    node_id = me(as_node)
    store = ExchangeStore(env.home.exchanges_path(node_id))
    try:
        record = _find(store, message_id, node_id)
        store.move(record.message_id, ExchangeState.CLOSED, note or "closed", env.home.clock.now())
        click.echo(f"closed {record.message_id}")
        return 0
    finally:
        store.close()
